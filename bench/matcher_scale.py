#!/usr/bin/env python3
"""The matcher alone at scale: load time, RSS and per-request match time (no HTTP, no store).

    .venv/bin/python bench/matcher_scale.py regex --count 100000            # ^/r{i}/items/([0-9]+)$
    .venv/bin/python bench/matcher_scale.py nginx --count 100000 --corpus DIR   # real nginx regexes, varied
    .venv/bin/python bench/matcher_scale.py exact --count 1000000 [--full]  # compact (the gateway's) or full

Rules are made in batches and dropped after `add` (as the gateway's reader does), so the RSS
reported is the table's. Timings on a shared machine are noisy: compare runs made together.
"""

from __future__ import annotations

import argparse
import glob
import random
import re
import time
import uuid
from collections.abc import Iterator

import re2

from redirectory.rules.matcher import Matcher, compile_regex
from redirectory.rules.model import Rule


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def nginx_regexes(corpus: str) -> list[tuple[str, bool]]:
    """`~^...` / `~*^...` keys of nginx maps and `location ~` / `rewrite` regexes of the corpus."""
    found: list[tuple[str, bool]] = []
    for name in sorted(glob.glob(corpus + "/*")):
        with open(name, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = re.match(r"\s*(~\*?)(\^\S+)\s", line) or re.match(r"\s*(?:location|rewrite)\s+(~\*?)?\s*(\^\S+)", line)
                if m:
                    found.append((m.group(2).strip('"'), (m.group(1) or "") == "~*"))
    return [(r, ci) for r, ci in found if _re2_ok(r)]


def _re2_ok(regex: str) -> bool:
    """What validation would let in (nginx's PCRE has lookarounds and backreferences; RE2 not)."""
    try:
        compile_regex(regex)
    except re2.error:
        return False
    return True


def rules(kind: str, count: int, corpus: str) -> Iterator[tuple[Rule, str]]:
    """(rule, a path it answers)"""
    if kind == "regex":
        for i in range(count):
            yield Rule(source_regex=rf"^/r{i}/items/([0-9]+)$", to=f"/n{i}", status=308, id=str(uuid.uuid4()),
                       position=i), f"/r{i}/items/{i % 997}"
    elif kind == "nginx":
        base = nginx_regexes(corpus)
        for i in range(count):
            regex, ci = base[i % len(base)]
            # each copy under its own first segment, so that all of them are distinct rules
            yield Rule(source_regex="^/v" + str(i) + regex[1:], to=f"/n{i}", status=301, case_insensitive=ci,
                       id=str(uuid.uuid4()), position=i), ""
    else:
        for i in range(count):
            yield Rule(source=f"/svc{i}/items/{i}", to=f"/v2/svc{i}/items/{i}", status=301, id=str(uuid.uuid4()),
                       position=i), f"/svc{i}/items/{i}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["regex", "nginx", "exact"])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--full", action="store_true", help="exact: the full matcher instead of the compact one")
    ap.add_argument("--corpus", default="/work/shared/corpus/nginx")
    args = ap.parse_args()
    base = rss_mb()
    matcher = Matcher(compact=args.kind == "exact" and not args.full)
    adding = 0.0
    sample: list[str] = []
    batch: list[tuple[Rule, str]] = []
    gen = rules(args.kind, args.count, args.corpus)
    while True:
        batch = [x for _, x in zip(range(10_000), gen, strict=False)]
        if not batch:
            break
        started = time.perf_counter()
        for rule, _ in batch:
            matcher.add(rule)
        adding += time.perf_counter() - started
        sample += [path for _, path in random.sample(batch, min(100, len(batch))) if path]
    del batch
    loaded = rss_mb()
    started = time.perf_counter()
    for _ in matcher.prepare():
        pass
    prepared = time.perf_counter() - started
    print(f"{args.kind} x {args.count}: add {adding:.2f} s ({adding / args.count * 1e6:.2f} us/rule), "
          f"prepare (regex set compile) {prepared:.2f} s, table RSS {loaded - base:.0f} MB "
          f"({rss_mb() - base:.0f} MB compiled); regex shards {matcher._regex.shards}")
    misses = [f"/nothing/{i}" for i in range(1000)]
    for label, paths in (("hit", sample), ("miss", misses)):
        if not paths:
            continue
        started = time.perf_counter()
        for path in paths:
            found = matcher.match(path)
            assert (found is not None) == (label == "hit"), path
        first = (time.perf_counter() - started) / len(paths)
        started = time.perf_counter()
        for path in paths:
            matcher.match(path)
        again = (time.perf_counter() - started) / len(paths)
        print(f"  match {label}: {first * 1e6:.1f} us first time, {again * 1e6:.1f} us again ({len(paths)} paths)")
    print(f"  RSS after matching {rss_mb() - base:.0f} MB")


if __name__ == "__main__":
    main()
