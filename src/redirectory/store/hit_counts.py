"""The all-time hit counters: one row per rule (`rule_hits`) and per unmatched path
(`unmatched_paths`). The SQL behind `Store.record_hits` (one flush: these counters and the time
buckets of `hits.py`, in one transaction) and `Store.stats` (every rule with its hits).

Only the `UNMATCHED_KEEP` most hit unmatched paths are kept; paths are stored truncated to
`MAX_PATH_LENGTH` (`truncate_path`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, text
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from redirectory.store import hits as hits_sql
from redirectory.store.bulk import batches
from redirectory.store.schema import MAX_PATH_LENGTH, as_utc, unmatched_paths
from redirectory.store.schema import rule_hits as rule_hits_t
from redirectory.store.schema import rules as rules_t

#: How many unmatched paths `record_hits` keeps (the most hit ones).
UNMATCHED_KEEP = 1000


@dataclass(frozen=True, slots=True)
class RuleStats:
    """Hit counter of one current rule (`hits` is 0 and `last_hit` None if never hit)."""

    rule_id: str
    from_text: str
    to: str
    status: int
    hits: int
    last_hit: datetime | None


@dataclass(frozen=True, slots=True)
class PathStats:
    """Hit counter of one path no rule matched."""

    path: str
    hits: int
    last_hit: datetime


@dataclass(frozen=True, slots=True)
class Stats:
    """Every current rule with its hits (most hit first) and the top unmatched paths."""

    rules: list[RuleStats]
    unmatched: list[PathStats]


# --------------------------------------------------------------------------- writing


def truncate_path(path: str) -> str:
    """At most MAX_PATH_LENGTH characters and UTF-8 bytes (PostgreSQL index limits)."""
    if len(path) > MAX_PATH_LENGTH:
        path = path[:MAX_PATH_LENGTH]
    encoded = path.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_PATH_LENGTH:
        path = encoded[:MAX_PATH_LENGTH].decode("utf-8", "ignore")
    return path


def counter_rows(
    rule_hits: Mapping[str, tuple[int, datetime]],
    unmatched: Mapping[str, tuple[int, datetime]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(`rule_hits` rows, `unmatched_paths` rows) of one batch, sorted by key: times aware UTC,
    paths truncated (`truncate_path`) and the ones that become equal merged."""
    rule_rows = [
        {"rule_id": rule_id, "hits": int(n), "last_hit": as_utc(at)}
        for rule_id, (n, at) in sorted(rule_hits.items())
    ]
    merged: dict[str, tuple[int, datetime]] = {}
    for path, (n, at) in unmatched.items():
        short = truncate_path(path)
        at = as_utc(at)
        if short in merged:
            old_n, old_at = merged[short]
            merged[short] = (old_n + int(n), max(old_at, at))
        else:
            merged[short] = (int(n), at)
    path_rows = [{"path": path, "hits": n, "last_hit": at} for path, (n, at) in sorted(merged.items())]
    return rule_rows, path_rows


def upsert_counts(conn: Connection, dialect: str, table: Any, key: str, rows: list[dict[str, Any]]) -> None:
    """`hits = hits + n, last_hit = max(last_hit, new)` per row, inserting new keys."""
    if not rows:
        return
    stmt: Any
    if dialect == "postgresql":
        stmt = pg_dialect.insert(table)
        latest = func.greatest(table.c.last_hit, stmt.excluded.last_hit)
    else:
        stmt = sqlite_dialect.insert(table)
        latest = func.max(table.c.last_hit, stmt.excluded.last_hit)
    stmt = stmt.on_conflict_do_update(
        index_elements=[key],
        set_={"hits": table.c.hits + stmt.excluded.hits, "last_hit": latest},
    )
    for batch in batches(rows):
        conn.execute(stmt, list(batch))


def flush(
    conn: Connection,
    dialect: str,
    rule_rows: list[dict[str, Any]],
    path_rows: list[dict[str, Any]],
    bucket_rows: list[dict[str, Any]],
    prune_at: datetime | None,
) -> None:
    """Add one batch (`counter_rows`, `hits.bucket_rows`) in the caller's write transaction; with
    `prune_at`, drop the buckets older than their retention at that time. Then keep only the
    `UNMATCHED_KEEP` most hit unmatched paths."""
    if dialect == "postgresql":
        # Hit flushes are rare and small: serializing them rules out deadlocks
        # between the upserts and the pruning DELETE. Readers are not blocked.
        conn.execute(text("LOCK TABLE rule_hits, unmatched_paths IN SHARE ROW EXCLUSIVE MODE"))
    upsert_counts(conn, dialect, rule_hits_t, "rule_id", rule_rows)
    upsert_counts(conn, dialect, unmatched_paths, "path", path_rows)
    hits_sql.upsert_buckets(conn, dialect, bucket_rows)
    if prune_at is not None:
        hits_sql.prune_buckets(conn, prune_at)
    if path_rows:
        count = conn.scalar(select(func.count()).select_from(unmatched_paths)) or 0
        if count > UNMATCHED_KEEP:
            keep = (
                select(unmatched_paths.c.path)
                .order_by(
                    unmatched_paths.c.hits.desc(),
                    unmatched_paths.c.last_hit.desc(),
                    unmatched_paths.c.path,
                )
                .limit(UNMATCHED_KEEP)
            )
            conn.execute(delete(unmatched_paths).where(unmatched_paths.c.path.not_in(keep)))


# --------------------------------------------------------------------------- reading


def stats(conn: Connection, limit_unmatched: int) -> Stats:
    """See `Store.stats`."""
    hits = func.coalesce(rule_hits_t.c.hits, 0)
    rule_query = (
        select(
            rules_t.c.id,
            rules_t.c.source,
            rules_t.c.source_regex,
            rules_t.c.to,
            rules_t.c.status,
            hits,
            rule_hits_t.c.last_hit,
        )
        .select_from(rules_t.outerjoin(rule_hits_t, rule_hits_t.c.rule_id == rules_t.c.id))
        .order_by(hits.desc(), rules_t.c.position, rules_t.c.id)
    )
    path_query = (
        select(unmatched_paths.c.path, unmatched_paths.c.hits, unmatched_paths.c.last_hit)
        .order_by(
            unmatched_paths.c.hits.desc(),
            unmatched_paths.c.last_hit.desc(),
            unmatched_paths.c.path,
        )
        .limit(max(0, limit_unmatched))
    )
    rule_stats = [
        RuleStats(
            rule_id=rid,
            from_text=source if source is not None else (regex or ""),
            to=to,
            status=status,
            hits=int(n),
            last_hit=last,
        )
        for rid, source, regex, to, status, n, last in conn.execute(rule_query)
    ]
    path_stats = [PathStats(path, int(n), last) for path, n, last in conn.execute(path_query)]
    return Stats(rules=rule_stats, unmatched=path_stats)
