#!/usr/bin/env python3
"""What metrics and the access log cost: one gateway, the same rules and requests, measured with
metrics off (`--no-metrics`, the plain run), with metrics on (the default), and with the access
log on in JSON (`--access-log --log-format json`, metrics off), in the same run. See
bench/README.md ("What metrics and the access log cost").

    .venv/bin/python bench/metrics_cost.py               # 1,000 exact rules, 3 rounds of 10 s each
    .venv/bin/python bench/metrics_cost.py --quick       # 1 round of 3 s: a smoke test
    .venv/bin/python bench/metrics_cost.py --rules 100000 --rounds 5

Each round runs every variant once, in an order rotated from round to round (so a machine that
gets busier during the run does not always hurt the same variant): `serve --workers 1` on CPU 1,
`wrk -t1 -c32` through bench/paths.lua on CPU 0 (taskset; PIN=0 turns it off), a warm-up, then
the measured run. Per run: requests/s (wrk), and the server's CPU per request: the utime + stime
of its process tree over the measured run (/proc/PID/stat) / the requests wrk completed. The
figures reported are the medians over the rounds, and each variant's ratio to the plain run.

Then, in process (`in_process`): the default server's request path alone, fed the same requests
from memory with metrics off and on in alternate batches, timed with `time.process_time`: what
metrics add per request, free of the network, of wrk and of whatever else the machine runs.

The check: metrics cost at most 5% on exact rules. Judged twice: the CPU metrics add per request
in process ÷ the plain run's CPU per request end to end (always); and the end-to-end CPU per
request with metrics on ÷ the plain run's, when the machine was quiet (other processes used at
most 0.15 cores; on a busy machine that ratio moves by ±10% from run to run and is reported, not
judged). req/s is printed beside it: one wrk thread is near its own limit against this server,
so req/s partly measures wrk. The access log's cost is reported, not checked. Writes bench/results/<UTC timestamp>-metrics-cost.json; exit status 0 when the check
passes, 3 when it does not, 1 on a setup error.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent / "redirectory"
#: The issue's bound: metrics cost at most this share of the plain run's CPU per request.
METRICS_BOUND = 0.05
HZ = os.sysconf("SC_CLK_TCK")
#: CPU cores used by other processes beyond which a run is marked busy (as in run.sh).
BUSY = 0.15


def log(msg: str) -> None:
    print(f"[metrics-cost {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: int, cmd: list[str]) -> list[str]:
    if os.environ.get("PIN", "1") == "1" and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu), *cmd]
    return cmd


def tree_pids(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return found


def cpu_ticks(root: int) -> int:
    """utime + stime of the process tree, in clock ticks."""
    total = 0
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def busy_ticks() -> int:
    """CPU ticks the whole machine spent busy (user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6, 7))


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def variants(serve_help: str) -> dict[str, list[str]]:
    """name -> extra `serve` arguments."""
    access = ["--no-metrics", "--access-log"]
    if "--log-format" in serve_help:
        name = "access-log-json"
        access += ["--log-format", "json"]
    else:  # a build before --log-format: the key=value access log
        name = "access-log"
    return {"plain": ["--no-metrics"], "metrics": [], name: access}


def wait_ready(admin: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=2) as response:
                if json.loads(response.read()).get("ready"):
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"serve was not ready after {timeout} s")


def wrk(port: int, paths: Path, seconds: int, connections: int) -> dict[str, Any]:
    cmd = pinned(0, ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                     str(BENCH / "paths.lua"), f"http://127.0.0.1:{port}", "--", str(paths)])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False).stdout
    lines = [line for line in out.splitlines() if line.startswith("BENCH_JSON ")]
    if not lines:
        raise RuntimeError(f"wrk gave no result:\n{out}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    return result


def measure(name: str, extra: list[str], database: str, paths: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    port, admin = free_port(), free_port()
    with (work / f"{name}.log").open("ab") as output:
        proc = subprocess.Popen(
            pinned(1, [str(BIN), "serve", "--database", database, "--port", str(port), "--admin-port", str(admin),
                       "--workers", "1", "--no-migrate", *extra]),
            stdout=output, stderr=output, start_new_session=True)
    try:
        wait_ready(admin, proc)
        wrk(port, paths, args.warmup, args.connections)
        before, started, machine, load = cpu_ticks(proc.pid), time.monotonic(), busy_ticks(), children_cpu_s()
        result = wrk(port, paths, args.duration, args.connections)
        cpu_s = (cpu_ticks(proc.pid) - before) / HZ
        wall = time.monotonic() - started
        wrk_s = children_cpu_s() - load
        other = max(0.0, (busy_ticks() - machine) / HZ - cpu_s - wrk_s) / wall
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    requests = int(result["requests"])
    errors = sum(int(v) for k, v in result["errors"].items() if k != "status_ge_400")
    return {"variant": name, "rps": float(result["rps"]), "requests": requests, "server_cpu_s": cpu_s,
            "server_cores": cpu_s / wall if wall else 0.0, "wrk_cores": wrk_s / wall, "other_cores": other,
            "us_per_req": cpu_s / requests * 1e6 if requests else None, "p99_ms": float(result["p99_ms"]),
            "socket_errors": errors, "status_ge_400": int(result["errors"]["status_ge_400"])}


class _Transport:
    """What the default server's connection needs of a transport: writes go nowhere."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else None

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    resume_reading = close = abort = write_eof = pause_reading

    def can_write_eof(self) -> bool:
        return True


def in_process(database: str, paths: Path, work: Path, batches: int, per_batch: int) -> dict[str, Any]:
    """The default server's request path alone, without the network, wrk or the event loop: the
    real connection (`GatewayProtocol`) fed the sample's requests from memory, answers written to
    a transport that drops them, with metrics off and on in alternate batches, each timed with
    `time.process_time`. Per-request CPU, free of the load generator and of scheduling noise."""
    from redirectory.gateway.config import GatewayConfig
    from redirectory.gateway.http1 import GatewayProtocol, Http1Server
    from redirectory.metrics import DIR_KEY

    requests = [f"GET {line.strip()} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
                for line in paths.read_text().splitlines() if line.strip()]
    (work / "in-process-metrics").mkdir(exist_ok=True)
    connections = {}
    for name, extra in (("plain", {}), ("metrics", {DIR_KEY: str(work / "in-process-metrics")})):
        server = Http1Server(GatewayConfig(database=database, extra=extra))
        server.gateway.load()
        conn = GatewayProtocol(server)
        conn.connection_made(_Transport())
        connections[name] = (server, conn)
    assert connections["plain"][0].gateway.metrics is None and connections["metrics"][0].gateway.metrics is not None

    def batch(name: str) -> float:
        server, conn = connections[name]
        buffer, feed = server.read_buffer, conn.buffer_updated
        count = len(requests)
        started = time.process_time()
        for i in range(per_batch):
            data = requests[i % count]
            buffer[: len(data)] = data
            feed(len(data))
        return (time.process_time() - started) / per_batch * 1e6

    for name in connections:  # warm-up: every answer cached
        batch(name)
    times: dict[str, list[float]] = {name: [] for name in connections}
    for i in range(batches):
        for name in (("plain", "metrics") if i % 2 == 0 else ("metrics", "plain")):
            times[name].append(batch(name))
    counted = connections["metrics"][0].gateway.metrics
    assert counted is not None
    redirects = sum(counted.snapshot(0, None)["requests"].values())
    if redirects != (batches + 1) * per_batch:
        raise RuntimeError(f"in-process: metrics counted {redirects} answers, not {(batches + 1) * per_batch}")
    plain, metrics = statistics.median(times["plain"]), statistics.median(times["metrics"])
    return {"batches": batches, "requests_per_batch": per_batch, "plain_us_per_req": plain,
            "metrics_us_per_req": metrics, "metrics_cost": metrics / plain - 1, "batch_us": times}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", type=int, default=1000, help="exact rules in the table [1000]")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (each runs every variant once) [3]")
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured run [10]")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each [2]")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections [32]")
    ap.add_argument("--batches", type=int, default=40, help="in-process batches, metrics off and on alternately [40]")
    ap.add_argument("--batch-size", type=int, default=20000, help="requests per in-process batch [20000]")
    ap.add_argument("--quick", action="store_true", help="1 round of 3 s, 1 s warm-up, 10 in-process batches")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (rules, database, logs)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup, args.batches = 1, 3, 1, 10
    if shutil.which("wrk") is None:
        log("wrk is not installed (apt-get install wrk)")
        return 1
    serve_help = subprocess.run([str(BIN), "serve", "--help"], capture_output=True, text=True,
                                env={**os.environ, "COLUMNS": "200"}, check=False).stdout
    plan = variants(serve_help)
    work = Path(tempfile.mkdtemp(prefix="redirectory-metrics-cost-"))
    try:
        log(f"work dir {work}: {args.rules} exact rules")
        subprocess.run([sys.executable, str(BENCH / "gen_rules.py"), "--kind", "exact", "--count", str(args.rules),
                        "--out", str(work)], check=True, capture_output=True)
        database = f"sqlite:///{work}/rules.db"
        subprocess.run([str(BIN), "rules", "apply", str(work / "rules.yaml"), "--database", database],
                       check=True, capture_output=True)
        runs: list[dict[str, Any]] = []
        names = list(plan)
        for round_no in range(args.rounds):
            order = names[round_no % len(names):] + names[: round_no % len(names)]
            for name in order:
                log(f"round {round_no + 1}/{args.rounds}: {name} ({' '.join(plan[name]) or 'defaults'})")
                run = measure(name, plan[name], database, work / "paths.txt", work, args)
                run["round"] = round_no + 1
                runs.append(run)
                log(f"  {run['rps']:,.0f} req/s, {run['us_per_req']:.1f} us/req, p99 {run['p99_ms']:.2f} ms; CPU cores "
                    f"server/wrk/other {run['server_cores']:.2f}/{run['wrk_cores']:.2f}/{run['other_cores']:.2f}"
                    + (" busy!" if run["other_cores"] > BUSY else ""))
        summary = summarise(runs, names)
        log(f"in process: {args.batches} alternate batches of {args.batch_size:,} requests, metrics off / on")
        alone = in_process(database, work / "paths.txt", work, args.batches, args.batch_size)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_table(summary, args)
    print(f"in process (the request path alone, median of {args.batches} batches of {args.batch_size:,}): "
          f"plain {alone['plain_us_per_req']:.2f} us/req, metrics {alone['metrics_us_per_req']:.2f} us/req")
    metrics = summary["metrics"]
    clean = all(r["socket_errors"] == 0 and r["status_ge_400"] == 0 for r in runs)
    added = alone["metrics_us_per_req"] - alone["plain_us_per_req"]
    alone["metrics_share_of_plain_run"] = share = added / summary["plain"]["us_per_req"]
    passed = clean and share <= METRICS_BOUND
    print(f"{'PASS' if passed else 'FAIL'} metrics cost: {added:+.2f} us of CPU per request in process, "
          f"{share * 100:+.1f}% of the plain run's {summary['plain']['us_per_req']:.1f} us/req end to end "
          f"(bound {METRICS_BOUND:.0%})" + ("" if clean else "; some runs had errors or non-3xx answers"))
    cost = metrics["us_ratio"] - 1
    if metrics["other_cores"] > BUSY or summary["plain"]["other_cores"] > BUSY:
        verdict = f"NOT JUDGED (busy machine: other processes used {metrics['other_cores']:.2f} cores)"
    else:
        verdict = "PASS" if cost <= METRICS_BOUND else "FAIL"
        passed = passed and cost <= METRICS_BOUND
    print(f"{verdict} metrics cost end to end: {cost * 100:+.1f}% CPU per request, "
          f"{(metrics['rps_ratio'] - 1) * 100:+.1f}% req/s (bound {METRICS_BOUND:.0%})")
    out = BENCH / "results" / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-metrics-cost.json"
    out.parent.mkdir(exist_ok=True)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip() or None
    out.write_text(json.dumps({"git_commit": commit, "rules": args.rules, "rounds": args.rounds, "duration_s": args.duration,
                               "connections": args.connections, "cpus": os.cpu_count(),
                               "loadavg_at_end": os.getloadavg(), "variants": plan, "runs": runs,
                               "summary": summary, "in_process": alone, "metrics_check_passed": passed},
                              indent=2))
    log(f"wrote {out}")
    return 0 if passed else 3


def summarise(runs: list[dict[str, Any]], names: list[str]) -> dict[str, dict[str, float]]:
    """Per variant: medians over the rounds, and the median over the rounds of its ratio to the
    plain run of the same round (paired: a round's runs are minutes apart at most)."""
    summary: dict[str, dict[str, float]] = {}
    plain = {r["round"]: r for r in runs if r["variant"] == names[0]}
    for name in names:
        mine = [r for r in runs if r["variant"] == name]
        summary[name] = {"rps": statistics.median(r["rps"] for r in mine),
                         "us_per_req": statistics.median(r["us_per_req"] for r in mine),
                         "p99_ms": statistics.median(r["p99_ms"] for r in mine),
                         "rps_ratio": statistics.median(r["rps"] / plain[r["round"]]["rps"] for r in mine),
                         "us_ratio": statistics.median(r["us_per_req"] / plain[r["round"]]["us_per_req"] for r in mine),
                         "other_cores": statistics.median(r["other_cores"] for r in mine)}
    return summary


def print_table(summary: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    print(f"## {args.rules} exact rules, --workers 1, wrk -t1 -c{args.connections}, "
          f"median of {args.rounds} x {args.duration} s")
    print(f"{'variant':<18}{'req/s':>10}{'vs plain':>10}{'us/req':>9}{'vs plain':>10}{'p99 ms':>9}{'other':>7}")
    for name, f in summary.items():
        print(f"{name:<18}{f['rps']:>10,.0f}{f['rps_ratio']:>9.3f}x{f['us_per_req']:>9.1f}"
              f"{f['us_ratio']:>9.3f}x{f['p99_ms']:>9.2f}{f['other_cores']:>7.2f}")
    print("(medians over the rounds; 'vs plain': the median of each round's ratio to that round's plain run;"
          f" 'other': CPU cores the rest of the machine used, above {BUSY} = busy)")


if __name__ == "__main__":
    sys.exit(main())
