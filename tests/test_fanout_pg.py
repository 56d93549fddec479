"""Many gateways, one PostgreSQL rule table: live fan-out, catch-up, failures, exact hit counts.

Real `redirectory serve` processes against a fresh PostgreSQL schema: serve A with `--workers 2`
and serve B with one worker, i.e. three gateway processes (as three replicas would be).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from fanout_support import Writer, alive, answer, assert_answers, live_processes, wait_converged
from gateway_process import ServeProcess, cli, start_serve
from redirectory.store import Store

pytestmark = pytest.mark.postgres

SEED_RULES = 50


def _seed_file(tmp: Path) -> Path:
    lines = ["rules:"]
    for i in range(SEED_RULES):
        lines += [f"  - from: /seed/{i}", f"    to: /seeded/{i}", "    status: 301"]
    path = tmp / "seed.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str) -> Iterator[tuple[list[ServeProcess], Store]]:
    """Serve A (2 workers) + serve B (1 worker) on one PostgreSQL store, seeded by `rules apply`."""
    store = Store.open(postgres_url)
    store.upgrade()
    with ThreadPoolExecutor(2) as pool:  # both at once: each takes seconds to start
        starting = [pool.submit(start_serve, tmp_path, "--workers", "2", database=postgres_url),
                    pool.submit(start_serve, tmp_path, database=postgres_url)]
        servers = [future.result() for future in starting]
    try:
        done = cli("rules", "apply", str(_seed_file(tmp_path)), "--database", postgres_url)
        assert done.returncode == 0, done.stderr
        yield servers, store
    finally:
        for served in servers:
            if served.proc.poll() is None:
                served.proc.send_signal(signal.SIGTERM)
        for served in servers:
            served.stop()
        store.close()


def _key(store: Store, scope: str = "write") -> str:
    return store.create_key(f"fanout-{scope}", scope)[1]


def test_1000_changes_from_2_writers_reach_every_gateway(fleet: tuple[list[ServeProcess], Store]) -> None:
    servers, store = fleet
    a, b = servers
    # `rules apply` (the fixture) is live everywhere within a second
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and answer(b.base, f"/seed/{SEED_RULES - 1}")[0] != 301:
        time.sleep(0.01)
    assert answer(b.base, f"/seed/{SEED_RULES - 1}") == (301, f"/seeded/{SEED_RULES - 1}")

    writers = [Writer(store, "w1", 490, seed=1).start(), Writer(store, "w2", 490, seed=2).start()]
    # ... while 20 more changes come through the admin API of serve B
    key = _key(store)
    with httpx.Client(base_url=b.admin, headers={"authorization": f"Bearer {key}"}, timeout=30) as api:
        for i in range(20):
            r = api.post("/api/v1/rules", json={"from": f"/api/{i}", "to": f"/via-api/{i}", "status": 308})
            assert r.status_code == 201, r.text
    started = time.monotonic()
    for writer in writers:
        writer.join()
    written_in = time.monotonic() - started
    revision = wait_converged(servers, store, processes=3)
    assert revision >= 1 + 980 + 20 and revision == store.revision()
    health = a.health()
    assert health["converged"] is True and health["database"] == "ok"
    assert all(p["listening"] and p["healthy"] for p in health["processes"])  # type: ignore[union-attr,index]

    paths = sorted({*writers[0].sources, *writers[1].sources, "/fan/w1/0", "/fan/w2/0", "/nope",
                    *(f"/api/{i}" for i in range(20)), *(f"/seed/{i}" for i in range(0, SEED_RULES, 7))})
    assert_answers(servers, store, paths)
    print(f"1000 changes written in {written_in:.1f}s; converged at revision {revision}")


def test_a_worker_killed_mid_stream_and_a_serve_killed_and_restarted_converge(
    fleet: tuple[list[ServeProcess], Store], tmp_path: Path
) -> None:
    servers, store = fleet
    a, b = servers
    writer = Writer(store, "k", 400, seed=3, pause=0.005).start()
    time.sleep(0.5)
    victim = next(int(p["pid"]) for p in live_processes([a]).values() if p["serve"] == a.health()["serve"])
    os.kill(victim, signal.SIGKILL)  # serve A restarts the worker; it loads the table anew
    b.proc.kill()  # and a whole replica dies ...
    b.proc.wait(timeout=10)
    time.sleep(0.5)
    restarted = start_serve(tmp_path, database=b.database)  # ... and comes back mid-stream
    servers[1] = restarted
    writer.join()
    wait_converged(servers, store, processes=3)
    assert not alive(victim)
    assert_answers(servers, store, sorted({*writer.sources, "/fan/k/0", "/seed/3"}))


def _cluster() -> tuple[str, str] | None:
    """(version, name) of the local cluster on port 5432, if pg_ctlcluster can manage it."""
    if not shutil.which("pg_ctlcluster") or not shutil.which("pg_lsclusters") or os.geteuid() != 0:
        return None
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "5432":
            return fields[0], fields[1]
    return None


def _pg_ctl(cluster: tuple[str, str], action: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action, "-m", "fast"]
                   if action == "stop" else ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action],
                   check=True, capture_output=True, timeout=60)


def _wait_for_postgres(store: Store, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            store.revision()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_postgresql_down_then_back_mid_stream_loses_no_change(fleet: tuple[list[ServeProcess], Store]) -> None:
    cluster = _cluster()
    if cluster is None:
        pytest.skip("needs root and pg_ctlcluster managing the local PostgreSQL on port 5432")
    if "127.0.0.1:5432" not in fleet[0][0].database and "localhost:5432" not in fleet[0][0].database:
        pytest.skip("the test database is not the local PostgreSQL on port 5432")
    servers, store = fleet
    a, b = servers
    key, unused_key = _key(store), _key(store)
    api = httpx.Client(base_url=a.admin, headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert api.get("/api/v1/rules").status_code == 200
    writer = Writer(store, "r", 300, seed=4, pause=0.01).start()
    time.sleep(0.5)
    try:
        _pg_ctl(cluster, "stop")
        time.sleep(1.5)
        # every gateway keeps answering from its last table and says the database is unreachable
        for served in servers:
            assert answer(served.base, "/seed/1") == (301, "/seeded/1")
            r = httpx.get(served.admin + "/healthz", timeout=10)
            assert r.status_code == 200 and r.json()["status"] == "degraded", r.text
            assert r.json()["database"] == "unreachable"
        # admin writes fail with 503 in the guide's format, never a traceback or SQL
        r = api.post("/api/v1/rules", json={"from": "/during", "to": "/outage", "status": 308})
        assert r.status_code == 503 and r.headers["retry-after"], r.text
        body = r.json()
        assert body["type"].startswith("urn:redirectory:error:") and body["errors"] and body["instance"]
        assert "Traceback" not in r.text and "psycopg" not in r.text and "SELECT" not in r.text
        # a key not seen before is looked up by the rate limiter (a middleware): 503 as well
        r = httpx.get(a.admin + "/api/v1/rules", headers={"authorization": f"Bearer {unused_key}"}, timeout=30)
        assert r.status_code == 503 and r.headers["retry-after"] and r.json()["errors"], r.text
    finally:
        _pg_ctl(cluster, "start")
    _wait_for_postgres(store)
    writer.join()
    assert writer.errors > 0, "the writer never noticed the outage"
    r = api.post("/api/v1/rules", json={"from": "/after", "to": "/outage", "status": 308})
    assert r.status_code == 201, r.text
    api.close()
    wait_converged(servers, store, processes=3, timeout=40)
    assert a.health()["status"] == "ok"
    assert_answers(servers, store, sorted({*writer.sources, "/after", "/during", "/fan/r/0"}))
    assert answer(b.base, "/during")[0] == 404
    assert "Traceback" not in a.output()  # the outage is logged in one line per cause, no tracebacks


def test_hit_counts_from_every_process_add_up_exactly(fleet: tuple[list[ServeProcess], Store]) -> None:
    servers, store = fleet
    wait_converged(servers, store, processes=3)
    paths = ["/seed/0", "/seed/1", "/seed/2", "/missing/x"]
    sent = {path: 0 for path in paths}
    for served in servers:
        # fresh connections (so serve A's two workers both count) and a keep-alive client
        for i in range(60):
            path = paths[i % len(paths)]
            answer(served.base, path)
            sent[path] += 1
        with httpx.Client(base_url=served.base) as client:
            for i in range(240):
                path = paths[i % len(paths)]
                client.get(path)
                sent[path] += 1
    ids = {rule.source: rule.id for rule in store.list_rules()}
    deadline = time.monotonic() + 15
    while True:
        stats = store.stats(limit_unmatched=100)
        got = {r.from_text: r.hits for r in stats.rules if r.from_text in paths}
        got["/missing/x"] = next((p.hits for p in stats.unmatched if p.path == "/missing/x"), 0)
        if got == sent or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert got == sent
    time.sleep(2.5)  # two more flushes: nothing is counted twice
    stats = store.stats(limit_unmatched=100)
    assert {r.rule_id: r.hits for r in stats.rules if r.from_text in paths} == {ids[p]: sent[p] for p in paths[:3]}
