"""`--workers N` on SQLite: every worker polls the change log, reports its revision, counts exactly."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from fanout_support import Writer, answer, assert_answers, wait_converged
from gateway_process import start_serve
from redirectory.store import Store


def test_three_sqlite_workers_converge_and_count_exactly(tmp_path: Path) -> None:
    served = start_serve(tmp_path, "--workers", "3")
    store = Store.open(served.database)
    try:
        writers = [Writer(store, "s1", 150, seed=5).start(), Writer(store, "s2", 150, seed=6).start()]
        key = store.create_key("sqlite-fanout", "write")[1]
        with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {key}"}, timeout=30) as api:
            r = api.post("/api/v1/rules", json={"from": "/api/one", "to": "/via-api", "status": 308})
            assert r.status_code == 201, r.text
        for writer in writers:
            writer.join()
        revision = wait_converged([served], store, processes=3)
        health = served.health()
        assert health["converged"] is True and health["revision"] == revision
        processes = health["processes"]
        assert isinstance(processes, list) and len({p["pid"] for p in processes}) == 3
        assert not any(p["listening"] for p in processes)  # SQLite: polling, no LISTEN
        paths = sorted({*writers[0].sources, *writers[1].sources, "/api/one", "/fan/s1/0", "/nope"})
        assert_answers([served], store, paths, rounds=3)

        probe = sorted(writers[0].sources)[:3]
        for i in range(300):
            answer(served.base, probe[i % 3])
        deadline = time.monotonic() + 10
        while True:
            hits = {r.from_text: r.hits for r in store.stats().rules if r.from_text in probe}
            if sum(hits.values()) >= 309 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(1.5)
        hits = {r.from_text: r.hits for r in store.stats().rules if r.from_text in probe}
        assert hits == {path: 3 + 100 for path in probe}  # assert_answers asked 3 times too
    finally:
        served.stop()
        store.close()
