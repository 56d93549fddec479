"""How much history the store keeps, and pruning the rest.

Every write that changes the rule table appends one change-log row per rule it adds, changes or
removes (the rule before and after) under a new revision. The log is what gateways catch up from
and what `history` and `restore` read; unbounded, nine applies of a 100k-rule file made 880 MB of
log beside 29 MB of rules. The retention, read from the environment of each process that prunes
(`Retention.from_env`, defaults in `Retention`):

    REDIRECTORY_HISTORY_KEEP_REVISIONS   keep at least the newest N revisions            100
    REDIRECTORY_HISTORY_KEEP_DAYS        and every revision younger than D days          30
    REDIRECTORY_HISTORY_MAX_CHANGES      but no more than C changes in all               250000

The window is whichever of the first two keeps more, then cut from its oldest end to C changes;
the newest revision is always kept whole. N and D say how far back `history` and `restore` reach;
neither bounds disk space (a revision may change one rule or 200k), C does.

Pruning first records the oldest revision kept (the horizon: `settings` row `history_horizon`) in
one small transaction, then deletes what lies below it in batches of `BATCH_ROWS` rows, each its
own short transaction. Readers take the horizon from the same snapshot as the log, so whatever
still lies below it is already gone for them: history lists from the horizon, a pruned revision is
`HistoryPruned` (410 in the admin API), and a gateway whose revision is older than horizon - 1
reloads the whole table. On SQLite the freed pages go back to the file system through
`PRAGMA incremental_vacuum` (databases created with auto_vacuum=INCREMENTAL, as `Store.open` makes
them; older files reuse them for later writes).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, func, insert, select, text, update

from redirectory.store.schema import changes, revisions, settings

if TYPE_CHECKING:
    from redirectory.store.store import Store

log = logging.getLogger("redirectory.store")

#: The environment variables of the retention, by `Retention` field.
ENV = {
    "keep_revisions": "REDIRECTORY_HISTORY_KEEP_REVISIONS",
    "keep_days": "REDIRECTORY_HISTORY_KEEP_DAYS",
    "max_changes": "REDIRECTORY_HISTORY_MAX_CHANGES",
}
#: `settings` row holding the oldest revision whose changes are kept (absent: 1, nothing pruned).
HORIZON_SETTING = "history_horizon"
#: Change-log (or revision) rows deleted per transaction.
BATCH_ROWS = 5000
#: SQLite pages returned to the file system per transaction (4 KiB pages: 4 MiB; measured on a
#: busy 2-vCPU machine: up to ~0.2 s of write lock, where 5,000 deleted change rows take ~0.05-0.2 s).
VACUUM_PAGES = 1024
#: Free SQLite pages left alone (the next writes reuse them anyway).
VACUUM_THRESHOLD = 256
#: How often a gateway worker checks the retention when no new revision arrives (revisions age).
CHECK_INTERVAL = 60.0
#: How long one gateway check may prune before it leaves the rest to the next flush.
RUN_SECONDS = 0.5
_PG_PRUNE_LOCK = 0x5EDC_0002  # pg_advisory_xact_lock key: one pruner at a time


@dataclass(frozen=True, slots=True)
class Retention:
    """How much of the change log to keep (see the module docstring)."""

    keep_revisions: int = 100
    keep_days: int = 30
    max_changes: int = 250_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Retention:
        """The retention the environment sets (defaults for unset variables); ValueError naming the
        variable for a value that is not a whole number in range."""
        environ = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for name, variable in ENV.items():
            raw = environ.get(variable, "").strip()
            if not raw:
                continue
            minimum = 0 if name == "keep_days" else 1
            if not (raw.isascii() and raw.isdigit()) or not minimum <= int(raw) <= 10**9:
                raise ValueError(f"{variable}={raw[:40]!r}: give a whole number from {minimum} to 1000000000")
            values[name] = int(raw)
        return cls(**values)

    def to_json(self) -> dict[str, int]:
        return {"keep_revisions": self.keep_revisions, "keep_days": self.keep_days,
                "max_changes": self.max_changes}


class HistoryPruned(LookupError):
    """`revision`'s changes (or those after it) are older than the history kept, which starts at
    revision `oldest`."""

    def __init__(self, revision: int, oldest: int):
        super().__init__(f"revision {revision} is older than the history kept (oldest revision kept: {oldest})")
        self.revision = revision
        self.oldest = oldest


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one `Store.prune_history` did: the horizon after it, rows deleted, SQLite pages
    returned, and whether work is left (`done` False: call again)."""

    oldest: int
    changes: int
    revisions: int
    pages: int
    done: bool


# --------------------------------------------------------------------------- SQL pieces


def read_horizon(conn: Connection) -> int:
    """The oldest revision whose changes are all kept (1 when nothing was ever pruned)."""
    value = conn.scalar(select(settings.c.value).where(settings.c.name == HORIZON_SETTING))
    return 1 if value is None else int(json.loads(value))


def target_horizon(conn: Connection, retention: Retention, now: datetime) -> int:
    """The horizon `retention` asks for now (never below the current one, never above the newest
    revision, which is always kept)."""
    current = read_horizon(conn)
    latest = int(conn.scalar(select(func.max(revisions.c.revision))) or 0)
    if latest <= current:
        return current
    by_count = latest - retention.keep_revisions + 1
    cutoff = now - timedelta(days=retention.keep_days)
    young = conn.scalar(select(revisions.c.revision)
                        .where(revisions.c.revision >= current, revisions.c.at >= cutoff)
                        .order_by(revisions.c.revision).limit(1))
    target = max(current, min(by_count, latest + 1 if young is None else int(young)))
    # The change budget, counted by sequence number (exact on SQLite; on PostgreSQL a rolled-back
    # write leaves a gap that counts until it leaves the window, so fewer are kept, never more).
    newest_seq = conn.scalar(select(func.max(changes.c.seq)))
    if newest_seq is not None:
        first_kept = int(newest_seq) - retention.max_changes + 1
        at = conn.scalar(select(changes.c.revision).where(changes.c.seq >= first_kept)
                         .order_by(changes.c.seq).limit(1))
        before = conn.scalar(select(changes.c.revision).where(changes.c.seq < first_kept)
                             .order_by(changes.c.seq.desc()).limit(1))
        if at is not None:
            # A revision straddling the cut is not kept in part: the window starts after it.
            target = max(target, int(at) + 1 if before == at else int(at))
    return min(target, latest)


def set_horizon(conn: Connection, horizon: int) -> int:
    """Move the horizon forward to `horizon` (never back); returns the horizon now stored."""
    current = read_horizon(conn)
    if horizon <= current:
        return current
    value = json.dumps(horizon)
    if conn.execute(update(settings).where(settings.c.name == HORIZON_SETTING).values(value=value)).rowcount == 0:
        conn.execute(insert(settings).values(name=HORIZON_SETTING, value=value))
    return horizon


def try_prune_lock(conn: Connection) -> bool:
    """One pruner at a time on PostgreSQL (the others skip, not wait); SQLite's BEGIN IMMEDIATE
    serializes writers already."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _PG_PRUNE_LOCK}).scalar())


def delete_batch(conn: Connection) -> tuple[int, int]:
    """Delete up to BATCH_ROWS change-log rows below the horizon, or, once there are none, up to
    BATCH_ROWS revisions below it: (changes deleted, revisions deleted)."""
    horizon = read_horizon(conn)
    doomed = select(changes.c.seq).where(changes.c.revision < horizon).limit(BATCH_ROWS)
    removed = conn.execute(delete(changes).where(changes.c.seq.in_(doomed.scalar_subquery()))).rowcount
    if removed:
        return int(removed), 0
    old = select(revisions.c.revision).where(revisions.c.revision < horizon).limit(BATCH_ROWS)
    return 0, int(conn.execute(delete(revisions).where(revisions.c.revision.in_(old.scalar_subquery()))).rowcount)


def free_pages(conn: Connection) -> int:
    """SQLite pages `incremental_vacuum` can return now (0 without auto_vacuum=INCREMENTAL)."""
    if conn.dialect.name != "sqlite" or conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() != 2:
        return 0
    return int(conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0)


def vacuum_step(sqlite: Any) -> tuple[int, int]:
    """Return up to VACUUM_PAGES free pages to the file system, through `sqlite` (a pysqlite
    connection outside any transaction): (pages returned, pages still free)."""
    free = int(sqlite.execute("PRAGMA freelist_count").fetchone()[0])
    step = min(free, VACUUM_PAGES)
    if step:
        # Its own write transaction. The pragma returns one page per step of the statement and
        # pysqlite's execute() steps once; executescript() runs it to the end.
        sqlite.executescript(f"PRAGMA incremental_vacuum({step});")
    return step, free - step


# --------------------------------------------------------------------------- gateway side


class Pruner:
    """Runs `Store.prune_history` from a gateway worker's periodic flush: when the worker saw a new
    revision, when the last run left work, and at least every CHECK_INTERVAL seconds (revisions
    age without any write). Never raises: a failure is logged once and retried at the next check."""

    def __init__(self, retention: Retention | None):
        self.retention = retention
        self._seen: int | None = None
        self._last = 0.0
        self._pending = True
        self._failing = False

    @classmethod
    def from_env(cls) -> Pruner:
        """A pruner with the environment's retention; one that never prunes (and says so once)
        when the environment is invalid."""
        try:
            return cls(Retention.from_env())
        except ValueError as exc:
            log.error("not pruning the history: %s", exc)
            return cls(None)

    def tick(self, store: Store, revision: int) -> Pruned | None:
        """Prune if due (see the class docstring); what was done, or None."""
        now = time.monotonic()
        due = self._pending or revision != self._seen or now - self._last >= CHECK_INTERVAL
        if self.retention is None or not due:
            return None
        try:
            result = store.prune_history(self.retention, seconds=RUN_SECONDS)
        except Exception as exc:  # noqa: BLE001 - the history waits for the next check
            if not self._failing:
                log.warning("cannot prune the history (will retry): %s", type(exc).__name__)
            self._failing, self._seen, self._last, self._pending = True, revision, now, False
            return None
        self._failing, self._seen, self._last, self._pending = False, revision, now, not result.done
        if result.changes or result.revisions:
            log.info("history pruned below revision %d: %d changes, %d revisions removed",
                     result.oldest, result.changes, result.revisions)
        return result


def history_json(oldest: int | None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What `/healthz` says of the history: the oldest revision kept (None: no revision yet) and the
    retention this process prunes by (or the problem with its environment)."""
    try:
        return {"oldest_revision": oldest, **Retention.from_env(environ).to_json()}
    except ValueError as exc:
        return {"oldest_revision": oldest, "error": str(exc)}


__all__ = ["ENV", "HistoryPruned", "Pruned", "Pruner", "Retention", "history_json"]
