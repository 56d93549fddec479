#!/usr/bin/env python3
"""Bookkeeping for bench/run.sh: record one measured run, then print and save the summary.

Standard library only.

    report.py add --results R.jsonl --scenario S --rules N --target T --warmup W.json \
        --measured M.json --rss-kib K [--precheck ok|"reason"] [--extra key=value ...]
    report.py add-table --results R.jsonl --scenario S --rules N --kind K \
        [--step validate_yaml=V.json --step apply_yaml=A.json ...]   (bench/scale.py measure files)
    report.py summary --results R.jsonl --meta META.json --out bench/results/TS.json \
        [--min-3xx 0.99]

A run is valid when the pre-run curl check passed and at least --min-3xx of the responses
were redirects: the warm-up counts every status (paths.lua `count`), the measured run at least
counts statuses >= 400 (all of them, too, when run with COUNT_STATUSES=1). Socket errors
(connect/read/write/timeout) above 1% of the requests also invalidate a run.

Server CPU per request (`cpu_us_per_req`) = the server process tree's utime + stime over the
measured run (`server_cpu_s`, from /proc/PID/stat) / the requests wrk completed in it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: The targets from bench/README.md, checked per redirectory server.
EXACT_MIN_RATIO = 0.5
PLACEHOLDER_MIN_RATIO = 10.0
SCALING_MIN = 0.9  # req/s with 100k exact rules vs 1k: within 10%
#: issue 14 ("A million rules"): CPU per request on exact rules, and the table-size targets at 1M.
EXACT_MAX_CPU_RATIO = 1.3
MILLION = {
    "validate_s": 10.0, "validate_mib": 1024.0,
    "apply_yaml_s": 20.0, "apply_other_s": 10.0, "apply_mib": 1024.0,
    "startup_s": 5.0, "rss_vs_nginx": 2.0, "rps_vs_nginx": 0.8,
}


def load_json(path: str | None) -> dict[str, Any] | None:
    if not path:
        return None
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return None
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def share_3xx(statuses: dict[str, int]) -> float | None:
    total = sum(statuses.values())
    if not total:
        return None
    return sum(n for code, n in statuses.items() if code.startswith("3")) / total


def judge(run: dict[str, Any], min_3xx: float) -> list[str]:
    """Reasons why a run is invalid (empty list = valid)."""
    why: list[str] = []
    if run.get("precheck", "ok") != "ok":
        return [f"pre-check: {run['precheck']}"]
    warm, meas = run.get("warmup"), run.get("measured")
    if warm is None:
        why.append("no warm-up result")
    else:
        s = share_3xx(warm.get("statuses", {}))
        if s is None:
            why.append("warm-up got no responses")
        elif s < min_3xx:
            why.append(f"warm-up: only {s:.1%} 3xx {warm.get('statuses')}")
    if meas is None:
        why.append("no measured result")
        return why
    req = meas.get("requests", 0)
    if not req:
        why.append("measured run got no responses")
        return why
    errs = meas.get("errors", {})
    if errs.get("status_ge_400", 0) / req > 1 - min_3xx:
        why.append(f"measured: {errs['status_ge_400']} of {req} answers >= 400")
    s = share_3xx(meas.get("statuses", {}))
    if s is not None and s < min_3xx:
        why.append(f"measured: only {s:.1%} 3xx {meas.get('statuses')}")
    sock = sum(errs.get(k, 0) for k in ("connect", "read", "write", "timeout"))
    if sock > 0.01 * req:
        why.append(f"measured: {sock} socket errors {errs}")
    return why


def cmd_add(a: argparse.Namespace) -> int:
    run: dict[str, Any] = {
        "scenario": a.scenario,
        "rules": a.rules,
        "target": a.target,
        "precheck": a.precheck,
        "warmup": load_json(a.warmup),
        "measured": load_json(a.measured),
        "rss_kib": a.rss_kib,
    }
    for kv in a.extra or []:
        k, _, v = kv.partition("=")
        try:
            run[k] = json.loads(v)
        except json.JSONDecodeError:
            run[k] = v
    with open(a.results, "a") as f:
        f.write(json.dumps(run) + "\n")
    return 0


def cmd_add_table(a: argparse.Namespace) -> int:
    """One scenario's table-size figures: {step: scale.py measure result}."""
    steps: dict[str, Any] = {}
    for kv in a.step or []:
        name, _, path = kv.partition("=")
        steps[name] = load_json(path)
    rec = {"record": "table", "scenario": a.scenario, "rules": a.rules, "kind": a.kind, "steps": steps}
    with open(a.results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    return 0


def mib(kib: float | None) -> float | None:
    return None if kib is None else kib / 1024


def table_lines(t: dict[str, Any]) -> list[str]:
    """`validate yaml 51.4 s 3,650 MiB | ...` for one scenario's table record."""
    cells = []
    for name, v in t.get("steps", {}).items():
        if not v:
            cells.append(f"{name.replace('_', ' ')}: -")
            continue
        rc = "" if v.get("rc") == 0 else f" rc={v.get('rc')}"
        cells.append(f"{name.replace('_', ' ')} {v['wall_s']:.1f} s {fmt(mib(v.get('peak_rss_kib')), ',.0f')} MiB{rc}")
    lines = []
    for i in range(0, len(cells), 4):
        lines.append(("table: " if i == 0 else "       ") + " | ".join(cells[i:i + 4]))
    return lines


def fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def cpu_cell(r: dict[str, Any]) -> str:
    keys = ("cpu_server_cores", "cpu_wrk_cores", "cpu_other_cores")
    if not all(k in r for k in keys):
        return "-"
    cell = "/".join(f"{float(r[k]):.2f}" for k in keys)
    return cell + (" busy!" if float(r["cpu_other_cores"]) > 0.15 else "")


def cmd_summary(a: argparse.Namespace) -> int:
    records = []
    if Path(a.results).exists():
        records = [json.loads(line) for line in Path(a.results).read_text().splitlines() if line]
    runs = [r for r in records if r.get("record", "run") == "run"]
    tables = {r["scenario"]: r for r in records if r.get("record") == "table"}
    meta = load_json(a.meta) or {}
    scenarios: list[str] = []
    for r in runs:
        r["invalid"] = judge(r, a.min_3xx)
        r["valid"] = not r["invalid"]
        m = r.get("measured") or {}
        r["rps"] = m.get("rps") if r["valid"] else None
        r["p50_ms"] = m.get("p50_ms")
        r["p99_ms"] = m.get("p99_ms")
        req = m.get("requests")
        cpu = r.get("server_cpu_s")
        r["cpu_us_per_req"] = cpu / req * 1e6 if r["valid"] and req and isinstance(cpu, (int, float)) else None
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])

    for sc in scenarios:
        group = [r for r in runs if r["scenario"] == sc]
        base = next((r for r in group if r["target"] == "nginx"), None)
        for r in group:
            r["ratio_rps"] = None
            r["ratio_p99"] = None
            r["ratio_rss"] = None
            r["ratio_cpu_per_req"] = None
            r["ratio_pss"] = None
            if base is None or r is base or not (r["valid"] and base["valid"]):
                continue
            r["ratio_rps"] = r["rps"] / base["rps"] if base["rps"] else None
            if base["p99_ms"]:
                r["ratio_p99"] = r["p99_ms"] / base["p99_ms"]
            if base.get("rss_kib") and r.get("rss_kib"):
                r["ratio_rss"] = r["rss_kib"] / base["rss_kib"]
            if base.get("pss_kib") and r.get("pss_kib"):
                r["ratio_pss"] = r["pss_kib"] / base["pss_kib"]
            if base.get("cpu_us_per_req") and r.get("cpu_us_per_req"):
                r["ratio_cpu_per_req"] = r["cpu_us_per_req"] / base["cpu_us_per_req"]

    lines: list[str] = []
    for sc in scenarios:
        group = [r for r in runs if r["scenario"] == sc]
        lines.append("")
        lines.append(f"## {sc} ({group[0]['rules']} rules)")
        if sc in tables:
            lines.extend(table_lines(tables[sc]))
        head = (
            f"{'target':<22} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'RSS MiB':>8} {'PSS MiB':>8}"
            f" {'3xx':>7} {'vs nginx':>9} {'us/req':>7} {'us ratio':>9} {'start s':>8} {'ready MiB':>9}"
            f"  {'CPU srv/wrk/other':<17}"
        )
        lines.append(head)
        lines.append("-" * len(head))
        for r in group:
            m = r.get("measured") or {}
            st = (r.get("warmup") or {}).get("statuses", {})
            s3 = share_3xx(m.get("statuses") or st)
            rss = r.get("rss_kib")
            ratio = "(base)" if r["target"] == "nginx" else fmt(r["ratio_rps"], ".2f")
            if ratio[0].isdigit():
                ratio += "x"
            cratio = "(base)" if r["target"] == "nginx" else fmt(r.get("ratio_cpu_per_req"), ".2f")
            if cratio[0].isdigit():
                cratio += "x"
            ready = r.get("rss_ready_kib")
            start = r.get("startup_s")
            lines.append(
                f"{r['target']:<22} {fmt(m.get('rps'), ',.0f'):>10}"
                f" {fmt(m.get('p50_ms'), '.2f'):>8} {fmt(m.get('p99_ms'), '.2f'):>8}"
                f" {fmt(rss / 1024 if rss else None, '.1f'):>8}"
                f" {fmt(mib(r.get('pss_kib')) or None, '.1f'):>8}"
                f" {'-' if s3 is None else format(s3, '.1%'):>7} {ratio:>9}"
                f" {fmt(r.get('cpu_us_per_req'), '.1f'):>7} {cratio:>9}"
                f" {fmt(start if isinstance(start, (int, float)) else None, '.2f'):>8}"
                f" {fmt(ready / 1024 if isinstance(ready, (int, float)) and ready else None, '.1f'):>9}"
                f"  {cpu_cell(r):<17}"
            )
            for why in r["invalid"]:
                lines.append(f"    INVALID: {why}")

    checks = targets(runs, tables)
    if checks:
        lines.append("")
        lines.append("## targets (bench/README.md)")
        for c in checks:
            lines.append(f"  {c['verdict']:<4} {c['target']}: {c['check']} -> {c['value']}")
    text = "\n".join(lines)
    print(text)

    out = {"meta": meta, "tables": list(tables.values()), "runs": runs, "targets": checks}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nresults written to {a.out}")
    return 0 if all(r["valid"] for r in runs) else 3


def targets(runs: list[dict[str, Any]], tables: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    by = {(r["scenario"], r["target"]): r for r in runs}
    names = sorted({r["target"] for r in runs if r["target"] != "nginx"})
    checks = []

    def add(target: str, check: str, value: float | None, ok: bool | None) -> None:
        verdict = "n/a" if ok is None else ("PASS" if ok else "FAIL")
        val = "-" if value is None else f"{value:.2f}"
        checks.append({"target": target, "check": check, "value": val, "verdict": verdict})

    for t in names:
        for sc in ("exact-1k", "exact-100k"):
            r = by.get((sc, t))
            if r is not None:
                v = r.get("ratio_rps")
                add(t, f"{sc} req/s >= {EXACT_MIN_RATIO}x nginx", v,
                    None if v is None else v >= EXACT_MIN_RATIO)
        r = by.get(("placeholder-10k", t))
        if r is not None:
            v = r.get("ratio_rps")
            add(t, f"placeholder-10k req/s >= {PLACEHOLDER_MIN_RATIO:g}x nginx", v,
                None if v is None else v >= PLACEHOLDER_MIN_RATIO)
        for sc in sorted({r["scenario"] for r in runs if r["scenario"].startswith("exact-")}):
            r = by.get((sc, t))
            if r is not None:
                v = r.get("ratio_cpu_per_req")
                add(t, f"{sc} CPU us/req <= {EXACT_MAX_CPU_RATIO}x nginx", v,
                    None if v is None else v <= EXACT_MAX_CPU_RATIO)
        r, base = by.get(("exact-1m", t)), by.get(("exact-1m", "nginx"))
        if r is not None:
            v = r.get("startup_s") if isinstance(r.get("startup_s"), (int, float)) else None
            add(t, f"exact-1m start -> ready <= {MILLION['startup_s']:g} s", v,
                None if v is None else v <= MILLION["startup_s"])
            v = None
            key = "pss_kib" if r.get("pss_kib") and base and base.get("pss_kib") else "rss_kib"
            if base and isinstance(r.get(key), (int, float)) and base.get(key):
                v = r[key] / base[key]
            add(t, f"exact-1m {key[:3].upper()} <= {MILLION['rss_vs_nginx']:g}x nginx", v,
                None if v is None else v <= MILLION["rss_vs_nginx"])
            v = r.get("ratio_rps")
            add(t, f"exact-1m req/s >= {MILLION['rps_vs_nginx']:g}x nginx", v,
                None if v is None else v >= MILLION["rps_vs_nginx"])
        small, big = by.get(("exact-1k", t)), by.get(("exact-100k", t))
        if small is not None and big is not None:
            v = big["rps"] / small["rps"] if big.get("rps") and small.get("rps") else None
            add(t, f"exact-100k req/s / exact-1k req/s >= {SCALING_MIN}", v,
                None if v is None else v >= SCALING_MIN)
    checks.extend(million_checks((tables or {}).get("exact-1m")))
    return checks


def million_checks(table: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Issue 14's table-size targets at 1M exact rules (a run.sh table record)."""
    checks: list[dict[str, Any]] = []
    if not table:
        return checks
    for name, v in table.get("steps", {}).items():
        op, _, fmt_ = name.partition("_")
        if not v or op not in ("validate", "apply"):
            continue
        if op == "validate":
            limit = MILLION["validate_s"]
        else:
            limit = MILLION["apply_yaml_s"] if fmt_ == "yaml" else MILLION["apply_other_s"]
        wall = v.get("wall_s")
        checks.append({"target": "redirectory", "check": f"exact-1m {op} {fmt_} <= {limit:g} s",
                       "value": "-" if wall is None else f"{wall:.2f}",
                       "verdict": "n/a" if wall is None else ("PASS" if v.get("rc") == 0 and wall <= limit else "FAIL")})
        peak = mib(v.get("peak_rss_kib"))
        mlimit = MILLION["validate_mib"] if op == "validate" else MILLION["apply_mib"]
        checks.append({"target": "redirectory", "check": f"exact-1m {op} {fmt_} peak RSS <= {mlimit:g} MiB",
                       "value": "-" if peak is None else f"{peak:.0f}",
                       "verdict": "n/a" if peak is None else ("PASS" if peak <= mlimit else "FAIL")})
    return checks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("add")
    p.add_argument("--results", required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--rules", type=int, required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--warmup")
    p.add_argument("--measured")
    p.add_argument("--rss-kib", type=int)
    p.add_argument("--precheck", default="ok")
    p.add_argument("--extra", action="append", help="key=value (value parsed as JSON if it can)")
    p.set_defaults(func=cmd_add)
    p = sub.add_parser("add-table")
    p.add_argument("--results", required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--rules", type=int, required=True)
    p.add_argument("--kind", required=True)
    p.add_argument("--step", action="append", help="NAME=FILE.json (a bench/scale.py measure result)")
    p.set_defaults(func=cmd_add_table)
    p = sub.add_parser("summary")
    p.add_argument("--results", required=True)
    p.add_argument("--meta")
    p.add_argument("--out", required=True)
    p.add_argument("--min-3xx", type=float, default=0.99)
    p.set_defaults(func=cmd_summary)
    a = ap.parse_args(argv)
    return int(a.func(a))


if __name__ == "__main__":
    sys.exit(main())
