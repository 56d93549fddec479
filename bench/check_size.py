"""`redirectory check` on big and hostile OpenAPI documents (issue 19): wall time and peak memory
(`/usr/bin/time -v`) of the installed command, one run each. Not a test: numbers for the report.

    .venv/bin/python bench/check_size.py [DESCRIPTION.json ...]

With no argument it reads GitHub's REST API description from the npm package `@octokit/openapi`
(`npm pack @octokit/openapi` into a temporary directory; `generated/api.github.com.json`, 13 MB),
also writes it as YAML, and times both, plus a 466-byte YAML alias bomb (billion laughs), which
must be refused in under a second. Targets: the 13 MB JSON in <= 5 s and <= 300 MB.
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


def measure(label: str, *args: str) -> None:
    run = subprocess.run(["/usr/bin/time", "-v", str(BIN), "check", *args, "--format", "json", "-o", "/dev/null"],
                         capture_output=True, text=True)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+(?:\.\d+)?)", run.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    seconds = (int(wall.group(1) or 0) * 60 + float(wall.group(2))) if wall else float("nan")
    mb = int(rss.group(1)) / 1024 if rss else float("nan")
    first = next((line for line in run.stderr.splitlines() if line.startswith("error:")), "")
    print(f"{label:<44} exit {run.returncode}  {seconds:6.2f} s  {mb:6.0f} MB  {first[:90]}")


def github(tmp: Path) -> Path:
    subprocess.run(["npm", "pack", "@octokit/openapi", "--silent"], cwd=tmp, check=True, capture_output=True)
    with tarfile.open(next(tmp.glob("octokit-openapi-*.tgz"))) as tar:
        tar.extract("package/generated/api.github.com.json", tmp, filter="data")
    return tmp / "package" / "generated" / "api.github.com.json"


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        docs = [Path(a) for a in sys.argv[1:]] or [github(tmp)]
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
