#!/usr/bin/env python3
"""Single-rule admin writes on a big table, and /healthz while they run (issue 14).

    python3 bench/admin_writes.py --database sqlite:////tmp/b/1m.db [--writes 50]

Starts `redirectory serve` on the database (a copy is not made: the writes land in it; they are
removed again at the end), creates a write key, then:
1. the first write (the admin process builds its validation index of the table: seconds at 1M);
2. `--writes` creates, each followed by a PATCH of the rule it made, one at a time;
3. meanwhile a thread polls `GET /healthz` every 10 ms;
4. the rules made are deleted.
Prints p50/p90/max of each kind of write, the first write's time, and /healthz's p50/max during the
writes; `--json FILE` writes them too. Needs the CLI at .venv/bin/redirectory (or $REDIRECTORY).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CLI = os.environ.get("REDIRECTORY", str(ROOT / ".venv" / "bin" / "redirectory"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True)
    parser.add_argument("--writes", type=int, default=50)
    parser.add_argument("--json")
    args = parser.parse_args()

    port, admin_port = free_port(), free_port()
    log = tempfile.NamedTemporaryFile(prefix="admin-writes-", suffix=".log", delete=False)
    started = time.monotonic()
    proc = subprocess.Popen([CLI, "serve", "--database", args.database, "--port", str(port),
                             "--admin-port", str(admin_port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT)
    admin = f"http://127.0.0.1:{admin_port}"
    made: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                print(Path(log.name).read_text()[-2000:], file=sys.stderr)
                return 1
            try:
                if httpx.get(admin + "/healthz", timeout=2).json().get("ready"):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        ready = time.monotonic() - started
        key = subprocess.run([CLI, "keys", "create", "bench-admin-writes", "--scope", "write", "--database",
                              args.database], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        client = httpx.Client(base_url=admin, headers={"authorization": f"Bearer {key.strip()}"}, timeout=300)

        def create(n: int) -> tuple[float, httpx.Response]:
            t = time.perf_counter()
            r = client.post("/api/v1/rules", json={"from": f"/bench-admin/{n}", "to": f"/bench-admin-to/{n}",
                                                   "status": 308})
            return time.perf_counter() - t, r

        first, r = create(-1)
        assert r.status_code == 201, r.text
        made.append(r.json()["uuid"])
        health: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            with httpx.Client(timeout=30) as h:
                while not stop.is_set():
                    t = time.perf_counter()
                    h.get(admin + "/healthz")
                    health.append(time.perf_counter() - t)
                    time.sleep(0.01)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        creates: list[float] = []
        patches: list[float] = []
        for n in range(args.writes):
            took, r = create(n)
            assert r.status_code == 201, r.text
            creates.append(took)
            made.append(r.json()["uuid"])
            t = time.perf_counter()
            p = client.patch(f"/api/v1/rules/{made[-1]}", json={"status": 307},
                             headers={"if-match": r.headers["etag"], "content-type": "application/merge-patch+json"})
            patches.append(time.perf_counter() - t)
            assert p.status_code == 200, p.text
        stop.set()
        poller.join()
        result = {
            "database": args.database, "ready_s": round(ready, 2), "first_write_s": round(first, 3),
            "create_ms": {"p50": pct(creates, 0.5) * 1e3, "p90": pct(creates, 0.9) * 1e3, "max": max(creates) * 1e3},
            "patch_ms": {"p50": pct(patches, 0.5) * 1e3, "p90": pct(patches, 0.9) * 1e3, "max": max(patches) * 1e3},
            "healthz_ms": {"p50": statistics.median(health) * 1e3, "max": max(health) * 1e3, "n": len(health)},
        }
        print(json.dumps(result, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        return 0
    finally:
        if made:
            try:
                for rule_id in made:
                    r = client.get(f"/api/v1/rules/{rule_id}")
                    if r.status_code == 200:
                        client.delete(f"/api/v1/rules/{rule_id}", headers={"if-match": r.headers["etag"]})
            except httpx.HTTPError:
                pass
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
