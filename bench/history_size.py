#!/usr/bin/env python3
"""How big a SQLite database grows over repeated applies of a large table, with and without pruning.

    .venv/bin/python bench/history_size.py [--rules 100000] [--applies 9] [--no-prune] DB_FILE

Applies `--applies` tables of `--rules` exact rules to a new database, each one changing the
target of every rule (the change log records each rule before and after), and after each apply
prunes the history to the retention of the environment (REDIRECTORY_HISTORY_* variables, see
docs/deploy.md), as a running gateway does within a second. Prints the file sizes (database and
WAL) after each apply and after each prune. With --no-prune nothing is pruned (what every version
before the retention did). Numbers: bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from redirectory.rules.model import Rule, RuleSet
from redirectory.store import Retention, Store


def sizes(path: Path) -> str:
    main = path.stat().st_size
    wal = Path(f"{path}-wal")
    wal_size = wal.stat().st_size if wal.exists() else 0
    return f"file {main / 1e6:7.1f} MB + WAL {wal_size / 1e6:6.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--applies", type=int, default=9)
    parser.add_argument("--no-prune", action="store_true")
    args = parser.parse_args()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    retention = Retention.from_env()
    print(f"{args.applies} applies of {args.rules} rules; retention: "
          f"{'none (--no-prune)' if args.no_prune else retention}")
    store = Store.open(f"sqlite:///{args.db}")
    store.upgrade()
    try:
        for i in range(args.applies):
            table = RuleSet(rules=tuple(Rule(to=f"/v{i}/svc{j}/items/{j}", source=f"/svc{j}/items/{j}")
                                        for j in range(args.rules)))
            started = time.monotonic()
            plan, revision = store.apply(table, actor="bench")
            line = f"apply {i + 1}: revision {revision} ({plan.summary()}, {time.monotonic() - started:4.1f} s): {sizes(args.db)}"
            if not args.no_prune:
                started = time.monotonic()
                pruned = store.prune_history(retention, seconds=float("inf"))
                line += (f"; pruned to revision {pruned.oldest} ({pruned.changes} changes, "
                         f"{time.monotonic() - started:4.1f} s): {sizes(args.db)}")
            print(line, flush=True)
    finally:
        store.close()
    print(f"closed: {sizes(args.db)}  ({os.path.getsize(args.db) / 1e6:.1f} MB without the WAL)")


if __name__ == "__main__":
    main()
