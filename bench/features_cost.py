#!/usr/bin/env python3
"""What issue 18's features cost (query conditions, query policies, rules that redirect nothing,
lifecycle headers, phases), measured in process with the real code. See bench/README.md
("What issue 18's features cost").

    git worktree add /tmp/before 9fc34b1                 # the commit before the feature work
    .venv/bin/python bench/features_cost.py              # 100,000 plain rules; 10,000 per feature table
    .venv/bin/python bench/features_cost.py --quick      # small tables, few batches: a smoke test
    git worktree remove --force /tmp/before

1. Rules that do not use them: the same table of plain exact rules (bench/gen_rules.py) and the
   same requests, timed on this commit and on the one before (`--before-src`, its src/ directory):
   each side runs in its own worker process (this script with PYTHONPATH set to that src/), which
   applies the table to a new SQLite file with its own code and loads it. The parent alternates
   batches between the two workers. Timed: the engine's `decide` (a compact engine, as the gateway
   builds), and the default server's request path (`GatewayProtocol` fed requests from memory,
   answers to a transport that drops them, as bench/metrics_cost.py), with `time.process_time`.
2. Rules that do: tables whose every rule uses one feature against the same table without it, on
   this commit, alternating batches; each pair gets the same requests.

Reported: the median µs/request over the batches and the ratio. Writes
bench/results/<UTC>-features-cost.json. Exit status 0 when done (figures are reported, not judged;
the bounds are printed beside them), 1 on a setup error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

#: feature -> (feature table, baseline table, request mix, expected status)
PAIRS: dict[str, tuple[str, str, str, int]] = {
    "query_match (2 conditions)": ("qmatch", "plain", "q2", 301),
    "query policy strip+pass": ("policy", "plain", "utm", 301),
    "lifecycle headers": ("lifecycle", "plain", "bare", 301),
    "phases (past phase to 308)": ("phases", "plain308", "bare", 308),
    "plain rules beside 1 phased": ("onephased", "plain", "bare", 301),
    "status 404 vs a redirect": ("notredirected", "plain", "bare", 404),
    "status 404 vs no rule": ("notredirected", "elsewhere", "bare", 404),
    # issue 15's rule modes
    "scheme condition (http)": ("scheme", "plain", "bare", 301),
    "regex_query vs a path regex": ("regexquery", "regexpath", "q2", 301),
}
BOUND = 0.10


def log(msg: str) -> None:
    print(f"[features-cost {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the tables --------------------------------------------------------------------------------
def feature_yaml(kind: str, count: int) -> str:
    """A table of `count` exact rules /svc{i}/items/{i}, each with `kind`'s feature (or none)."""
    out = ["rules:"]
    for i in range(count):
        src, dst = f"/svc{i}/items/{i}", f"/v2/svc{i}/items/{i}"
        if kind == "elsewhere":  # the same table at other paths: the requests match no rule
            src, dst = f"/elsewhere{i}/items/{i}", f"/v2/elsewhere{i}/items/{i}"
        if kind == "notredirected":
            out.append(f"  - from: {src}\n    status: 404")
            continue
        status = {"plain308": 308, "phases": 307}.get(kind, 301)
        if kind in ("regexquery", "regexpath"):  # the same regexes, on path and query or on the path
            query = "\\?a=1&b=2" if kind == "regexquery" else ""
            mode = "\n    regex_query: true\n    query: drop" if kind == "regexquery" else ""
            out.append(f"  - from_regex: '^/svc{i}/items/{i}{query}$'{mode}\n    to: {dst}\n    status: 301")
            continue
        rule = f"  - from: {src}\n    to: {dst}\n    status: {status}"
        if kind == "qmatch":
            rule += '\n    query_match: {a: "1", b: "2"}'
        elif kind == "policy":
            rule += "\n    query: {strip: [utm_*], pass: all}"
        elif kind == "lifecycle":
            rule += ("\n    deprecation: 2026-06-01T00:00:00Z\n    sunset: 2027-01-01T00:00:00Z"
                     f"\n    links: {{successor-version: /v2/svc{i}/items/{i}}}")
        elif kind == "phases":
            rule += "\n    phases: [{starts: 2020-01-01T00:00:00Z, status: 308}]"
        elif kind == "scheme":
            rule += "\n    scheme: http"
        out.append(rule)
    if kind == "onephased":  # one more rule, with phases, that no request asks for
        out.append("  - from: /phased/elsewhere\n    to: /v2/phased\n    status: 307"
                   "\n    phases: [{starts: 2020-01-01T00:00:00Z, status: 308}]")
    return "\n".join(out) + "\n"


def mixes(paths: list[str]) -> dict[str, list[str]]:
    return {"bare": paths, "q2": [p + "?a=1&b=2" for p in paths], "utm": [p + "?utm_source=mail&a=1" for p in paths]}


# -- the worker: one version of redirectory, its tables loaded, timing batches on demand --------
class _Transport:
    """What the default server's connection needs of a transport: writes are only counted."""

    def __init__(self) -> None:
        self.statuses: dict[str, int] = {}
        self.count = False

    def write(self, data: bytes) -> None:
        if self.count and data[:5] == b"HTTP/":
            code = bytes(data[9:12]).decode()
            self.statuses[code] = self.statuses.get(code, 0) + 1

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


def worker(args: argparse.Namespace) -> int:
    import redirectory
    from redirectory.gateway.config import GatewayConfig
    from redirectory.gateway.http1 import GatewayProtocol, Http1Server
    from redirectory.rules.engine import Engine, EngineOptions, Request
    from redirectory.rules.parsing import loads
    from redirectory.store import Store

    where = Path(redirectory.__file__).resolve()
    if args.src and not where.is_relative_to(Path(args.src).resolve()):
        raise SystemExit(f"worker imported {where}, not the code under {args.src}")
    work = Path(args.work)
    paths = [p for p in (work / "paths.txt").read_text().splitlines() if p]
    engines, servers = {}, {}
    for table in args.table:
        yaml_file = work / f"{table}.yaml"
        ruleset, problems = loads(yaml_file.read_text(), "yaml", str(yaml_file))
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise SystemExit(f"{yaml_file}: {errors[0]}")
        database = f"sqlite:///{work}/{args.label}-{table}.db"
        store = Store.open(database, create=True)
        store.upgrade()
        store.apply(ruleset, actor="rules apply")
        store.close()
        engines[table] = Engine(ruleset, EngineOptions(compact=True))
        server = Http1Server(GatewayConfig(database=database))
        server.gateway.load()
        transport = _Transport()
        conn = GatewayProtocol(server)
        conn.connection_made(transport)
        servers[table] = (server, conn, transport)
    requests = {name: [Request("GET", p.partition("?")[0], p.partition("?")[2], host="127.0.0.1") for p in ps]
                for name, ps in mixes(paths).items()}
    raw = {name: [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for p in ps]
           for name, ps in mixes(paths).items()}

    def run(kind: str, table: str, mix: str, n: int, check: bool = False) -> tuple[float, dict[str, int]]:
        statuses: dict[str, int] = {}
        if kind == "engine":
            decide, reqs = engines[table].decide, requests[mix]
            count = len(reqs)
            started = time.process_time()
            for i in range(n):
                decide(reqs[i % count])
            spent = time.process_time() - started
            if check:
                for r in reqs:
                    code = str(decide(r).response.status)
                    statuses[code] = statuses.get(code, 0) + 1
        else:
            server, conn, transport = servers[table]
            buffer, feed, data_list = server.read_buffer, conn.buffer_updated, raw[mix]
            count = len(data_list)
            transport.count, transport.statuses = check, statuses
            started = time.process_time()
            for i in range(n):
                data = data_list[i % count]
                buffer[: len(data)] = data
                feed(len(data))
            spent = time.process_time() - started
            transport.count = False
        return spent / n * 1e6, statuses

    print(json.dumps({"ready": str(where)}), flush=True)
    for line in sys.stdin:
        kind, table, mix, n, check = line.split()
        us, statuses = run(kind, table, mix, int(n), check == "1")
        print(json.dumps({"us": us, "statuses": statuses}), flush=True)
    return 0


class Worker:
    def __init__(self, label: str, src: Path, work: Path, tables: list[str]):
        env = {**os.environ, "PYTHONPATH": str(src)}
        cmd = [sys.executable, str(Path(__file__).resolve()), "worker", "--label", label, "--src", str(src),
               "--work", str(work)] + [a for t in tables for a in ("--table", t)]
        self.label = label
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {label} ({src}) failed to start")
        self.where = json.loads(line)["ready"]

    def time(self, kind: str, table: str, mix: str, n: int, check: bool = False) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{kind} {table} {mix} {n} {int(check)}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.label} died")
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def compare(a: tuple[Worker, str, str], b: tuple[Worker, str, str], kind: str, expect: int,
            batches: int, size: int) -> dict[str, Any]:
    """Alternate batches of `a` (the baseline) and `b`; median µs/request each and the ratio b/a.
    Every answer of `b` must have status `expect`, and `a`'s the same but where the baseline of a
    404 rule is a redirecting one (table `plain`)."""
    sides = {"a": a, "b": b}
    for name, (w, table, mix) in sides.items():  # warm-up, and every answer is what it should be
        got = w.time(kind, table, mix, size, check=True)
        want = 301 if name == "a" and table == "plain" else expect
        if set(got["statuses"]) != {str(want)}:
            raise RuntimeError(f"{w.label} {kind} {table}/{mix}: answers {got['statuses']}, expected all {want}")
    times: dict[str, list[float]] = {"a": [], "b": []}
    for i in range(batches):
        for name in (("a", "b") if i % 2 == 0 else ("b", "a")):
            w, table, mix = sides[name]
            times[name].append(w.time(kind, table, mix, size)["us"])
    ma, mb = statistics.median(times["a"]), statistics.median(times["b"])
    ratios = [y / x for x, y in zip(times["a"], times["b"], strict=True)]
    return {"base_us": ma, "feature_us": mb, "ratio": mb / ma, "ratio_of_pairs": statistics.median(ratios),
            "batch_us": times}


def busy_ticks() -> int:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6, 7))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        wp = argparse.ArgumentParser()
        wp.add_argument("--label", required=True)
        wp.add_argument("--src")
        wp.add_argument("--work", required=True)
        wp.add_argument("--table", action="append", default=[])
        return worker(wp.parse_args(argv[1:]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before-src", default="/tmp/before/src",
                    help="src/ of the commit to compare with [/tmp/before/src: git worktree add /tmp/before 9fc34b1]")
    ap.add_argument("--rules", type=int, default=100000, help="plain exact rules for part 1 [100000]")
    ap.add_argument("--feature-rules", type=int, default=10000, help="rules per feature table [10000]")
    ap.add_argument("--batches", type=int, default=20, help="batches per side [20]")
    ap.add_argument("--batch-size", type=int, default=20000, help="requests per batch [20000]")
    ap.add_argument("--quick", action="store_true", help="300 / 50 rules, 2 batches of 500: a smoke test")
    ap.add_argument("--parts", default="1,2", help="which parts to run [1,2]")
    ap.add_argument("--no-json", action="store_true", help="do not write bench/results/...json")
    args = ap.parse_args(argv)
    if args.quick:
        args.rules, args.feature_rules, args.batches, args.batch_size = 300, 50, 2, 500
    before_src, after_src = Path(args.before_src), ROOT / "src"
    if not (before_src / "redirectory" / "__init__.py").exists():
        log(f"{before_src} holds no redirectory package: git worktree add /tmp/before 9fc34b1 (or --before-src)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="redirectory-features-cost-"))
    workers: list[Worker] = []
    load0, ticks0, wall0 = os.getloadavg(), busy_ticks(), time.monotonic()
    result: dict[str, Any] = {"rules": args.rules, "feature_rules": args.feature_rules, "batches": args.batches,
                              "batch_size": args.batch_size, "before_src": str(before_src), "cpus": os.cpu_count(),
                              "loadavg_at_start": load0}
    try:
        if "1" in args.parts.split(","):
            result["part1"] = part1(work, before_src, after_src, args, workers)
        if "2" in args.parts.split(","):
            result["part2"] = part2(work, after_src, args, workers)
    finally:
        for w in workers:
            w.close()
        shutil.rmtree(work, ignore_errors=True)
    report(result, args, load0, ticks0, wall0)
    return 0


def part1(work: Path, before_src: Path, after_src: Path, args: argparse.Namespace,
          workers: list[Worker]) -> dict[str, Any]:
    subprocess.run([sys.executable, str(BENCH / "gen_rules.py"), "--kind", "exact", "--count", str(args.rules),
                    "--out", str(work / "p1")], check=True, capture_output=True)
    (work / "p1" / "plain.yaml").write_text((work / "p1" / "rules.yaml").read_text())
    log(f"part 1: {args.rules:,} plain exact rules, before ({before_src}) and now, each worker applies and loads")
    before = Worker("before", before_src, work / "p1", ["plain"])
    workers.append(before)
    now = Worker("now", after_src, work / "p1", ["plain"])
    workers.append(now)
    found: dict[str, Any] = {}
    for kind in ("engine", "server"):
        found[kind] = compare((before, "plain", "bare"), (now, "plain", "bare"), kind, 301,
                              args.batches, args.batch_size)
        log(f"  {kind}: before {found[kind]['base_us']:.2f} us/req, now {found[kind]['feature_us']:.2f}, "
            f"ratio {found[kind]['ratio']:.3f}")
    for w in (before, now):
        w.close()
    workers.clear()
    return found


def part2(work: Path, after_src: Path, args: argparse.Namespace, workers: list[Worker]) -> dict[str, Any]:
    p2 = work / "p2"
    p2.mkdir()
    subprocess.run([sys.executable, str(BENCH / "gen_rules.py"), "--kind", "exact", "--count",
                    str(args.feature_rules), "--out", str(p2)], check=True, capture_output=True)
    tables = sorted({t for f, b, _m, _s in PAIRS.values() for t in (f, b)})
    for t in tables:
        (p2 / f"{t}.yaml").write_text(feature_yaml(t, args.feature_rules))
    log(f"part 2: {args.feature_rules:,} rules per table: {', '.join(tables)}")
    w2 = Worker("now", after_src, p2, tables)
    workers.append(w2)
    costs: dict[str, dict[str, Any]] = {}
    for feature, (table, base, mix, status) in PAIRS.items():
        costs[feature] = {}
        for kind in ("engine", "server"):
            r = compare((w2, base, mix), (w2, table, mix), kind, status, args.batches, args.batch_size)
            r.update(table=table, baseline=base, requests=mix)
            costs[feature][kind] = r
            log(f"  {feature} {kind}: {r['base_us']:.2f} -> {r['feature_us']:.2f} us/req, ratio {r['ratio']:.3f}")
    return costs


def report(result: dict[str, Any], args: argparse.Namespace, load0: tuple[float, float, float], ticks0: int,
           wall0: float) -> None:
    wall = time.monotonic() - wall0
    other = (busy_ticks() - ticks0) / os.sysconf("SC_CLK_TCK") / wall
    result.update(loadavg_at_end=os.getloadavg(), machine_busy_cores=other, wall_s=wall)
    print(f"## issue 18 features, in process, median of {args.batches} alternating batches of {args.batch_size:,}")
    if "part1" in result:
        print(f"1. rules that do not use them: {args.rules:,} plain exact rules, before -> now")
        print(f"{'path':<10}{'before us':>11}{'now us':>9}{'ratio':>8}")
    for kind, r in result.get("part1", {}).items():
        print(f"{kind:<10}{r['base_us']:>11.2f}{r['feature_us']:>9.2f}{r['ratio']:>8.3f}")
    if "part2" in result:
        print(f"2. rules that do: {args.feature_rules:,} rules per table, the feature vs the same table without it "
              f"(bound {BOUND:.0%})")
        print(f"{'feature':<30}{'path':<8}{'without us':>11}{'with us':>9}{'ratio':>8}")
    for feature, kinds in result.get("part2", {}).items():
        for kind, r in kinds.items():
            print(f"{feature:<30}{kind:<8}{r['base_us']:>11.2f}{r['feature_us']:>9.2f}{r['ratio']:>8.3f}")
    print(f"machine: load average {load0[0]:.2f} at start, {result['loadavg_at_end'][0]:.2f} at end; "
          f"{other:.2f} cores busy on average during the run (this script included, ~1 core)")
    if not args.no_json:
        out = BENCH / "results" / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-features-cost.json"
        out.parent.mkdir(exist_ok=True)
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=False).stdout.strip() or None
        result["git_commit"] = commit
        out.write_text(json.dumps(result, indent=2))
        log(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
