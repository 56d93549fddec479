#!/usr/bin/env python3
"""How long nginx imports take: a 12,500-entry `map` and a 900-line site file.

Writes both into a temporary directory, then times (wall clock, one run each, after one warm-up
of the interpreter) `redirectory rules convert FILE --from nginx --to yaml` and `redirectory rules
import FILE --format nginx` into a fresh SQLite file, and prints one line per step with its
budget (issue #15: the map in <= 5 s, the site file in <= 2 s). Exit 1 when a step is over it.

    .venv/bin/python bench/import_speed.py [--entries 12500] [--site-lines 900] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent / "redirectory"


def big_map(entries: int) -> str:
    """`map $uri $new` with `entries` keys (one in ten a regex) and the `return` that uses it."""
    lines = ["map $uri $new {", "    default \"\";"]
    for i in range(entries):
        if i % 10 == 9:
            lines.append(f"    ~^/old/r{i}/(.*)$ /new/r{i}/$1;")
        else:
            lines.append(f"    /old/page-{i}.html /new/page-{i};")
    lines += ["}", "server {", "    server_name www.example.org;", "    if ($new) {", "        return 301 $new;",
              "    }", "}"]
    return "\n".join(lines) + "\n"


def site(lines_wanted: int) -> str:
    """A site file of about `lines_wanted` lines: locations, rewrites and returns, as real sites mix them."""
    out = ["server {", "    listen 80;", "    server_name www.example.org;", "    root /srv/www;"]
    i = 0
    while len(out) < lines_wanted - 1:
        kind = i % 5
        if kind == 0:
            out += [f"    location = /exact/{i} {{", f"        return 301 https://www.example.org/e/{i};", "    }"]
        elif kind == 1:
            out.append(f"    rewrite ^/blog/{i}/(.*)$ https://blog.example.org/{i}/$1 permanent;")
        elif kind == 2:
            out += [f"    location ~ ^/docs/v{i}/(.*)$ {{", "        return 301 /docs/latest/$1;", "    }"]
        elif kind == 3:
            out += [f"    location /prefix-{i}/ {{", "        return 302 https://other.example.org$request_uri;", "    }"]
        else:
            out += [f"    # section {i}", f"    location /static-{i}/ {{", "        expires 1d;", "    }"]
        i += 1
    out.append("}")
    return "\n".join(out) + "\n"


def timed(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run([str(BIN), *args], capture_output=True, text=True, check=False)
    return time.perf_counter() - started, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=12_500)
    parser.add_argument("--site-lines", type=int, default=900)
    parser.add_argument("--keep", type=Path, help="write the inputs here and keep them")
    options = parser.parse_args()
    work = options.keep or Path(tempfile.mkdtemp(prefix="redirectory-import-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        files = {"map": (work / "big-map.conf", big_map(options.entries), 5.0),
                 "site": (work / "site.conf", site(options.site_lines), 2.0)}
        timed("--version")  # warm the file cache for the interpreter and packages
        over = False
        for what, (path, text, budget) in files.items():
            path.write_text(text)
            lines = text.count("\n")
            for step, args in (("convert", ("rules", "convert", str(path), "--from", "nginx", "--to", "yaml",
                                            "-o", str(work / f"{what}.yaml"))),
                               ("import", ("rules", "import", str(path), "--format", "nginx", "--database",
                                           f"sqlite:///{work / (what + '.db')}"))):
                (work / f"{what}.db").unlink(missing_ok=True)
                seconds, done = timed(*args)
                ok = done.returncode == 0
                over |= seconds > budget or not ok
                print(f"{what:4} ({lines:,} lines) {step:7} {seconds:6.2f} s  budget {budget:.0f} s  "
                      f"{'ok' if ok and seconds <= budget else 'OVER' if ok else 'FAILED: ' + done.stderr[-300:]}")
        return 1 if over else 0
    finally:
        if options.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
