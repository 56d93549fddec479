"""The benchmark's own tools (bench/gen_rules.py, bench/report.py, bench/scale.py) stay in step with
the product: every generated table is valid in every format, its sample requests get the
redirects `expect.tsv` promises, and the report's CPU-per-request figures are what they claim."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway_process import cli

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=120, check=False)


def gen(tmp: Path, kind: str, count: int, formats: str = "yaml", nginx: bool = False) -> Path:
    out = tmp / kind
    args = ["--kind", kind, "--count", str(count), "--out", str(out), "--formats", formats, "--sample", str(count)]
    if nginx:
        args += ["--nginx-dir", str(out / "nginx-gen")]
    r = bench("gen_rules.py", *args)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("kind", ["exact", "placeholder", "regex"])
def test_each_kind_is_a_valid_table(tmp_path: Path, kind: str) -> None:
    out = gen(tmp_path, kind, 30)
    r = cli("rules", "validate", str(out / "rules.yaml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "30 rule(s) valid" in r.stdout


def test_mixed3_in_every_format_is_the_same_valid_table(tmp_path: Path) -> None:
    out = gen(tmp_path, "mixed3", 36, "yaml,json,csv")
    for fmt in ("yaml", "json", "csv"):
        r = cli("rules", "validate", "--strict", str(out / f"rules.{fmt}"))
        assert r.returncode == 0, (fmt, r.stdout + r.stderr)
        assert "36 rule(s) valid" in r.stdout
    # 10 : 1 : 1 exact, placeholder, regex
    rules = [json.loads(line.rstrip(",\n")) for line in (out / "rules.json").read_text().splitlines()[1:-1]]
    assert sum("from_regex" in r for r in rules) == 3
    assert sum("{id}" in str(r.get("from", "")) for r in rules) == 3


def test_sample_requests_get_the_promised_redirects(tmp_path: Path) -> None:
    out = gen(tmp_path, "mixed3", 36, "csv")
    expect = [line.split("\t") for line in (out / "expect.tsv").read_text().splitlines()]
    by_status: dict[str, list[str]] = {}
    for path, status, loc in expect:
        by_status.setdefault(status, [path, status, loc])
    assert set(by_status) == {"301", "307", "308"}  # exact, regex and placeholder requests
    for path, status, loc in by_status.values():
        r = cli("rules", "test", "--rules", str(out / "rules.csv"), "--json", path)
        assert r.returncode == 0, r.stdout + r.stderr
        resp = json.loads(r.stdout)["response"]
        assert str(resp["status"]) == status
        assert dict(resp["headers"])["location"] == loc


@pytest.mark.skipif(not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()), reason="no nginx")
def test_hand_made_nginx_files_pass_nginx_t(tmp_path: Path) -> None:
    out = gen(tmp_path, "mixed3", 36, nginx=True)
    run = tmp_path / "run"
    run.mkdir()
    conf = (BENCH / "nginx.conf.template").read_text()
    for k, v in {"@RUNDIR@": str(run), "@PORT@": "1", "@MAP_CONF@": str(out / "nginx-gen/redirectory-map.conf"),
                 "@RETURN_CONF@": str(out / "nginx-gen/redirectory-return.conf")}.items():
        conf = conf.replace(k, v)
    (run / "nginx.conf").write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    r = subprocess.run([nginx, "-t", "-q", "-e", str(run / "error.log"), "-p", str(run), "-c", str(run / "nginx.conf")],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr


def test_scale_measure_and_describe(tmp_path: Path) -> None:
    r = bench("scale.py", "describe", "exact-1m")
    assert r.stdout.split() == ["exact", "1000000"]
    assert bench("scale.py", "describe", "nope").returncode == 2
    res = tmp_path / "m.json"
    r = bench("scale.py", "measure", "--json", str(res), "--", sys.executable, "-c",
              "b = bytearray(64 * 2**20); print('x'); print('y'); raise SystemExit(3)")
    assert r.returncode == 3
    m = json.loads(res.read_text())
    assert m["rc"] == 3 and m["output_lines"] == 2
    assert m["peak_rss_kib"] >= 64 * 1024
    assert m["wall_s"] > 0 and m["cpu_s"] is not None


def test_report_cpu_per_request_and_the_million_targets(tmp_path: Path) -> None:
    results = tmp_path / "r.jsonl"
    measured = {"requests": 100_000, "rps": 10_000.0, "p50_ms": 1.0, "p99_ms": 2.0,
                "errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status_ge_400": 0},
                "statuses": {"301": 100_000}}
    (tmp_path / "m.json").write_text(json.dumps(measured))
    (tmp_path / "w.json").write_text(json.dumps({"statuses": {"301": 10}}))
    for target, cpu, pss in (("nginx", 1.0, 300 * 1024), ("redirectory-httptools", 1.2, 500 * 1024)):
        r = bench("report.py", "add", "--results", str(results), "--scenario", "exact-1m", "--rules", "1000000",
                  "--target", target, "--warmup", str(tmp_path / "w.json"), "--measured", str(tmp_path / "m.json"),
                  "--rss-kib", "1000", "--extra", f"server_cpu_s={cpu}", "--extra", f"pss_kib={pss}",
                  "--extra", "startup_s=4.5")
        assert r.returncode == 0, r.stderr
    (tmp_path / "v.json").write_text(json.dumps({"wall_s": 9.0, "cpu_s": 9.0, "peak_rss_kib": 2 * 2**20, "rc": 0}))
    r = bench("report.py", "add-table", "--results", str(results), "--scenario", "exact-1m", "--rules", "1000000",
              "--kind", "exact", "--step", f"validate_yaml={tmp_path / 'v.json'}")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "summary.json"
    r = bench("report.py", "summary", "--results", str(results), "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "table: validate yaml 9.0 s 2,048 MiB" in r.stdout
    summary = json.loads(out.read_text())
    red = next(x for x in summary["runs"] if x["target"] != "nginx")
    assert red["cpu_us_per_req"] == pytest.approx(12.0)
    assert red["ratio_cpu_per_req"] == pytest.approx(1.2)
    verdicts = {c["check"]: c["verdict"] for c in summary["targets"]}
    assert verdicts["exact-1m CPU us/req <= 1.3x nginx"] == "PASS"
    assert verdicts["exact-1m PSS <= 2x nginx"] == "PASS"
    assert verdicts["exact-1m start -> ready <= 5 s"] == "PASS"
    assert verdicts["exact-1m req/s >= 0.8x nginx"] == "PASS"
    assert verdicts["exact-1m validate yaml <= 10 s"] == "PASS"
    assert verdicts["exact-1m validate yaml peak RSS <= 1024 MiB"] == "FAIL"


def test_features_cost_quick_runs_both_parts() -> None:
    # the same code on both sides (the real comparison needs a worktree of the commit before)
    r = bench("features_cost.py", "--quick", "--no-json", "--before-src", str(ROOT / "src"))
    assert r.returncode == 0, r.stderr
    assert "1. rules that do not use them" in r.stdout
    for feature in ("query_match", "query policy", "lifecycle headers", "phases", "status 404 vs no rule"):
        assert f"{feature}" in r.stdout and r.stdout.count(feature) == 2  # engine and server
