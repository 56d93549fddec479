"""Helpers for the fan-out tests: several `redirectory serve` on one store, writers, convergence."""

from __future__ import annotations

import http.client
import os
import random
import threading
import time
from dataclasses import dataclass, field

from gateway_process import ServeProcess
from redirectory.rules.model import Rule
from redirectory.store import Store


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def live_processes(servers: list[ServeProcess]) -> dict[str, dict[str, object]]:
    """Every fresh heartbeat row of a process still running, by id (all servers share the store)."""
    out: dict[str, dict[str, object]] = {}
    for served in servers:
        health = served.health()
        for proc in health.get("processes", []):  # type: ignore[union-attr]
            if not proc["stale"] and alive(int(proc["pid"])):
                out[str(proc["id"])] = proc
    return out


def wait_converged(servers: list[ServeProcess], store: Store, processes: int, timeout: float = 30) -> int:
    """Wait until `processes` running gateway processes all report the store's revision; return it."""
    deadline = time.monotonic() + timeout
    seen: dict[str, dict[str, object]] = {}
    target = -1
    while time.monotonic() < deadline:
        target = store.revision()
        seen = live_processes(servers)
        if len(seen) >= processes and all(p["revision"] == target for p in seen.values()):
            return target
        time.sleep(0.1)
    raise AssertionError(f"not converged on revision {target}: {[(p['pid'], p['revision']) for p in seen.values()]}")


def answer(base: str, path: str) -> tuple[int, str | None]:
    """(status, Location) from a fresh connection (so a multi-worker server may use any worker)."""
    host, _, port = base.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path, headers={"connection": "close"})
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("location")
    finally:
        conn.close()


def expected(store: Store, paths: list[str]) -> dict[str, tuple[int, str | None]]:
    table = {rule.source: rule for rule in store.list_rules()}
    out: dict[str, tuple[int, str | None]] = {}
    for path in paths:
        rule = table.get(path)
        out[path] = (404, None) if rule is None else (rule.status, rule.to)
    return out


def assert_answers(servers: list[ServeProcess], store: Store, paths: list[str], rounds: int = 2) -> None:
    """Every server (each `rounds` times, on fresh connections) answers exactly as the store says."""
    want = expected(store, paths)
    for served in servers:
        for _ in range(rounds):
            got = {path: answer(served.base, path) for path in paths}
            wrong = {p: (got[p], want[p]) for p in paths if got[p][0] != want[p][0]
                     or (want[p][1] is not None and not str(got[p][1]).endswith(str(want[p][1])))}
            assert not wrong, f"{served.base}: {len(wrong)} wrong answers, e.g. {list(wrong.items())[:3]}"


@dataclass
class Writer:
    """Writes `count` changes (add / change / remove of its own rules) through the Store API.

    A write that fails (database restarting) is retried until it is known to be committed or not,
    so `confirmed` ends up as exactly what this writer committed.
    """

    store: Store
    tag: str
    count: int
    seed: int = 0
    pause: float = 0.0  # seconds between writes (keeps a stream going for a while on fast machines)
    committed: int = 0
    sources: dict[str, str] = field(default_factory=dict)  # source -> rule id
    errors: int = 0
    thread: threading.Thread | None = None

    def start(self) -> Writer:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def join(self, timeout: float = 120) -> None:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"writer {self.tag} did not finish"

    def _retry(self, action: str, source: str, fn: object) -> None:
        while True:
            try:
                fn()  # type: ignore[operator]
                return
            except Exception:  # noqa: BLE001 - the database is restarting: find out what happened
                self.errors += 1
                time.sleep(0.2)
                try:
                    found = {r.source: r.id for r in self.store.list_rules(search=source)}
                except Exception:  # noqa: BLE001, S112
                    continue
                if action == "add" and source in found:
                    self.sources[source] = str(found[source])
                    return
                if action == "remove" and source not in found:
                    self.sources.pop(source, None)
                    return
                # a change is idempotent: just try again

    def run(self) -> None:
        rng = random.Random(self.seed)
        for i in range(self.count):
            mine = list(self.sources)
            if mine and i % 5 == 4:
                source = rng.choice(mine)
                rule_id = self.sources[source]

                def remove(source: str = source, rule_id: str = rule_id) -> None:
                    self.store.delete_rule(rule_id, actor=self.tag)
                    self.sources.pop(source, None)

                self._retry("remove", source, remove)
            elif mine and i % 3 == 2:
                source = rng.choice(mine)
                rule_id = self.sources[source]

                def change(source: str = source, rule_id: str = rule_id, i: int = i) -> None:
                    self.store.replace_rule(rule_id, Rule(to=f"/to/{self.tag}/{i}", source=source, status=308),
                                            actor=self.tag)

                self._retry("change", source, change)
            else:
                source = f"/fan/{self.tag}/{i}"

                def add(source: str = source, i: int = i) -> None:
                    row = self.store.insert_rule(Rule(to=f"/to/{self.tag}/{i}", source=source, status=301),
                                                 actor=self.tag)
                    self.sources[source] = row.id

                self._retry("add", source, add)
            self.committed += 1
            if self.pause:
                time.sleep(self.pause)
