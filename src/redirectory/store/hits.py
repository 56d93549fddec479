"""Hit statistics in the store: counters per rule, unmatched paths, and hits over time.

The gateway counts in memory and flushes a batch about once a second (`Store.record_hits`);
this module holds the SQL for the time buckets and the paged reads behind `rules stats` and
the admin API's `stats` resource (the flush itself and the all-time counters are `hit_counts.py`).
Buckets:

- minute buckets (width 60 s), kept for `MINUTE_BUCKETS_KEPT`;
- hour buckets (width 3600 s), kept for `HOUR_BUCKETS_KEPT`;
- `rule_id` "" counts requests no rule matched.

A batch's hits land in the bucket of their last hit, so a bucket is exact to within the flush
interval. Old buckets are pruned at most once a minute per process, in the flush transaction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from redirectory.store.schema import as_utc, hit_buckets
from redirectory.store.schema import rule_hits as rule_hits_t
from redirectory.store.schema import rules as rules_t
from redirectory.store.schema import unmatched_paths as unmatched_t

MINUTE = 60
HOUR = 3600
DAY = 86400
#: How long minute and hour buckets are kept.
MINUTE_BUCKETS_KEPT = timedelta(days=2)
HOUR_BUCKETS_KEPT = timedelta(days=90)
#: Interval name -> (bucket width stored, interval in seconds).
INTERVALS: dict[str, tuple[int, int]] = {"minute": (MINUTE, MINUTE), "hour": (HOUR, HOUR), "day": (HOUR, DAY)}
#: The bucket key of requests no rule matched.
UNMATCHED = ""


@dataclass(frozen=True, slots=True)
class Bucket:
    """Hits in [start, start + interval): matched by rules, and unmatched."""

    start: datetime
    hits: int
    unmatched: int


@dataclass(frozen=True, slots=True)
class StatsSummary:
    """Totals across the table: all-time counters and the rules never hit."""

    rules: int
    rules_hit: int
    hits: int
    last_hit: datetime | None
    unmatched_paths: int
    unmatched_hits: int
    last_unmatched: datetime | None


def _epoch(at: datetime) -> int:
    return int(as_utc(at).timestamp())


def bucket_rows(
    rule_hits: Mapping[str, tuple[int, datetime]],
    unmatched: Mapping[str, tuple[int, datetime]],
    unmatched_extra: int = 0,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The minute and hour bucket rows of one flushed batch (summed per key)."""
    sums: dict[tuple[int, int, str], int] = {}

    def add(rule_id: str, n: int, at: datetime) -> None:
        t = _epoch(at)
        for width in (MINUTE, HOUR):
            key = (width, t - t % width, rule_id)
            sums[key] = sums.get(key, 0) + n

    for rule_id, (n, at) in rule_hits.items():
        add(rule_id, int(n), at)
    for n, at in unmatched.values():
        add(UNMATCHED, int(n), at)
    if unmatched_extra:
        add(UNMATCHED, unmatched_extra, now or datetime.now(UTC))
    return [{"width": w, "start": s, "rule_id": r, "hits": n} for (w, s, r), n in sorted(sums.items()) if n > 0]


def upsert_buckets(conn: Connection, dialect: str, rows: list[dict[str, Any]]) -> None:
    """`hits = hits + n` per bucket row, inserting new ones."""
    if not rows:
        return
    stmt: Any = pg_dialect.insert(hit_buckets) if dialect == "postgresql" else sqlite_dialect.insert(hit_buckets)
    stmt = stmt.on_conflict_do_update(
        index_elements=["width", "start", "rule_id"],
        set_={"hits": hit_buckets.c.hits + stmt.excluded.hits},
    )
    conn.execute(stmt, rows)


def prune_buckets(conn: Connection, now: datetime) -> None:
    """Drop buckets older than their retention."""
    t = _epoch(now)
    conn.execute(
        delete(hit_buckets).where(
            or_(
                and_(hit_buckets.c.width == MINUTE, hit_buckets.c.start < t - int(MINUTE_BUCKETS_KEPT.total_seconds())),
                and_(hit_buckets.c.width == HOUR, hit_buckets.c.start < t - int(HOUR_BUCKETS_KEPT.total_seconds())),
            )
        )
    )


def oldest_kept(interval: str, now: datetime) -> datetime:
    """The earliest time an interval's buckets can still cover."""
    kept = MINUTE_BUCKETS_KEPT if INTERVALS[interval][0] == MINUTE else HOUR_BUCKETS_KEPT
    return as_utc(now) - kept


def timeline(
    conn: Connection, interval: str, since: datetime, until: datetime, rule_id: str | None = None
) -> list[Bucket]:
    """Every bucket of `interval` from `since` (rounded down) up to `until`, zeros included."""
    width, step = INTERVALS[interval]
    first = _epoch(since) - _epoch(since) % step
    # every bucket that starts before `until`: at 06:17:00.4 the bucket of 06:17 already holds hits
    end = math.ceil(as_utc(until).timestamp())
    query = (
        select(hit_buckets.c.start, hit_buckets.c.rule_id, hit_buckets.c.hits)
        .where(hit_buckets.c.width == width, hit_buckets.c.start >= first, hit_buckets.c.start < end)
    )
    if rule_id is not None:
        query = query.where(hit_buckets.c.rule_id == rule_id)
    matched: dict[int, int] = {}
    missed: dict[int, int] = {}
    for start, key, hits in conn.execute(query):
        slot = int(start) - int(start) % step
        target = missed if key == UNMATCHED else matched
        target[slot] = target.get(slot, 0) + int(hits)
    return [
        Bucket(datetime.fromtimestamp(t, UTC), matched.get(t, 0), missed.get(t, 0))
        for t in range(first, end, step)
    ]


def summary(conn: Connection) -> StatsSummary:
    rules = conn.scalar(select(func.count()).select_from(rules_t)) or 0
    joined = rules_t.join(rule_hits_t, rule_hits_t.c.rule_id == rules_t.c.id)
    hit_row = conn.execute(
        select(func.count(), func.coalesce(func.sum(rule_hits_t.c.hits), 0), func.max(rule_hits_t.c.last_hit))
        .select_from(joined)
    ).one()
    miss_row = conn.execute(
        select(func.count(), func.coalesce(func.sum(unmatched_t.c.hits), 0), func.max(unmatched_t.c.last_hit))
    ).one()
    return StatsSummary(
        rules=int(rules),
        rules_hit=int(hit_row[0]),
        hits=int(hit_row[1]),
        last_hit=as_utc(hit_row[2]) if hit_row[2] is not None else None,
        unmatched_paths=int(miss_row[0]),
        unmatched_hits=int(miss_row[1]),
        last_unmatched=as_utc(miss_row[2]) if miss_row[2] is not None else None,
    )


#: Sortable fields of rule stats -> column expression builder.
RULE_STATS_SORT = ("hits", "lastHit", "status", "from", "to")


def rule_stats_page(
    conn: Connection,
    offset: int,
    limit: int,
    sort: list[tuple[str, str]],
    unused: bool | None = None,
) -> tuple[int, list[tuple[str, str, str, int, int, datetime | None]]]:
    """(total, [(uuid, from, to, status, hits, last hit)]) of the current rules."""
    hits = func.coalesce(rule_hits_t.c.hits, 0)
    source = func.coalesce(rules_t.c.source, rules_t.c.source_regex, "")
    columns = {"hits": hits, "lastHit": rule_hits_t.c.last_hit, "status": rules_t.c.status,
               "from": source, "to": rules_t.c.to}
    base = rules_t.outerjoin(rule_hits_t, rule_hits_t.c.rule_id == rules_t.c.id)
    condition: Any = None
    if unused is True:
        condition = rule_hits_t.c.rule_id.is_(None)
    elif unused is False:
        condition = rule_hits_t.c.rule_id.is_not(None)
    count = select(func.count()).select_from(base)
    query = select(rules_t.c.id, source, rules_t.c.to, rules_t.c.status, hits, rule_hits_t.c.last_hit).select_from(
        base
    )
    if condition is not None:
        count = count.where(condition)
        query = query.where(condition)
    order: list[Any] = []
    for name, direction in sort:
        column = columns[name]
        order.append(column.desc().nulls_last() if direction == "DESC" else column.asc().nulls_first())
    order += [rules_t.c.position, rules_t.c.id]
    total = int(conn.scalar(count) or 0)
    rows = conn.execute(query.order_by(*order).offset(offset).limit(limit)).all()
    return total, [
        (rid, src, to, int(status), int(n), as_utc(last) if last is not None else None)
        for rid, src, to, status, n, last in rows
    ]


def unmatched_page(conn: Connection, offset: int, limit: int) -> tuple[int, list[tuple[str, int, datetime]]]:
    """(total, [(path, hits, last hit)]) of the kept unmatched paths, most hit first."""
    total = int(conn.scalar(select(func.count()).select_from(unmatched_t)) or 0)
    rows = conn.execute(
        select(unmatched_t.c.path, unmatched_t.c.hits, unmatched_t.c.last_hit)
        .order_by(unmatched_t.c.hits.desc(), unmatched_t.c.last_hit.desc(), unmatched_t.c.path)
        .offset(offset)
        .limit(limit)
    ).all()
    return total, [(path, int(n), as_utc(last)) for path, n, last in rows]
