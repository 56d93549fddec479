#!/usr/bin/env python3
"""Table-size measurements: rules validate / apply, start-up and memory, redirectory beside nginx.

Standard library only. No load generator: what it takes to hold a big table, not how fast it is
answered (bench/run.sh does that, and runs this script's validate/apply part per scenario).

    python3 bench/scale.py exact-1m                       # every step, YAML + JSON + CSV
    python3 bench/scale.py regex-100k --formats yaml --steps validate,apply,serve
    python3 bench/scale.py exact-1m --rules-dir /tmp/b/exact-1m   # reuse generated files
    python3 bench/scale.py --list                         # the scenarios

Steps (--steps, default all), each timed with its peak RSS (the process's high-water mark):
  validate  `redirectory rules validate FILE` per format (--formats: yaml,json,csv)
  apply     `redirectory rules apply FILE --database sqlite:///NEW.db` per format, each to a new
            database (the YAML one is kept for `serve`; --database puts it elsewhere)
  serve     `redirectory serve --workers 1` start -> /healthz 200 with "ready": true; RSS of the
            process tree when ready (VmRSS, and the peak VmHWM), CPU seconds spent starting; then
            20 sample requests (their time is reported: lazily compiled rules show up there)
  nginx     `rules export --format nginx` (or gen_rules' hand-made files: --nginx-source gen),
            `nginx -t`, then nginx start -> the first sample path answering; RSS as above

Prints one table and writes everything to --json (default bench/results/<UTC>-scale-<scenario>.json).
Every process it starts runs in its own session and is stopped on exit, Ctrl-C included; each
command is bounded by --timeout seconds.

`scale.py measure --json OUT [--timeout S] -- CMD...` runs one command the same way and writes
{wall_s, cpu_s, peak_rss_kib, rc, output_lines}: bench/run.sh uses it.
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

#: scenario -> (gen_rules kind, rule count). bench/run.sh reads it (`scale.py describe NAME`).
SCENARIOS: dict[str, tuple[str, int]] = {
    "exact-1k": ("exact", 1_000),
    "exact-100k": ("exact", 100_000),
    "exact-1m": ("exact", 1_000_000),
    "placeholder-10k": ("placeholder", 10_000),
    "placeholder-100k": ("placeholder", 100_000),
    "regex-10k": ("regex", 10_000),
    "regex-100k": ("regex", 100_000),
    "mixed": ("mixed3", 120_000),  # 100k exact + 10k placeholder + 10k regex, interleaved
    "mixed-1.2m": ("mixed3", 1_200_000),  # 1M exact + 100k placeholder + 100k regex
}
FORMATS = ("yaml", "json", "csv")
STEPS = ("validate", "apply", "serve", "nginx")
HZ = os.sysconf("SC_CLK_TCK")

_children: list[subprocess.Popen[bytes]] = []


def log(msg: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes
def tree_pids(root: int) -> list[int]:
    """root and all its descendants (from /proc)."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            parent[int(d)] = int(stat.rpartition(")")[2].split()[1])
    keep = [root]
    seen = {root}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parent.items():
            if ppid in seen and pid not in seen:
                seen.add(pid)
                keep.append(pid)
                changed = True
    return keep


def tree_status_kib(root: int, field: str, source: str = "status") -> int:
    """A /proc/PID/status field (VmRSS, VmHWM), or with source="smaps_rollup" Pss, summed over
    the process tree, in KiB. Summed VmRSS counts pages a forked worker shares with its parent
    (nginx's master and worker both map the whole configuration) twice; Pss splits them."""
    total = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def tree_cpu_s(root: int) -> float:
    """utime + stime of the process tree, in seconds."""
    ticks = 0
    for pid in tree_pids(root):
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(f[11]) + int(f[12])
    return ticks / HZ


def spawn(cmd: list[str], logf: Path) -> subprocess.Popen[bytes]:
    with logf.open("ab") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    _children.append(p)
    return p


def stop(p: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process, SIGKILL to its session after 10 s."""
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            log(f"pid {p.pid} still running after 10 s: SIGKILL")
    try:
        os.killpg(p.pid, signal.SIGKILL)  # stragglers share its session's process group
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        pass
    if p in _children:
        _children.remove(p)


def stop_all(signum: int | None = None, _frame: object = None) -> None:
    for p in list(_children):
        stop(p)
    if signum is not None:
        sys.exit(128 + signum)


def measure(cmd: list[str], logf: Path, timeout: float) -> dict[str, Any]:
    """Run cmd to completion: wall time, CPU, peak RSS (ru_maxrss), exit status, output lines."""
    t0 = time.monotonic()
    p = spawn(cmd, logf)
    rc: int | None = None
    ru = None
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            rc = os.waitstatus_to_exitcode(status)
            p.returncode = rc
            break
        if time.monotonic() - t0 > timeout:
            log(f"{cmd[0]}: still running after {timeout:.0f} s: stopping it")
            stop(p)
            break
        time.sleep(0.05)
    wall = time.monotonic() - t0
    if p in _children:
        _children.remove(p)
    lines = sum(1 for _ in logf.open("rb")) if logf.exists() else 0
    return {
        "cmd": " ".join(cmd),
        "wall_s": round(wall, 2),
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 2) if rc is not None and ru else None,
        "peak_rss_kib": ru.ru_maxrss if rc is not None and ru else None,
        "rc": rc if rc is not None else "timeout",
        "output_lines": lines,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str, bytes]:
    """(status, Location, body) of GET path; (0, '', b'') when nothing answers."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, r.getheader("Location") or "", body
    except (OSError, http.client.HTTPException):
        return 0, "", b""


def check_sample(port: int, expect: Path, n: int = 20) -> tuple[str, float]:
    """The first n sample paths must redirect as expected: ("ok" or the first problem, seconds)."""
    t0 = time.monotonic()
    with expect.open() as f:
        for i, line in enumerate(f):
            if i >= n:
                break
            path, status, loc = line.rstrip("\n").split("\t")
            code, got, _ = get(port, path, timeout=30)
            if got.startswith(("http://", "https://")):
                got = "/" + got.split("://", 1)[1].partition("/")[2]
            if str(code) != status or got != loc:
                return f"GET {path} -> {code} {got or '(no Location)'}, expected {status} {loc}", \
                    time.monotonic() - t0
    return "ok", time.monotonic() - t0


# ---------------------------------------------------------------- steps
def gen(kind: str, count: int, out: Path, formats: list[str], nginx_dir: Path | None) -> None:
    cmd = [sys.executable, str(BENCH / "gen_rules.py"), "--kind", kind, "--count", str(count),
           "--out", str(out), "--formats", ",".join(formats)]
    if nginx_dir is not None:
        cmd += ["--nginx-dir", str(nginx_dir)]
    subprocess.run(cmd, check=True)


def step_validate(r: str, rules: Path, work: Path, fmt: str, timeout: float) -> dict[str, Any]:
    res = measure([r, "rules", "validate", str(rules / f"rules.{fmt}")], work / f"validate-{fmt}.log", timeout)
    log(f"validate {fmt}: {res['wall_s']} s, {kib(res['peak_rss_kib'])} MiB peak, rc {res['rc']}, "
        f"{res['output_lines']} output lines")
    return res


def step_apply(r: str, rules: Path, work: Path, fmt: str, db: str, timeout: float) -> dict[str, Any]:
    res = measure([r, "rules", "apply", str(rules / f"rules.{fmt}"), "--database", db],
                  work / f"apply-{fmt}.log", timeout)
    res["database"] = db.split(":", 1)[0]
    if db.startswith("sqlite:///"):
        f = Path(db[len("sqlite:///"):])
        res["db_mib"] = round(sum(p.stat().st_size for p in f.parent.glob(f.name + "*")) / 2**20, 1) \
            if f.exists() else None
    log(f"apply {fmt}: {res['wall_s']} s, {kib(res['peak_rss_kib'])} MiB peak, rc {res['rc']}")
    return res


def step_serve(r: str, db: str, rules: Path, work: Path, timeout: float, count: int,
               extra: list[str]) -> dict[str, Any]:
    port, aport = free_port(), free_port()
    while aport == port:
        aport = free_port()
    logf = work / "serve.log"
    t0 = time.monotonic()
    p = spawn([r, "serve", "--database", db, "--host", "127.0.0.1", "--port", str(port),
               "--admin-port", str(aport), "--workers", "1", *extra], logf)
    res: dict[str, Any] = {"ready": False}
    try:
        while time.monotonic() - t0 < timeout:
            if p.poll() is not None:
                res["error"] = f"serve exited ({p.returncode}): " + logf.read_text()[-2000:]
                return res
            code, _, body = get(aport, "/healthz", timeout=2)
            if code == 200:
                try:
                    h = json.loads(body)
                except ValueError:
                    h = {}
                if not isinstance(h, dict) or h.get("ready", True) is True:
                    res.update(ready=True, healthz_rules=h.get("rules") if isinstance(h, dict) else None)
                    break
            time.sleep(0.1)
        res["startup_s"] = round(time.monotonic() - t0, 2)
        if not res["ready"]:
            res["error"] = f"not ready after {timeout:.0f} s"
            return res
        res["startup_cpu_s"] = round(tree_cpu_s(p.pid), 2)
        res["rss_ready_kib"] = tree_status_kib(p.pid, "VmRSS")
        res["pss_ready_kib"] = tree_status_kib(p.pid, "Pss", "smaps_rollup")
        res["hwm_ready_kib"] = tree_status_kib(p.pid, "VmHWM")
        res["processes"] = len(tree_pids(p.pid))
        res["sample"], t = check_sample(port, rules / "expect.tsv")
        res["sample_20_s"] = round(t, 3)
        res["rss_after_sample_kib"] = tree_status_kib(p.pid, "VmRSS")
        if res.get("healthz_rules") not in (None, count):
            log(f"WARNING: /healthz says rules={res['healthz_rules']}, expected {count}")
        log(f"serve: ready in {res['startup_s']} s ({res['startup_cpu_s']} CPU s), "
            f"RSS {kib(res['rss_ready_kib'])} MiB (peak {kib(res['hwm_ready_kib'])}), "
            f"20 requests {res['sample_20_s']} s: {res['sample']}")
        return res
    finally:
        stop(p)


def step_nginx(r: str, db: str | None, rules: Path, work: Path, timeout: float,
               source: str) -> dict[str, Any]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    res: dict[str, Any] = {"nginx_source": source}
    if source == "export":
        assert db is not None
        ndir = work / "nginx-export"
        ex = measure([r, "rules", "export", "--format", "nginx", "--database", db, "--output", str(ndir)],
                     work / "export.log", timeout)
        res["export"] = ex
        if ex["rc"] != 0:
            res["error"] = "rules export --format nginx failed: " + (work / "export.log").read_text()[-2000:]
            return res
        log(f"export nginx: {ex['wall_s']} s, {kib(ex['peak_rss_kib'])} MiB peak")
    else:
        ndir = rules / "nginx-gen"
    run = work / "nginx-run"
    run.mkdir(exist_ok=True)
    port = free_port()
    conf = (BENCH / "nginx.conf.template").read_text()
    for k, v in {"@RUNDIR@": str(run), "@PORT@": str(port), "@MAP_CONF@": str(ndir / "redirectory-map.conf"),
                 "@RETURN_CONF@": str(ndir / "redirectory-return.conf")}.items():
        conf = conf.replace(k, v)
    (run / "nginx.conf").write_text(conf)
    t = measure([nginx, "-t", "-q", "-e", str(run / "error.log"), "-p", str(run), "-c", str(run / "nginx.conf")],
                work / "nginx-t.log", timeout)
    res["config_test_s"] = t["wall_s"]
    if t["rc"] != 0:
        res["error"] = "nginx -t: " + (work / "nginx-t.log").read_text()[-2000:]
        return res
    probe = (rules / "paths.txt").read_text().split("\n", 1)[0]
    t0 = time.monotonic()
    p = spawn([nginx, "-e", str(run / "error.log"), "-p", str(run), "-c", str(run / "nginx.conf")],
              run / "stdout.log")
    try:
        while time.monotonic() - t0 < timeout:
            if p.poll() is not None:
                res["error"] = "nginx exited: " + (run / "error.log").read_text()[-2000:]
                return res
            if get(port, probe, timeout=30)[0]:
                break
            time.sleep(0.05)
        res["startup_s"] = round(time.monotonic() - t0, 2)
        res["startup_cpu_s"] = round(tree_cpu_s(p.pid), 2)
        res["rss_ready_kib"] = tree_status_kib(p.pid, "VmRSS")
        res["pss_ready_kib"] = tree_status_kib(p.pid, "Pss", "smaps_rollup")
        res["hwm_ready_kib"] = tree_status_kib(p.pid, "VmHWM")
        res["processes"] = len(tree_pids(p.pid))
        res["sample"], t_s = check_sample(port, rules / "expect.tsv")
        res["sample_20_s"] = round(t_s, 3)
        log(f"nginx: ready in {res['startup_s']} s, RSS {kib(res['rss_ready_kib'])} MiB "
            f"(peak {kib(res['hwm_ready_kib'])}), 20 requests {res['sample_20_s']} s: {res['sample']}")
        return res
    finally:
        stop(p)


def kib(v: int | None) -> str:
    return "-" if v is None else f"{v / 1024:.0f}"


# ---------------------------------------------------------------- report
def table(results: list[dict[str, Any]]) -> str:
    lines = []
    for res in results:
        lines.append(f"\n## {res['scenario']} ({res['rules']:,} {res['kind']} rules)")
        lines.append(f"{'step':<22} {'wall s':>8} {'CPU s':>7} {'peak MiB':>9}  notes")
        for fmt, v in res.get("validate", {}).items():
            lines.append(f"{'validate ' + fmt:<22} {v['wall_s']:>8} {fmt_n(v['cpu_s']):>7} "
                         f"{kib(v['peak_rss_kib']):>9}  rc {v['rc']}, {v['output_lines']} output lines")
        for fmt, v in res.get("apply", {}).items():
            db = f", db {v['db_mib']} MiB" if v.get("db_mib") is not None else ""
            lines.append(f"{'apply ' + fmt:<22} {v['wall_s']:>8} {fmt_n(v['cpu_s']):>7} "
                         f"{kib(v['peak_rss_kib']):>9}  rc {v['rc']}{db}")
        for name in ("serve", "nginx"):
            v = res.get(name)
            if not v:
                continue
            if "export" in v:
                e = v["export"]
                lines.append(f"{'export nginx':<22} {e['wall_s']:>8} {fmt_n(e['cpu_s']):>7} "
                             f"{kib(e['peak_rss_kib']):>9}  rc {e['rc']}")
            if "startup_s" not in v or "rss_ready_kib" not in v:
                lines.append(f"{name + ' start':<22} {'-':>8} {'-':>7} {'-':>9}  {v.get('error', '?')[:200]}")
                continue
            note = (f"ready: RSS {kib(v['rss_ready_kib'])} MiB, PSS {kib(v.get('pss_ready_kib'))} MiB"
                    f" ({v.get('processes', '?')} process{'' if v.get('processes') == 1 else 'es'}); 20 requests {v['sample_20_s']} s: {v['sample']}")
            lines.append(f"{name + ' start -> ready':<22} {v['startup_s']:>8} {fmt_n(v['startup_cpu_s']):>7} "
                         f"{kib(v['hwm_ready_kib']):>9}  {note}")
        s, n = res.get("serve") or {}, res.get("nginx") or {}
        if s.get("rss_ready_kib") and n.get("rss_ready_kib"):
            pss = f", PSS {s['pss_ready_kib'] / n['pss_ready_kib']:.2f}x" \
                if s.get("pss_ready_kib") and n.get("pss_ready_kib") else ""
            lines.append(f"redirectory / nginx: start-up {s['startup_s'] / max(n['startup_s'], 0.01):.2f}x, "
                         f"RSS {s['rss_ready_kib'] / n['rss_ready_kib']:.2f}x{pss}")
    return "\n".join(lines)


def fmt_n(v: float | None) -> str:
    return "-" if v is None else str(v)


# ---------------------------------------------------------------- main
def main_measure(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="scale.py measure", description="Run one command, measured.")
    ap.add_argument("--json", required=True, type=Path)
    ap.add_argument("--log", type=Path, help="the command's output [JSON path with .log]")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("give the command after --")
    logf = a.log or a.json.with_suffix(".log")
    logf.unlink(missing_ok=True)
    res = measure(cmd, logf, a.timeout)
    a.json.write_text(json.dumps(res) + "\n")
    return res["rc"] if isinstance(res["rc"], int) else 124


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop_all)
    try:
        if argv[:1] == ["measure"]:
            return main_measure(argv[1:])
        if argv[:1] == ["describe"]:  # for run.sh: "KIND COUNT" of a scenario
            if len(argv) != 2 or argv[1] not in SCENARIOS:
                print(f"unknown scenario {' '.join(argv[1:])} (known: {' '.join(SCENARIOS)})", file=sys.stderr)
                return 2
            kind, count = SCENARIOS[argv[1]]
            print(kind, count)
            return 0
        return main_scale(argv)
    finally:
        stop_all()


def main_scale(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Scenarios: " + ", ".join(f"{k} ({v[1]:,} {v[0]})" for k, v in SCENARIOS.items()))
    ap.add_argument("scenarios", nargs="*", metavar="SCENARIO")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {', '.join(STEPS)} [all]")
    ap.add_argument("--formats", default=",".join(FORMATS), help="rule file formats to validate and apply [yaml,json,csv]")
    ap.add_argument("--rules-dir", type=Path,
                    help="reuse this directory's rules.* / paths.txt / expect.tsv (one scenario); missing files are generated")
    ap.add_argument("--database", help="where the YAML (else first format's) apply goes and serve/export read "
                                       "[a new SQLite database in the work directory]")
    ap.add_argument("--work", type=Path, help="work directory [a temporary one, removed at the end]")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--nginx-source", choices=("export", "gen"), default="export")
    ap.add_argument("--redirectory", default=os.environ.get("REDIRECTORY", str(ROOT / ".venv" / "bin" / "redirectory")))
    ap.add_argument("--serve-args", default=os.environ.get("REDIRECTORY_SERVE_ARGS", ""),
                    help="extra arguments for `redirectory serve`")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per command [1800]")
    ap.add_argument("--json", type=Path, help="results file [bench/results/<UTC>-scale-<scenarios>.json]")
    a = ap.parse_args(argv)
    if a.list:
        for k, (kind, n) in SCENARIOS.items():
            print(f"{k:<18} {n:>10,} {kind}")
        return 0
    if not a.scenarios:
        ap.error("name a scenario (--list shows them)")
    unknown = [s for s in a.scenarios if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario {', '.join(unknown)} (--list shows them)")
    steps = [s.strip() for s in a.steps.split(",") if s.strip()]
    formats = [f.strip() for f in a.formats.split(",") if f.strip()]
    if not set(steps) <= set(STEPS) or not set(formats) <= set(FORMATS) or not formats:
        ap.error(f"--steps from {', '.join(STEPS)}; --formats from {', '.join(FORMATS)}")
    if (a.rules_dir or a.database) and len(a.scenarios) > 1:
        ap.error("--rules-dir and --database take one scenario")
    r = a.redirectory
    if not (Path(r).exists() or shutil.which(r)):
        ap.error(f"redirectory CLI not found at {r} (make install, or --redirectory)")

    work_root = a.work or Path(tempfile.mkdtemp(prefix="redirectory-scale."))
    work_root.mkdir(parents=True, exist_ok=True)
    ts = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    results: list[dict[str, Any]] = []
    try:
        for sc in a.scenarios:
            kind, count = SCENARIOS[sc]
            work = work_root / sc
            work.mkdir(exist_ok=True)
            rules = a.rules_dir or work
            need = [f for f in formats if not (rules / f"rules.{f}").exists()]
            ngen = rules / "nginx-gen" if a.nginx_source == "gen" and "nginx" in steps \
                and not (rules / "nginx-gen").exists() else None
            if need or ngen or not (rules / "expect.tsv").exists():
                log(f"{sc}: generating {count:,} {kind} rules ({', '.join(need) or 'sample'}) in {rules}")
                gen(kind, count, rules, need or ["yaml"], ngen)
            res: dict[str, Any] = {"scenario": sc, "kind": kind, "rules": count, "validate": {}, "apply": {}}
            results.append(res)
            main_fmt = "yaml" if "yaml" in formats else formats[0]
            db = a.database or f"sqlite:///{work / 'rules.db'}"
            if "validate" in steps:
                for f in formats:
                    res["validate"][f] = step_validate(r, rules, work, f, a.timeout)
            if "apply" in steps:
                for f in formats:
                    fdb = db if f == main_fmt else f"sqlite:///{work / f'rules-{f}.db'}"
                    if fdb.startswith("sqlite:///"):
                        for p in Path(fdb[len("sqlite:///"):]).parent.glob(Path(fdb).name + "*"):
                            p.unlink()
                    res["apply"][f] = step_apply(r, rules, work, f, fdb, a.timeout)
                    if fdb != db and fdb.startswith("sqlite:///"):  # only the main one is served
                        for p in (work / f"rules-{f}.db").parent.glob(f"rules-{f}.db*"):
                            p.unlink()
            if ("serve" in steps or ("nginx" in steps and a.nginx_source == "export")) \
                    and db.startswith("sqlite:///") and not Path(db[len("sqlite:///"):]).exists():
                log(f"{sc}: applying {main_fmt} first (serve and export read the database)")
                res["apply"].setdefault(main_fmt, step_apply(r, rules, work, main_fmt, db, a.timeout))
            if "serve" in steps:
                res["serve"] = step_serve(r, db, rules, work, a.timeout, count, a.serve_args.split())
            if "nginx" in steps:
                res["nginx"] = step_nginx(r, db, rules, work, a.timeout, a.nginx_source)
    finally:
        stop_all()
        meta = {"timestamp": ts, "git_commit": git("rev-parse", "HEAD"),
                "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
                "cpus": os.cpu_count(), "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
                "steps": steps, "formats": formats, "redirectory": r}
        out = a.json or BENCH / "results" / f"{ts}-scale-{'-'.join(a.scenarios)}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
        print(table(results))
        print(f"\nresults written to {out}")
        if a.keep or a.work:
            log(f"kept work directory {work_root}")
        else:
            shutil.rmtree(work_root, ignore_errors=True)
    ok = all(v.get("rc") == 0 for res in results for k in ("validate", "apply") for v in res[k].values()) \
        and all(res.get(k, {}).get("sample", "ok") == "ok" and "error" not in res.get(k, {})
                for res in results for k in ("serve", "nginx"))
    return 0 if ok else 3


def git(*args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


if __name__ == "__main__":
    sys.exit(main())
