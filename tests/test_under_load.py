"""Under load: the real `redirectory serve` on many keep-alive connections, exact and placeholder
rules, hit counting on (issue 13, point 13; bench/load.py is the full-size benchmark).

A pure-Python load generator (asyncio, CONNECTIONS connections, each sending its next request as
soon as the answer to the one before arrives) drives the gateway for a few seconds, then again
while `redirectory rules apply` adds APPLY_RULES rules to the live database, until every gateway
serves the new table. Each phase: no socket error, every answer the expected redirect. During
the apply, p99 latency must stay under P99_BOUND_MS: a bound that cannot flake on a loaded
2-core machine (a stalled gateway shows seconds; the benchmark reports the real figure against the
issue's 50 ms). Afterwards the hits the gateway stored equal, rule by rule, the redirects the
clients received.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gateway_process import BIN, ServeProcess, cli, start_serve

CONNECTIONS = 128
STEADY_SECONDS = 6.0
BASE_RULES = 1000  # half exact, half placeholder
APPLY_RULES = 20_000
P99_BOUND_MS = 500.0
REQUEST_TIMEOUT = 10.0


def rule_file(path: Path, bulk: int) -> None:
    """BASE_RULES rules the clients request (even: exact, odd: placeholder), plus `bulk` more nobody does."""
    lines = ["rules:"]
    for i in range(BASE_RULES):
        if i % 2 == 0:
            lines += [f"  - from: /svc{i}/items/{i}", f"    to: /v2/svc{i}/items/{i}", "    status: 301",
                      "    methods: [GET, HEAD]"]
        else:
            lines += [f"  - from: /p{i}/users/{{id}}", f"    to: /v2/p{i}/users/{{id}}", "    status: 308"]
    for j in range(bulk):
        lines += [f"  - from: /bulk{j}/items/{j}", f"    to: /v2/bulk{j}/items/{j}", "    status: 301",
                  "    methods: [GET, HEAD]"]
    path.write_text("\n".join(lines) + "\n")


def request_for(i: int, n: int) -> tuple[str, str, int, str]:
    """(path, the rule's `from`, expected status, expected Location) for rule i, n-th time."""
    if i % 2 == 0:
        return f"/svc{i}/items/{i}", f"/svc{i}/items/{i}", 301, f"/v2/svc{i}/items/{i}"
    return f"/p{i}/users/u{n}", f"/p{i}/users/{{id}}", 308, f"/v2/p{i}/users/u{n}"


@dataclass
class Tally:
    """What the clients saw in one phase."""

    latencies: list[tuple[float, float]] = field(default_factory=list)  # (wall time sent, ms)
    by_rule: Counter[str] = field(default_factory=Counter)  # redirects received, by the rule's `from`
    wrong: list[str] = field(default_factory=list)
    socket_errors: list[str] = field(default_factory=list)

    def window(self, since: float, until: float) -> list[float]:
        values = sorted(ms for at, ms in self.latencies if since <= at <= until)
        assert values, "no request in the window"
        return values

    def p99(self, since: float = 0.0, until: float = float("inf")) -> float:
        values = self.window(since, until)
        return values[min(len(values) - 1, int(0.99 * len(values)))]

    def max(self, since: float, until: float) -> float:
        return self.window(since, until)[-1]


async def client(port: int, offset: int, stop: asyncio.Event, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = offset
    try:
        while not stop.is_set():
            n += 1
            path, source, status, location = request_for((n * 7) % BASE_RULES, n)
            sent, started = time.time(), time.perf_counter()
            try:
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                tally.socket_errors.append(f"{path}: {type(exc).__name__}")
                return
            tally.latencies.append((sent, (time.perf_counter() - started) * 1000))
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            length = int(headers.get("content-length", "0"))
            if length:
                await reader.readexactly(length)
            if int(lines[0].split()[1]) != status or headers.get("location") != location:
                tally.wrong.append(f"GET {path} -> {lines[0]} {headers.get('location')}")
            else:
                tally.by_rule[source] += 1
    finally:
        writer.close()


async def drive(port: int, tally: Tally, until: asyncio.Future[None] | None, seconds: float) -> None:
    """CONNECTIONS clients until `seconds` have passed and `until` (if any) is done."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(client(port, k * 1000, stop, tally)) for k in range(CONNECTIONS)]
    await asyncio.sleep(seconds)
    if until is not None:
        await until
    stop.set()
    await asyncio.gather(*tasks)


def served_everywhere(served: ServeProcess, revision: int) -> bool:
    try:
        health = served.health()
    except (httpx.HTTPError, ValueError):
        return False
    return health.get("converged") is True and health.get("revision") == revision


async def apply_and_wait(served: ServeProcess, bulk: Path, window: list[float]) -> None:
    """`rules apply` the big file, then wait until every gateway serves it: window = [apply started,
    apply committed, served]."""
    await asyncio.sleep(1.0)  # some load first
    window.append(time.time())
    proc = await asyncio.create_subprocess_exec(
        str(BIN),
        "rules", "apply", str(bulk), "--database", served.database,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, err.decode()
    window.append(time.time())
    revision = await asyncio.to_thread(lambda: int(served.health()["revision"]))
    deadline = time.monotonic() + 120
    while not await asyncio.to_thread(served_everywhere, served, revision):
        assert time.monotonic() < deadline, f"the gateway never served revision {revision}:\n{served.output()}"
        await asyncio.sleep(0.1)
    window.append(time.time())


def check(tally: Tally, what: str) -> None:
    assert not tally.socket_errors, f"{what}: {len(tally.socket_errors)} socket errors: {tally.socket_errors[:5]}"
    assert not tally.wrong, f"{what}: {len(tally.wrong)} wrong answers: {tally.wrong[:5]}"
    assert sum(tally.by_rule.values()) > 1000, f"{what}: hardly any requests answered"


def test_under_load_steady_and_during_a_big_apply(tmp_path: Path) -> None:
    base, bulk = tmp_path / "rules.yaml", tmp_path / "bulk.yaml"
    rule_file(base, 0)
    rule_file(bulk, APPLY_RULES)
    served = start_serve(tmp_path, "--rules", str(base))
    try:
        steady = Tally()
        asyncio.run(drive(served.port, steady, None, STEADY_SECONDS))
        check(steady, "steady")

        during = Tally()
        window: list[float] = []

        async def phase() -> None:
            applied = asyncio.ensure_future(apply_and_wait(served, bulk, window))
            await drive(served.port, during, applied, 1.0)

        asyncio.run(phase())
        check(during, "during the apply")
        started, committed, live = window
        p99, p99_reload = during.p99(started, live), during.p99(committed, live)
        print(f"\nunder load ({CONNECTIONS} connections): steady {sum(steady.by_rule.values())} redirects,"
              f" p99 {steady.p99():.1f} ms; during the {APPLY_RULES}-rule apply ({committed - started:.1f} s,"
              f" served {live - committed:.1f} s after its commit): p99 {p99:.1f} ms, while the gateway"
              f" loaded it p99 {p99_reload:.1f} ms, max {during.max(committed, live):.1f} ms")
        # The gateway's own work is between the commit and serving: a stall there is the failure.
        assert p99_reload < P99_BOUND_MS, f"p99 {p99_reload:.0f} ms while the gateway loaded the table"
        assert p99 < P99_BOUND_MS, f"p99 {p99:.0f} ms during the apply (bound {P99_BOUND_MS:.0f} ms)"
        assert served.health()["rules"] == BASE_RULES + APPLY_RULES
    finally:
        assert served.stop() == 0, served.output()  # SIGTERM flushes the last hit counts

    stats = cli("rules", "stats", "--json", "--database", served.database)
    assert stats.returncode == 0, stats.stderr
    stored = {r["from_text"]: r["hits"] for r in json.loads(stats.stdout)["rules"] if r["hits"]}
    received = steady.by_rule + during.by_rule
    assert stored == dict(received), (
        f"hits stored {sum(stored.values())} vs redirects received {sum(received.values())}; rules differing: "
        f"{[(k, stored.get(k), received.get(k)) for k in set(stored) | set(received) if stored.get(k) != received.get(k)][:5]}"
    )
