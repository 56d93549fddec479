#!/usr/bin/env python3
"""What the access log costs: server CPU per request with `--access-log` off, in text and in JSON
(`--log-format json`). See bench/README.md ("Access log cost").

    .venv/bin/python bench/access_log.py                 # 3 rounds of 10 s per variant
    .venv/bin/python bench/access_log.py --quick         # 1 round of 3 s

The exact-1k table (gen_rules.py), `serve --workers 1` on the default server (httptools), its
stderr into a file as journald or a container runtime would take it; per variant `wrk -t1 -c32`
through bench/paths.lua (a warm-up, then the measured run), server on CPU 1 and wrk on CPU 0
(taskset; PIN=0 turns it off). The variants run in turn, round after round, so a slower moment of
the machine does not fall on one variant only. Server CPU per request = the server's utime + stime
over the measured run / the requests wrk completed; the median over the rounds is reported, with
the extra cost over `off`. Prints one table and writes bench/results/<UTC timestamp>-access-log.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from load import free_port  # noqa: E402
from scale import tree_cpu_s  # noqa: E402

BIN = Path(sys.executable).parent / "redirectory"
VARIANTS: dict[str, list[str]] = {
    "off": [],
    "text": ["--access-log"],
    "json": ["--access-log", "--log-format", "json"],
}


def pinned(cpu: int, cmd: list[str]) -> list[str]:
    if os.environ.get("PIN", "1") == "1" and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu), *cmd]
    return cmd


def wait_ready(admin_port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/healthz", timeout=2) as answer:
                if json.loads(answer.read()).get("ready"):
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise SystemExit("serve did not become ready")


def wrk(port: int, paths: Path, seconds: int) -> dict[str, Any]:
    ran = subprocess.run(pinned(0, ["wrk", "-t1", "-c32", f"-d{seconds}s", "-s", str(BENCH / "paths.lua"),
                                    f"http://127.0.0.1:{port}", "--", str(paths)]),
                         capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next(x for x in ran.stdout.splitlines() if x.startswith("BENCH_JSON "))
    return dict(json.loads(line[len("BENCH_JSON "):]))


def measure(database: str, paths: Path, work: Path, name: str, args: list[str], duration: int,
            warmup: int) -> dict[str, Any]:
    port, admin_port = free_port(), free_port()
    log = work / f"serve-{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(pinned(1, [str(BIN), "serve", "--database", database, "--port", str(port),
                                           "--admin-port", str(admin_port), "--workers", "1", *args]),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(admin_port, proc, log)
        wrk(port, paths, warmup)
        before = tree_cpu_s(proc.pid)
        result = wrk(port, paths, duration)
        cpu = tree_cpu_s(proc.pid) - before
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    requests = int(result.get("requests", 0))
    return {"variant": name, "requests": requests, "rps": result.get("rps"), "cpu_s": round(cpu, 3),
            "us_per_req": round(cpu / requests * 1e6, 3) if requests else None,
            "log_bytes": log.stat().st_size, "errors": result.get("errors")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s per variant (a smoke run)")
    parser.add_argument("--rounds", type=int, help="rounds of every variant [3; --quick: 1]")
    parser.add_argument("--duration", type=int, help="seconds per measured run [10; --quick: 3]")
    opts = parser.parse_args()
    rounds = opts.rounds or (1 if opts.quick else 3)
    duration = opts.duration or (3 if opts.quick else 10)
    warmup = 1 if opts.quick else 2
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="redirectory-access-log-") as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, str(BENCH / "gen_rules.py"), "--kind", "exact", "--count", "1000",
                        "--out", str(work), "--sample", "1000"], check=True, capture_output=True)
        database = f"sqlite:///{work}/rules.db"
        subprocess.run([str(BIN), "rules", "apply", str(work / "rules.yaml"), "--database", database],
                       check=True, capture_output=True)
        runs = [measure(database, work / "paths.txt", work, name, args, duration, warmup)
                for _ in range(rounds) for name, args in VARIANTS.items()]
    summary = {}
    for name in VARIANTS:
        figures = [r["us_per_req"] for r in runs if r["variant"] == name and r["us_per_req"] is not None]
        summary[name] = {"us_per_req": round(statistics.median(figures), 3) if figures else None,
                         "rps": round(statistics.median(r["rps"] for r in runs if r["variant"] == name), 1)}
    base = summary["off"]["us_per_req"]
    print(f"{'variant':8} {'req/s':>10} {'us/req':>8} {'extra us/req':>13}")
    for name, figures in summary.items():
        us = figures["us_per_req"]
        extra = f"{us - base:+.2f}" if us is not None and base is not None else "-"
        print(f"{name:8} {figures['rps']:>10.0f} {us if us is not None else '-':>8} {extra:>13}")
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    out = results / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-access-log.json"
    out.write_text(json.dumps({"rounds": rounds, "duration_s": duration, "summary": summary, "runs": runs},
                              indent=2) + "\n")
    print(f"written: {out.relative_to(BENCH.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
