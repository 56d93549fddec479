"""`redirectory check` on big and hostile OpenAPI documents (issue 19): wall time and peak memory
(`/usr/bin/time -v`) of the installed command. Not a test: numbers for the report.

    .venv/bin/python bench/check_size.py [--runs N] [DESCRIPTION.json ...]

With no argument it reads GitHub's REST API description from the npm package `@octokit/openapi`
(`npm pack @octokit/openapi` into a temporary directory; `generated/api.github.com.json`, 13 MB;
the package has no YAML form), also writes it as YAML (PyYAML's C dumper, 9.8 MB), and times both,
plus a 596-byte YAML alias bomb (billion laughs), which must be refused in under a second.
Targets: the JSON and the YAML in <= 5 s and <= 300 MB each. With `--runs N` (default 1) each
command runs N times; the line shows the fastest run and the largest peak.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent / "redirectory"
BOMB = "\n".join(["openapi: 3.0.0", "info: {title: bomb, version: '1'}",
                  "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
                  *[f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)],
                  "paths: {/x: {get: {responses: {'200': {description: *a8}}}}}"]) + "\n"


RUNS = 1


def measure(label: str, *args: str) -> None:
    times, peaks = [], []
    for _ in range(RUNS):
        run = subprocess.run(["/usr/bin/time", "-v", str(BIN), "check", *args, "--format", "json", "-o", "/dev/null"],
                             capture_output=True, text=True)
        wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+(?:\.\d+)?)", run.stderr)
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
        times.append((int(wall.group(1) or 0) * 60 + float(wall.group(2))) if wall else float("nan"))
        peaks.append(int(rss.group(1)) / 1024 if rss else float("nan"))
    first = next((line for line in run.stderr.splitlines() if line.startswith("error:")), "")
    print(f"{label:<44} exit {run.returncode}  {min(times):6.2f} s  {max(peaks):6.0f} MB  {first[:90]}")


def github(tmp: Path) -> Path:
    subprocess.run(["npm", "pack", "@octokit/openapi", "--silent"], cwd=tmp, check=True, capture_output=True)
    with tarfile.open(next(tmp.glob("octokit-openapi-*.tgz"))) as tar:
        tar.extract("package/generated/api.github.com.json", tmp, filter="data")
    return tmp / "package" / "generated" / "api.github.com.json"


def main() -> None:
    global RUNS
    args = sys.argv[1:]
    if args[:1] == ["--runs"] and len(args) > 1:
        RUNS, args = max(1, int(args[1])), args[2:]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        docs = [Path(a) for a in args] or [github(tmp)]
        for doc in docs:
            measure(f"{doc.name} ({doc.stat().st_size / 1e6:.1f} MB)", "--openapi", str(doc))
            as_yaml = tmp / (doc.stem + ".yaml")
            as_yaml.write_text(yaml.dump(json.loads(doc.read_text()), Dumper=yaml.CSafeDumper, sort_keys=False,
                                         allow_unicode=True, width=120))
            measure(f"{as_yaml.name} ({as_yaml.stat().st_size / 1e6:.1f} MB, as YAML)", "--openapi", str(as_yaml))
        bomb = tmp / "bomb.yaml"
        bomb.write_text(BOMB)
        measure(f"alias bomb ({len(BOMB.encode())} bytes)", "--openapi", str(bomb))


if __name__ == "__main__":
    main()
