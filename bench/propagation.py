"""Change propagation: commit of one rule -> first (and last) gateway answering it, at 100k rules.

Starts REPLICAS `redirectory serve` processes (one worker each, as separate replicas would be) on
one database holding RULES rules, then SAMPLES times: inserts one new rule through the Store API
(what the admin API and `rules apply` do) and polls every replica on its own keep-alive connection
until it answers the new rule with a 301 (a probe every 2 ms). Reports, in milliseconds from the start of the commit:
the commit itself, the first replica answering and the last one.

    python bench/propagation.py --database postgresql://postgres@127.0.0.1:5432/test
    python bench/propagation.py --database sqlite:///tmp/prop.db

A PostgreSQL URL gets a fresh schema (dropped afterwards); a SQLite file is deleted first.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

from redirectory.rules.model import Rule
from redirectory.store import Store

BIN = Path(sys.executable).parent / "redirectory"
#: Seconds between two probes of one replica: the resolution of the figures. (A tighter loop makes
#: the probing itself load the 2-core machine and slows what it measures.)
POLL_EVERY = 0.002


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(url: str) -> tuple[str, object]:
    """(URL to use, cleanup token): a fresh PostgreSQL schema or a fresh SQLite file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database or "").unlink(missing_ok=True)
        return url, None
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    libpq = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False), (libpq, schema)


def cleanup(token: object) -> None:
    if token is None:
        return
    import psycopg

    libpq, schema = token  # type: ignore[misc]
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def start(url: str, log_dir: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], int, int]:
    port, admin = free_port(), free_port()
    log = (log_dir / f"serve-{port}.log").open("wb")
    proc = subprocess.Popen([str(BIN), "serve", "--database", url, "--port", str(port), "--admin-port", str(admin),
                             "--no-migrate", *extra], stdout=log, stderr=subprocess.STDOUT)
    return proc, port, admin


def wait_ready(admin: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=5)
            conn.request("GET", "/healthz")
            if json.loads(conn.getresponse().read()).get("ready"):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"a gateway (admin port {admin}) did not become ready in {timeout}s")


def poll_until(port: int, path: str, started: float, out: list[float], idx: int, timeout: float = 30) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        if response.status == 301:
            out[idx] = time.perf_counter() - started
            conn.close()
            return
        time.sleep(POLL_EVERY)
    out[idx] = float("inf")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database")
    parser.add_argument("--create-schema", metavar="URL", help="(for run.sh) make a fresh schema, print its URL")
    parser.add_argument("--drop-schema", metavar="URL", help="(for run.sh) drop the schema a --create-schema URL names")
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--serve-args", default="", help="extra `serve` arguments, e.g. '--server uvicorn'")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.create_schema:
        print(prepare(args.create_schema)[0])
        return 0
    if args.drop_schema:
        parsed = make_url(args.drop_schema)
        schema = str(parsed.query.get("options", "")).removeprefix("-csearch_path=")
        if schema.startswith("bench_"):
            cleanup((parsed.set(drivername="postgresql", query={}).render_as_string(hide_password=False), schema))
        return 0
    if not args.database:
        parser.error("--database is required")

    load_start = os.getloadavg()
    url, token = prepare(args.database)
    procs: list[subprocess.Popen[bytes]] = []
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"redirectory-propagation-{os.getpid()}"
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        store = Store.open(url)
        store.upgrade()
        t = time.perf_counter()
        store.add([Rule(to=f"/v2/svc{i}/items/{i}", source=f"/svc{i}/items/{i}", status=301)
                   for i in range(args.rules)])
        print(f"{store.dialect}: {args.rules} rules stored in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        t = time.perf_counter()
        servers = [start(url, log_dir, args.serve_args.split()) for _ in range(args.replicas)]
        procs = [proc for proc, _, _ in servers]
        for _, _, admin in servers:
            wait_ready(admin)
        print(f"{args.replicas} replicas ready in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        time.sleep(2)  # let the start-up settle (first flushes, heartbeats)
        commits: list[float] = []
        first: list[float] = []
        last: list[float] = []
        for i in range(args.samples):
            path = f"/prop/{i}"
            times = [0.0] * len(servers)
            started = time.perf_counter()
            pollers = [threading.Thread(target=poll_until, args=(port, path, started, times, n))
                       for n, (_, port, _) in enumerate(servers)]
            for poller in pollers:
                poller.start()
            store.insert_rule(Rule(to=f"/moved/{i}", source=path, status=301), actor="bench")
            commits.append(time.perf_counter() - started)
            for poller in pollers:
                poller.join()
            first.append(min(times))
            last.append(max(times))
            time.sleep(0.3)
        result = {
            "dialect": store.dialect, "rules": args.rules, "replicas": args.replicas, "samples": args.samples,
            "serve_args": args.serve_args, "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(), "cpus": os.cpu_count(),
        }
        for name, values in (("commit_ms", commits), ("first_ms", first), ("last_ms", last)):
            result[name] = {"p50": round(statistics.median(values) * 1000, 1),
                            "p95": round(pct(values, 0.95) * 1000, 1), "max": round(max(values) * 1000, 1)}
        store.close()
        print(json.dumps(result))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        return 0 if all(v != float("inf") for v in last) else 3
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        cleanup(token)


if __name__ == "__main__":
    raise SystemExit(main())
