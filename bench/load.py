#!/usr/bin/env python3
"""Under load: 256 connections for 60 s on exact and pattern rules, then the same while a
100k-rule `rules apply` runs against the live database. See bench/README.md ("Under load").

    .venv/bin/python bench/load.py                       # SQLite, 60 s per phase, nginx too
    .venv/bin/python bench/load.py --quick               # 10 s per phase, 20k-rule apply
    DATABASE=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/load.py

Phases, each `wrk -t1 -c256 -d60s` through bench/paths.lua (every status tallied) plus
bench/probe.py (4 keep-alive connections, one request each every 5 ms, every answer's latency
written down with its wall-clock time):
  nginx    the same table exported with `rules export --format nginx` (skipped without nginx)
  steady   redirectory on the table alone
  apply    redirectory while `rules apply` adds --apply-rules rules to the table, starting
           --apply-at seconds in; the apply window runs from its start until /healthz says every
           gateway serves the new revision ("converged"), and the probe's latencies inside that
           window are its p99 figure
The gateway runs with hit counting (always on); afterwards the hits it stored are compared with
the redirects the load generators received. Server on CPU 1, wrk, probe and the apply on CPU 0
(taskset; PIN=0 turns it off): the apply stands for a writer on another machine. The probe runs
at nice -10 when run as root, so that wrk and the apply on its CPU do not delay it. The apply
phase lasts --duration seconds or until 5 s after the gateway serves the new table, if later.

Prints one table and writes everything to bench/results/<UTC timestamp>-load.json.
Exit status 0 when every phase had 0 socket errors and only 3xx answers, 3 otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from propagation import cleanup, prepare  # noqa: E402  (a fresh PostgreSQL schema, dropped afterwards)

BIN = Path(sys.executable).parent / "redirectory"
#: The issue's bound on p99 latency during a big apply.
APPLY_P99_MS = 50.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: int, cmd: list[str]) -> list[str]:
    if os.environ.get("PIN", "1") == "1" and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu), *cmd]
    return cmd


def log(msg: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def get_json(port: int, path: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        data = json.loads(conn.getresponse().read())
        return data if isinstance(data, dict) else {}
    finally:
        conn.close()


def health(admin: int) -> dict[str, Any]:
    try:
        return get_json(admin, "/healthz")
    except (OSError, ValueError):
        return {}


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not after {timeout:.0f}s")
        time.sleep(0.1)


def precheck(port: int, expect: Path) -> str:
    """'ok', or the first of the first 20 sample paths that does not redirect as expected."""
    for line in expect.read_text().splitlines()[:20]:
        path, status, location = line.split("\t")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        got = response.getheader("location") or ""
        got = "/" + got.split("://", 1)[1].split("/", 1)[1] if "://" in got else got
        conn.close()
        if response.status != int(status) or got != location:
            return f"GET {path} -> {response.status} {got}, expected {status} {location}"
    return "ok"


def rss_kib(pid: int) -> int:
    """VmRSS of the process and its children."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


class Run:
    def __init__(self, args: argparse.Namespace, work: Path):
        self.args = args
        self.work = work
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, cmd: list[str], logfile: Path, cpu: int | None = None, nice: int = 0) -> subprocess.Popen[bytes]:
        full = pinned(cpu, cmd) if cpu is not None else cmd
        if nice and os.geteuid() == 0:  # the probe: its own scheduling delays are not the server's latency
            full = ["nice", "-n", str(nice), *full]
        proc = subprocess.Popen(full, stdout=logfile.open("wb"), stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)

    def load(self, name: str, port: int, during: Any = None) -> dict[str, Any]:
        """wrk + probe for --duration seconds; `during(t0)` runs meanwhile (the apply), and then the
        phase lasts until at least 5 s after it returns (wrk and the probe are stopped then)."""
        a = self.args
        paths = self.work / "paths.txt"
        limit = a.duration + (600 if during else 0)
        wrk = self.spawn(["timeout", str(limit + 60), "wrk", "-t1", f"-c{a.connections}",
                          f"-d{limit}s", "--latency", "-s", str(BENCH / "paths.lua"),
                          f"http://127.0.0.1:{port}", "--", str(paths), "count"],
                         self.work / f"{name}-wrk.txt", cpu=0)
        probe_out = self.work / f"{name}-probe.tsv"
        probe = self.spawn([sys.executable, str(BENCH / "probe.py"), "--port", str(port), "--paths", str(paths),
                            "--out", str(probe_out), "--duration", str(limit)],
                           self.work / f"{name}-probe.log", cpu=0, nice=-10)
        t0 = time.time()
        load_before = os.getloadavg()
        extra: dict[str, Any] = {}
        if during:
            extra = during(t0)
            time.sleep(max(0.0, max(t0 + a.duration, time.time() + 5) - time.time()))
            os.killpg(wrk.pid, signal.SIGINT)  # wrk reports what it measured so far
            os.killpg(probe.pid, signal.SIGTERM)
        for proc in (wrk, probe):
            proc.wait(timeout=a.duration + 120)
            self.procs.remove(proc)
        text = (self.work / f"{name}-wrk.txt").read_text()
        line = next((x for x in text.splitlines() if x.startswith("BENCH_JSON ")), None)
        if line is None:
            raise SystemExit(f"{name}: wrk gave no result:\n{text}")
        result: dict[str, Any] = json.loads(line[len("BENCH_JSON "):])
        samples = [(float(s), float(ms), int(st)) for s, ms, st in
                   (row.split("\t") for row in probe_out.read_text().splitlines())]
        errors = result["errors"]
        statuses = {int(k): v for k, v in result["statuses"].items()}
        out: dict[str, Any] = {
            "phase": name,
            "rps": round(result["rps"]),
            "requests": result["requests"],
            "p50_ms": round(result["p50_ms"], 2), "p99_ms": round(result["p99_ms"], 2),
            "max_ms": round(result["max_ms"], 2),
            "socket_errors": sum(errors[k] for k in ("connect", "read", "write", "timeout")),
            "wrk_errors": errors,
            "statuses": result["statuses"],
            "non_3xx": sum(n for code, n in statuses.items() if not 300 <= code < 400),
            "answered_3xx": sum(n for code, n in statuses.items() if 300 <= code < 400),
            "probe": self.probe_figures(samples, t0),
            "loadavg": [load_before, os.getloadavg()],
            **extra,
        }
        out["probe_3xx"] = sum(1 for _, _, st in samples if 300 <= st < 400)
        out["non_3xx"] += sum(1 for _, _, st in samples if not 300 <= st < 400)
        if "apply_start" in extra:
            w0, w1 = extra["apply_start"], extra["converged_at"]
            window = [ms for at, ms, _ in samples if w0 <= at <= w1]
            out["probe"]["apply_window"] = {"p50_ms": pct(window, 0.5), "p99_ms": pct(window, 0.99),
                                            "max_ms": pct(window, 1.0), "requests": len(window)}
        return out

    @staticmethod
    def probe_figures(samples: list[tuple[float, float, int]], t0: float) -> dict[str, Any]:
        latencies = [ms for _, ms, _ in samples]
        by_second: dict[int, list[float]] = {}
        for at, ms, _ in samples:
            by_second.setdefault(int(at - t0), []).append(ms)
        return {
            "requests": len(samples), "errors": sum(1 for _, _, st in samples if st == 0),
            "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99), "max_ms": pct(latencies, 1.0),
            "p99_per_second_ms": [pct(by_second[s], 0.99) for s in sorted(by_second)],
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database", default=os.environ.get("DATABASE", "sqlite"),
                    help="sqlite (a file in the work directory) or a postgresql:// URL (a fresh schema) [DATABASE]")
    ap.add_argument("--duration", type=int, default=60, help="seconds per phase [60]")
    ap.add_argument("--connections", type=int, default=256, help="wrk connections [256]")
    ap.add_argument("--rules", type=int, default=2000, help="table served: half exact, half placeholder [2000]")
    ap.add_argument("--apply-rules", type=int, default=100_000, help="rules the apply adds [100000]")
    ap.add_argument("--apply-at", type=float, default=5.0, help="seconds into the apply phase [5]")
    ap.add_argument("--server", default="httptools", help="`serve --server` [httptools]")
    ap.add_argument("--no-nginx", action="store_true", help="skip the nginx phase")
    ap.add_argument("--quick", action="store_true", help="10 s phases, a 20k-rule apply")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, probe samples)")
    a = ap.parse_args()
    if a.quick:
        a.duration, a.apply_rules = 10, 20_000
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    if not BIN.exists():
        raise SystemExit(f"no redirectory CLI at {BIN}: run `make install` and use .venv/bin/python")
    nginx = None if a.no_nginx else (shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None))

    work = Path(tempfile.mkdtemp(prefix="redirectory-load."))
    run = Run(a, work)
    token = None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    phases: list[dict[str, Any]] = []
    try:
        subprocess.run([sys.executable, str(BENCH / "gen_rules.py"), "--kind", "mixed", "--count", str(a.rules),
                        "--bulk", str(a.apply_rules), "--out", str(work)], check=True)
        url, token = prepare(a.database if a.database != "sqlite" else f"sqlite:///{work}/rules.db")
        kind = "postgresql" if token else "sqlite"
        cli = [str(BIN)]
        subprocess.run([*cli, "rules", "apply", str(work / "rules.yaml"), "--database", url], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log(f"{a.rules} rules ({kind}); phases of {a.duration}s, wrk -t1 -c{a.connections}; work dir {work}")

        if nginx:
            ndir = work / "nginx"
            subprocess.run([*cli, "rules", "export", "--format", "nginx", "--database", url, "--output", str(ndir)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            nport = free_port()
            conf = (BENCH / "nginx.conf.template").read_text()
            for key, value in (("@RUNDIR@", str(ndir)), ("@PORT@", str(nport)),
                               ("@MAP_CONF@", str(ndir / "redirectory-map.conf")),
                               ("@RETURN_CONF@", str(ndir / "redirectory-return.conf"))):
                conf = conf.replace(key, value)
            (ndir / "nginx.conf").write_text(conf)
            proc = run.spawn([nginx, "-e", str(ndir / "error.log"), "-p", str(ndir), "-c", str(ndir / "nginx.conf")],
                             work / "nginx.log", cpu=1)
            wait_until(lambda: precheck_safe(nport, work / "expect.tsv") == "ok", 30, "nginx answering the sample")
            log("nginx: measuring")
            result = run.load("nginx", nport)
            result["rss_kib"] = rss_kib(proc.pid)
            phases.append(result)
            run.stop(proc)

        port, admin = free_port(), free_port()
        serve = run.spawn([*cli, "serve", "--database", url, "--port", str(port), "--admin-port", str(admin),
                           "--workers", "1", "--server", a.server], work / "serve.log", cpu=1)
        wait_until(lambda: health(admin).get("ready") is True, 120, "redirectory ready")
        check = precheck(port, work / "expect.tsv")
        if check != "ok":
            raise SystemExit(f"redirectory pre-check failed: {check}")
        log("redirectory: steady")
        result = run.load("steady", port)
        result["rss_kib"] = rss_kib(serve.pid)
        phases.append(result)

        def apply(t0: float) -> dict[str, Any]:
            time.sleep(max(0.0, t0 + a.apply_at - time.time()))
            log(f"redirectory: rules apply of {a.rules + a.apply_rules} rules ({a.apply_rules} new)")
            started = time.time()
            done = subprocess.run(pinned(0, [*cli, "rules", "apply", str(work / "bulk.yaml"), "--database", url]),
                                  capture_output=True, text=True)
            ended = time.time()
            if done.returncode != 0:
                raise SystemExit(f"rules apply failed:\n{done.stdout}{done.stderr}")
            revision = health(admin).get("revision")
            wait_until(lambda: (h := health(admin)).get("converged") is True and h.get("revision") == revision,
                       a.duration + 120, "the gateway serving the applied table")
            converged = time.time()
            log(f"applied in {ended - started:.1f}s, served {converged - ended:.1f}s later")
            return {"apply_start": started, "apply_end": ended, "converged_at": converged,
                    "apply_s": round(ended - started, 2), "converge_s": round(converged - ended, 2),
                    "apply_starts_at_s": round(started - t0, 2), "converged_at_s": round(converged - t0, 2)}

        log("redirectory: apply")
        result = run.load("apply", port, during=apply)
        result["rss_kib"] = rss_kib(serve.pid)
        phases.append(result)
        run.stop(serve)  # SIGTERM: the last hit counts are flushed
        stats = subprocess.run([*cli, "rules", "stats", "--json", "--limit", "1", "--database", url],
                               capture_output=True, text=True, check=True)
        hits = sum(r["hits"] for r in json.loads(stats.stdout)["rules"])
        answered = sum(p["answered_3xx"] + p["probe_3xx"] for p in phases if p["phase"] != "nginx")
        # wrk stops with requests in flight: answered by the gateway (and counted) but never read.
        in_flight = 2 * (a.connections + 4)
        hits_ok = answered <= hits <= answered + in_flight
    finally:
        run.stop_all()
        if token:
            cleanup(token)
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")

    report = {"timestamp": stamp, "database": kind, "rules": a.rules, "apply_rules": a.apply_rules,
              "duration_s": a.duration, "connections": a.connections, "server": a.server, "cpus": os.cpu_count(),
              "git_commit": git_commit(), "phases": phases,
              "hits": {"stored": hits, "answered_3xx": answered, "ok": hits_ok}}
    print_table(report)
    out = BENCH / "results" / f"{stamp}-load.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresults written to {out}")
    clean = all(p["socket_errors"] == 0 and p["non_3xx"] == 0 for p in phases) and hits_ok
    return 0 if clean else 3


def precheck_safe(port: int, expect: Path) -> str:
    try:
        return precheck(port, expect)
    except OSError as exc:
        return str(exc)


def git_commit() -> str | None:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or None


def print_table(report: dict[str, Any]) -> None:
    phases = report["phases"]
    base = next((p for p in phases if p["phase"] == "nginx"), None)
    print(f"\n## under load: {report['rules']} rules (half exact, half placeholder), {report['database']},"
          f" wrk -c{report['connections']} {report['duration_s']}s per phase, --server {report['server']}")
    head = (f"{'phase':<8} {'req/s':>8} {'vs nginx':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
            f" {'sock err':>8} {'non-3xx':>7} {'probe p50/p99/max ms':>21} {'RSS MiB':>8}")
    print(head)
    print("-" * len(head))
    for p in phases:
        ratio = "(base)" if p is base else (f"{p['rps'] / base['rps']:.2f}x" if base else "-")
        probe = p["probe"]
        probe_cell = f"{probe['p50_ms']}/{probe['p99_ms']}/{probe['max_ms']}"
        print(f"{p['phase']:<8} {p['rps']:>8,} {ratio:>8} {p['p50_ms']:>7.2f} {p['p99_ms']:>7.2f} {p['max_ms']:>7.1f}"
              f" {p['socket_errors']:>8} {p['non_3xx']:>7}"
              f" {probe_cell:>21} {p['rss_kib'] / 1024:>8.1f}")
    apply = next((p for p in phases if p["phase"] == "apply"), None)
    if apply:
        w = apply["probe"]["apply_window"]
        verdict = "PASS" if w["p99_ms"] is not None and w["p99_ms"] < APPLY_P99_MS else "FAIL"
        print(f"\napply of {report['rules'] + report['apply_rules']} rules: {apply['apply_s']}s, served "
              f"{apply['converge_s']}s after it; probe during the apply window ({w['requests']} requests):"
              f" p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms, max {w['max_ms']} ms"
              f"  -> {verdict} (p99 < {APPLY_P99_MS:g} ms)")
        per_second = apply["probe"]["p99_per_second_ms"]
        print("probe p99 per second (ms): " + " ".join(f"{v:.0f}" for v in per_second if v is not None))
    h = report["hits"]
    print(f"hits stored {h['stored']:,} for {h['answered_3xx']:,} redirects received"
          f" ({'ok' if h['ok'] else 'MISMATCH'}: wrk leaves up to its connections' requests unread at the end)")


if __name__ == "__main__":
    sys.exit(main())
