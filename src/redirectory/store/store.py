"""The rule store: one `Store` facade over the modules that do the work.

One `Store` wraps one database (`database.py`: URLs, engines, SQLite hooks, transactions, the
write-retry loop). Every write is one transaction (all-or-nothing) and every write that changes
the rule table or its settings goes through `revisions.py` (lock, validate, allocate one new
revision, log the changes, notify), so readers can poll `revision()` and catch up with
`changes_since()`. Rules are stored and read by `codec.py`, big writes go through `bulk.py`,
declarative sync (`plan`, `apply`) is `sync.py`, filtered reads are `listing.py`, the history
is `history.py` and `retention.py`, hit counters `hit_counts.py` (all-time, per rule and
unmatched path) and `hits.py` (time buckets, paged reads). API keys (`create_key` ... `verify_key`:
`key_table.py`, the pure parts `keys.py`) are not part of the rule table: they write no revision.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, delete, func, not_, select, update
from sqlalchemy.exc import OperationalError

from redirectory.rules.model import Problem, Rule, RuleSet
from redirectory.store import history as history_sql
from redirectory.store import hit_counts, key_table, listing, sync
from redirectory.store import hits as hits_sql
from redirectory.store.bulk import batches, bulk_cache, bulk_insert, rules_reindexed
from redirectory.store.codec import (
    PLAIN,
    ChangeOp,
    PlainRows,
    RuleRows,
    StoredRule,
    copy_rule,
    log_entry,
    new_id,
    record,
    row_values,
    utc_window,
)
from redirectory.store.database import (
    BUSY_TIMEOUT_MS,
    LOCK_RETRY_SECONDS,
    MIGRATIONS_DIR,
    Database,
    DatabaseLocked,
    DatabaseNotFound,
    describe_database,
    is_locked,
    lock_retry_seconds,
    normalize_url,
    open_engine,
    redact_url,
    sqlite_file,
    utcnow,
)
from redirectory.store.guard import ChangeRefused
from redirectory.store.history import LoggedChange, Revision
from redirectory.store.hit_counts import UNMATCHED_KEEP, PathStats, RuleStats, Stats
from redirectory.store.keys import ApiKey
from redirectory.store.listing import RuleFilter, RulePage
from redirectory.store.retention import (
    VACUUM_THRESHOLD,
    Pruned,
    Retention,
    delete_batch,
    free_pages,
    read_horizon,
    set_horizon,
    target_horizon,
    try_prune_lock,
    vacuum_step,
)
from redirectory.store.revisions import (
    Change,
    Revisions,
    RevisionWrite,
    changes_since,
    check_kept,
    count_after,
    head,
    read_allowed_hosts,
    stored_rule,
)
from redirectory.store.schema import revisions
from redirectory.store.schema import rules as rules_t
from redirectory.store.sync import OutsideEdit, Plan, diff

__all__ = [
    "BUSY_TIMEOUT_MS",
    "Change",
    "DatabaseLocked",
    "DatabaseNotFound",
    "LOCK_RETRY_SECONDS",
    "LoggedChange",
    "MIGRATIONS_DIR",
    "OutsideEdit",
    "PathStats",
    "Plan",
    "Revision",
    "RuleFilter",
    "RulePage",
    "RuleStats",
    "Stats",
    "Store",
    "StoredRule",
    "TableReader",
    "UNMATCHED_KEEP",
    "describe_database",
    "diff",
    "lock_retry_seconds",
    "normalize_url",
    "redact_url",
    "sqlite_file",
]

T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


def _utcnow() -> datetime:
    return utcnow()


def _rule_count(conn: Connection) -> int:
    return int(conn.scalar(select(func.count()).select_from(rules_t)) or 0)


# --------------------------------------------------------------------------- the store


class Store:
    """The rule store behind one database URL. Thread-safe; share one per process."""

    def __init__(self, engine: Engine):
        """Wrap an engine made by `Store.open` (use that instead)."""
        #: Called with the seconds waited so far while another writer holds SQLite's write lock
        #: (a command line shows progress with it); None: wait silently.
        self.on_lock_wait: Callable[[float], None] | None = None
        self._db = Database(engine)
        self._engine = engine
        self._dialect = self._db.dialect
        self._last_prune: datetime | None = None
        self._revisions = Revisions(self._db)

    # -- lifecycle ---------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, create: bool = True) -> Store:
        """Connect to `url` (`sqlite:///path.db` or `postgresql://...`). Does not migrate.

        For SQLite the file and its parent directory are created (with `create=False` a missing
        file raises DatabaseNotFound instead, and nothing is created), and every connection gets
        WAL mode, `busy_timeout`, `foreign_keys=ON` and `synchronous=NORMAL`.
        """
        return cls(open_engine(url, create))

    def upgrade(self) -> None:
        """Migrate the schema to the newest version (Alembic `upgrade head`). Idempotent."""
        self._db.upgrade(self.on_lock_wait)

    def schema_version(self) -> tuple[str | None, str]:
        """(the migration the database is at, None for no schema; the newest migration)."""
        return self._db.schema_version()

    def close(self) -> None:
        """Release every pooled connection."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        """The dialect name: "sqlite" or "postgresql"."""
        return self._dialect

    # -- transactions ------------------------------------------------------------------

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A connection in one read transaction: a consistent snapshot on both dialects."""
        with self._db.read_connection() as conn:
            yield conn

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A connection in one write transaction (`BEGIN IMMEDIATE` on SQLite); no retry."""
        with self._db.write_connection() as conn:
            yield conn

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one write transaction, retrying while SQLite is locked (`Database.write`)."""
        return self._db.write(work, self.on_lock_wait, self._revisions.attempt)

    def write_revision(self, work: Callable[[RevisionWrite], T]) -> T:
        """Run `work` in one write transaction of the rule table (`revisions.Revisions.write`)."""
        return self._revisions.write(work, self.on_lock_wait)

    # -- reading -----------------------------------------------------------------------

    def revision(self) -> int:
        """The newest revision, 0 for a store nothing was ever written to."""
        with self.read_connection() as conn:
            return head(conn)

    def load(self) -> tuple[int, RuleSet]:
        """The current revision and the whole table (rules with ids, in position order)."""
        with self.read_connection() as conn:
            revision = head(conn)
            ruleset = RuleSet(rules=tuple(RuleRows(conn).all()), allowed_hosts=read_allowed_hosts(conn))
        return revision, ruleset

    def pending(self, revision: int) -> tuple[int, int]:
        """(the newest revision, how many change-log entries follow `revision`): one snapshot, two
        index reads, no change decoded (a follower decides with it between catching up and
        reading the whole table)."""
        with self.read_connection() as conn:
            latest = head(conn)
            if latest <= revision:
                return latest, 0
            return latest, count_after(conn, revision)

    def table_reader(self, ordered: bool = True, plain: bool = False) -> TableReader:
        """A reader of the whole table at one revision, in batches (see TableReader); `ordered=False`
        gives the rules in no particular order, faster; `plain=True` gives the plain rules first, as
        tuples (`fetch_plain`), and only the others as rules."""
        return TableReader(self, ordered, plain)

    def allowed_hosts(self) -> tuple[str, ...]:
        """The table's `allowed_hosts` setting."""
        with self.read_connection() as conn:
            return read_allowed_hosts(conn)

    def get_rule(self, rule_id: str) -> StoredRule | None:
        """Rule `rule_id` as stored, or None."""
        with self.read_connection() as conn:
            return stored_rule(conn, rule_id)

    def rule_count(self) -> int:
        """How many rules the table holds."""
        with self.read_connection() as conn:
            return _rule_count(conn)

    def list_rules(
        self,
        host: str | None = None,
        status: int | None = None,
        search: str | None = None,
    ) -> list[Rule]:
        """Rules in position order, filtered.

        `host`: rules whose `from` starts with `//host/` (case-insensitive); `status`: that
        status code; `search`: case-insensitive substring of from / from_regex / to / note.
        """
        with self.read_connection() as conn:
            return listing.list_rules(conn, host, status, search)

    def list_page(self, filters: RuleFilter, sort: Sequence[tuple[str, str]], offset: int, limit: int) -> RulePage:
        """One page of the rules `filters` selects, sorted by `sort` ((key of `listing.SORT_KEYS`,
        "ASC" or "DESC"), ...) then by position and id, with how many it selects."""
        with self.read_connection() as conn:
            return listing.list_page(conn, filters, sort, offset, limit)

    def changes_since(self, revision: int) -> list[Change]:
        """Every change-log entry of revisions after `revision`, oldest first; HistoryPruned when
        some of them were pruned (`revision` is older than the oldest revision kept - 1)."""
        with self.read_connection() as conn:
            check_kept(conn, revision)
            return changes_since(conn, revision)

    def catch_up(self, revision: int) -> tuple[int, list[Change]]:
        """(the newest revision, every change after `revision`) from one snapshot, in one round.

        What a gateway calls on every wake-up: nothing but the revision when it is current.
        HistoryPruned when changes after `revision` were pruned: reload the whole table (`load`).
        """
        with self.read_connection() as conn:
            latest = head(conn)
            if latest <= revision:
                return latest, []
            check_kept(conn, revision)
            return latest, changes_since(conn, revision)

    # -- declarative sync --------------------------------------------------------------

    def plan(self, ruleset: RuleSet) -> Plan:
        """What `apply(ruleset)` would do now. Writes nothing; added rules have no id."""
        with self.read_connection() as conn:
            current = RuleRows(conn).all()
            hosts = read_allowed_hosts(conn)
        return diff(current, ruleset, hosts)

    def edits_since_apply(
        self, plan: Plan, apply_actors: Sequence[str], before: int | None = None
    ) -> list[OutsideEdit]:
        """The rules `plan` would change or remove that someone other than `apply_actors` wrote
        after the newest revision those actors made (all of the history kept when it holds none
        of theirs: `since` is then 0): edits through the admin API or an import that applying a
        rule file would undo. The newest such edit per rule, in table order. `before`: look only
        at revisions older than it (the revision that plan was applied as, when asked after)."""
        if not plan.removed and not plan.changed:
            return []
        with self.read_connection() as conn:
            return sync.edits_since_apply(conn, plan, apply_actors, before)

    def apply(self, ruleset: RuleSet, actor: str = "cli") -> tuple[Plan, int]:
        """Make the table exactly `ruleset`: one transaction, one new revision.

        Unchanged and changed rules keep their ids; added rules get new UUIDs. An empty
        plan writes nothing and returns the current revision.
        """
        plan, rev = self.write_revision(lambda w: sync.apply(w, ruleset, actor))
        self._db.analyze_after(len(plan.added) + len(plan.changed) + len(plan.removed))
        return plan, rev

    def add(
        self,
        rules: Sequence[Rule],
        actor: str = "cli",
        progress: Callable[[int], None] | None = None,
        *,
        allowed_hosts: Sequence[str] | None = None,
        problems: list[Problem] | None = None,
        validate: bool = True,
        source: str | None = None,
    ) -> int:
        """Import: insert `rules` after the existing rules, with new UUIDs.

        All-or-nothing in one transaction and one revision (returned). `progress(done)` is
        called after every batch of ~1000 rows. `allowed_hosts`, when given and different
        from the stored setting, replaces it in the same revision. Adding nothing (and not
        changing allowed_hosts) writes nothing and returns the current revision.
        Validated with the table inside the write, like `insert_rule` (`Problem.index` is the
        rule's place in `rules`).
        """
        hosts = None if allowed_hosts is None else tuple(allowed_hosts)
        if not rules and hosts is None:
            return self.revision()

        def work(w: RevisionWrite) -> int:
            hosts_before = w.allowed_hosts()
            hosts_changed = hosts is not None and hosts != hosts_before
            if not rules and not hosts_changed:
                return w.head()
            start = w.next_position()
            now = _utcnow()
            stored = [copy_rule(rule, new_id(), position, *utc_window(rule))
                      for position, rule in enumerate(rules, start=start)]
            if validate:
                w.check(stored, (), problems, hosts if hosts_changed else None, source)
            summary = f"add: {len(rules)} added" + (", allowed_hosts changed" if hosts_changed else "")
            w.allocate(actor, summary, now)
            if hosts_changed:
                assert hosts is not None
                w.log([w.set_allowed_hosts(hosts_before, hosts)])
            with bulk_cache(w.conn, len(stored)), rules_reindexed(w.conn, len(stored), lambda: _rule_count(w.conn)):
                self._add_rows(w, stored, now, progress)
            w.record(stored, (), hosts if hosts_changed else None)
            return int(w.revision or 0)

        rev = self.write_revision(work)
        self._db.analyze_after(len(rules))
        return rev

    @staticmethod
    def _add_rows(w: RevisionWrite, stored: list[Rule], now: datetime, progress: Callable[[int], None] | None) -> None:
        """Insert new rules (with ids and positions) and their change-log entries, in batches."""
        rev = int(w.revision or 0)
        done = 0
        for batch in batches(stored):
            values = []
            log = []
            for rule in batch:
                assert rule.id is not None
                row = row_values(rule, rule.id, rule.position, now, now, rev)
                values.append(row)
                log.append(log_entry(ChangeOp.ADD, rule.id, None, record(rule, row)))
            bulk_insert(w.conn, rules_t, values)
            w.log(log)
            done += len(batch)
            if progress is not None:
                progress(done)

    def check_add(self, rules: Sequence[Rule], *, allowed_hosts: Sequence[str] | None = None,
                  source: str | None = None) -> list[Problem]:
        """Every problem `add(rules, allowed_hosts=...)` would meet (errors and warnings), writing nothing."""
        hosts = None if allowed_hosts is None else tuple(allowed_hosts)

        def work(w: RevisionWrite) -> list[Problem]:
            start = w.next_position()
            stored = [copy_rule(rule, f"new-{n}", n + start, *utc_window(rule)) for n, rule in enumerate(rules)]
            found: list[Problem] = []
            try:
                w.check(stored, (), found, hosts, source)
            except ChangeRefused as exc:
                return exc.problems
            return found

        return self.write_revision(work)

    # -- single-rule writes (the admin API) -------------------------------------------------

    def insert_rule(
        self, rule: Rule, actor: str = "api", *, problems: list[Problem] | None = None, validate: bool = True
    ) -> StoredRule:
        """Add one rule after the others (new UUID), as one revision; returns it as stored.

        Validated with the table inside the write (ChangeRefused on errors; warnings are added to
        `problems`), unless `validate` is False."""

        def work(w: RevisionWrite) -> StoredRule:
            position = w.next_position()
            now = _utcnow()
            rule_id = new_id()
            stored = copy_rule(rule, rule_id, position, *utc_window(rule))
            if validate:
                w.check([stored], (), problems)
            rev = w.allocate(actor, "create: 1 added", now)
            w.record([stored])
            row = row_values(stored, rule_id, position, now, now, rev)
            bulk_insert(w.conn, rules_t, [row])
            w.log([log_entry(ChangeOp.ADD, rule_id, None, record(stored, row))])
            return w.stored(rule_id)

        return self.write_revision(work)

    def replace_rule(
        self, rule_id: str, rule: Rule, actor: str = "api", check: Callable[[StoredRule], None] | None = None,
        *, problems: list[Problem] | None = None, validate: bool = True,
    ) -> StoredRule | None:
        """Make rule `rule_id` equal to `rule` (same id and position), as one revision.

        `check(current)` runs inside the transaction before the write (a precondition such
        as If-Match); whatever it raises aborts the write. None when there is no such rule.
        Validated like `insert_rule`.
        """

        def work(w: RevisionWrite) -> StoredRule | None:
            current = w.current(rule_id, check)
            if current is None:
                return None
            now = _utcnow()
            new = copy_rule(rule, rule_id, current.position, *utc_window(rule))
            if validate:
                w.check([new], (), problems)
            rev = w.allocate(actor, "update: 1 changed", now)
            w.record([new])
            after = row_values(new, rule_id, current.position, current.created_at, now, rev)
            w.conn.execute(update(rules_t).where(rules_t.c.id == rule_id).values(
                {k: v for k, v in after.items() if k != "id"}))
            w.log([log_entry(ChangeOp.CHANGE, rule_id, record(current.rule, current.values()), record(new, after))])
            return w.stored(rule_id)

        return self.write_revision(work)

    def delete_rule(self, rule_id: str, actor: str = "api",
                    check: Callable[[StoredRule], None] | None = None) -> bool:
        """Remove rule `rule_id` as one revision (after `check(current)`); False if absent."""

        def work(w: RevisionWrite) -> bool:
            current = w.current(rule_id, check)
            if current is None:
                return False
            w.allocate(actor, "delete: 1 removed", _utcnow())
            w.record((), (rule_id,))
            w.conn.execute(delete(rules_t).where(rules_t.c.id == rule_id))
            w.log([log_entry(ChangeOp.REMOVE, rule_id, record(current.rule, current.values()), None)])
            return True

        return self.write_revision(work)

    # -- hit counters ------------------------------------------------------------------

    def record_hits(
        self,
        rule_hits: Mapping[str, tuple[int, datetime]],
        unmatched: Mapping[str, tuple[int, datetime]],
        unmatched_extra: int = 0,
    ) -> None:
        """Add batched hit counts: {rule id or path: (hits, last hit time)}.

        One transaction. Paths are truncated to 2048 characters; afterwards only the
        `UNMATCHED_KEEP` most hit unmatched paths are kept. The same hits are added to the
        minute and hour buckets (`redirectory.store.hits`); `unmatched_extra` counts unmatched
        requests whose paths were not kept, for the buckets only. See `hit_counts.flush`.
        """
        if not rule_hits and not unmatched and not unmatched_extra:
            return
        now = _utcnow()
        bucket_rows = hits_sql.bucket_rows(rule_hits, unmatched, unmatched_extra, now)
        prune = self._last_prune is None or now - self._last_prune >= timedelta(minutes=1)
        rule_rows, path_rows = hit_counts.counter_rows(rule_hits, unmatched)
        prune_at = now if prune else None
        self._write(lambda conn: hit_counts.flush(conn, self._dialect, rule_rows, path_rows, bucket_rows, prune_at))
        if prune:
            self._last_prune = now

    def stats_summary(self) -> hits_sql.StatsSummary:
        """All-time totals: rules hit and never hit, hits, unmatched paths kept and their hits."""
        with self.read_connection() as conn:
            return hits_sql.summary(conn)

    def rule_stats_page(
        self, offset: int, limit: int, sort: Sequence[tuple[str, str]] = (("hits", "DESC"),), unused: bool | None = None
    ) -> tuple[int, list[tuple[str, str, str, int, int, datetime | None]]]:
        """One page of the current rules with their hits: (total, rows); see `hits.rule_stats_page`."""
        with self.read_connection() as conn:
            return hits_sql.rule_stats_page(conn, offset, limit, list(sort), unused)

    def unmatched_page(self, offset: int, limit: int) -> tuple[int, list[tuple[str, int, datetime]]]:
        """One page of the unmatched paths kept, most hit first: (total, rows)."""
        with self.read_connection() as conn:
            return hits_sql.unmatched_page(conn, offset, limit)

    def timeline(
        self, interval: str, since: datetime, until: datetime, rule_id: str | None = None
    ) -> list[hits_sql.Bucket]:
        """Hits per `interval` ("minute", "hour" or "day") in [since, until), empty buckets included."""
        with self.read_connection() as conn:
            return hits_sql.timeline(conn, interval, since, until, rule_id)

    def stats(self, limit_unmatched: int = 20) -> Stats:
        """Hits of every current rule (0 if never hit), most hit first; top unmatched paths."""
        with self.read_connection() as conn:
            return hit_counts.stats(conn, limit_unmatched)

    # -- API keys ----------------------------------------------------------------------

    def create_key(self, name: str, scope: str) -> tuple[ApiKey, str]:
        """A new API key and its secret (the only time the secret is available).

        Stores the SHA-256 of the secret, never the secret. Raises ValueError (and writes
        nothing) for a name that is not 1-200 printable characters or an unknown scope.
        """
        key, secret = key_table.new_key(name, scope, _utcnow())
        row = key_table.key_row(key, secret)
        self._write(lambda conn: key_table.insert_key(conn, row))
        return key, secret

    def list_keys(self, include_revoked: bool = True) -> list[ApiKey]:
        """Every key, newest first (only the valid ones unless `include_revoked`)."""
        with self.read_connection() as conn:
            return key_table.list_keys(conn, include_revoked)

    def get_key(self, key_id: str) -> ApiKey | None:
        """The key with this id, revoked or not; None if there is none."""
        if not key_table.plausible_key_id(key_id):
            return None
        with self.read_connection() as conn:
            return key_table.get_key(conn, key_id)

    def revoke_key(self, key_id: str) -> ApiKey | None:
        """Revoke a key (it never verifies again); None if there is no such key.

        Idempotent: revoking a revoked key changes nothing and keeps its first `revoked_at`.
        """
        if not key_table.plausible_key_id(key_id):
            return None
        return self._write(lambda conn: key_table.revoke_key(conn, key_id, _utcnow()))

    def verify_key(self, secret: str) -> ApiKey | None:
        """The valid key whose secret this is; None for an unknown, revoked or malformed one.

        The secret is hashed and looked up by its hash (the same work whatever part of it
        is wrong; the stored hash is compared in constant time as well). This is one read
        transaction; `last_used_at` is written only when it is older than
        `LAST_USED_RESOLUTION` (at most about once a minute per key, not per request), by
        one short extra write whose condition makes concurrent verifiers write it once (and
        which is skipped, not retried, if SQLite stays locked by another writer).
        """
        digest = key_table.secret_digest(secret)
        if digest is None:
            return None
        with self.read_connection() as conn:
            key = key_table.valid_key(conn, digest)
        if key is None:
            return None
        now = _utcnow()
        if key_table.last_used_due(key, now) and self._touch_last_used(key.id, now):
            key = replace(key, last_used_at=now)
        return key

    def _touch_last_used(self, key_id: str, now: datetime) -> bool:
        """`key_table.touch_last_used` in one attempt, not `_write`'s retry loop: verification must
        not wait long behind a big rule write just to record a time that can wait a minute (False
        when SQLite is locked)."""
        try:
            with self.write_connection() as conn:
                return key_table.touch_last_used(conn, key_id, now)
        except OperationalError as exc:
            if self._dialect != "sqlite" or not is_locked(exc):
                raise
            return False

    # -- history (the admin API) ----------------------------------------------------------

    def history(
        self, offset: int = 0, limit: int = 10, changes_per_revision: int | None = 100
    ) -> tuple[int, list[Revision]]:
        """(how many revisions the history keeps, one page of them newest first, each with its changes)."""
        with self.read_connection() as conn:
            return history_sql.history_page(conn, offset, limit, changes_per_revision)

    def revision_info(self, revision: int) -> Revision | None:
        """One revision with every one of its changes; None if there is no such revision,
        HistoryPruned if it is older than the history kept."""
        return self.revision_page(revision, 0, None)

    def revision_page(self, revision: int, offset: int, limit: int | None) -> Revision | None:
        """One revision with `limit` (None: all) of its changes from `offset`, oldest first; None
        if there is no such revision, HistoryPruned if it is older than the history kept."""
        with self.read_connection() as conn:
            return history_sql.revision_page(conn, revision, offset, limit)

    def oldest_revision(self) -> int | None:
        """The oldest revision the history keeps (with all its changes); None before the first write."""
        with self.read_connection() as conn:
            return history_sql.oldest_revision(conn)

    def ruleset_at(self, revision: int) -> RuleSet:
        """The table as it was right after `revision`: the current table with the changes after
        `revision` undone, newest first (so the work grows with how far back, not with all of
        history).

        Rules keep their ids; order is the stored position (path rules whose position moved
        without any other change log no entry, but their order does not matter; regex rules
        log every move). LookupError for a revision that does not exist, HistoryPruned (a
        LookupError) for one older than the history kept; 0 is the empty table before the first
        write, while nothing was pruned.
        """
        with self.read_connection() as conn:
            return history_sql.ruleset_at(conn, revision)

    def prune_history(self, retention: Retention, now: datetime | None = None, seconds: float = 1.0) -> Pruned:
        """Prune the history down to `retention` (see `retention.py`): move the horizon, delete
        below it in short transactions and, on SQLite, give the freed pages back, for about
        `seconds` (`done` False: call again for the rest; float("inf"): all of it). Skips the
        work another process is doing already (PostgreSQL)."""
        deadline = time.monotonic() + seconds
        moment = now or _utcnow()
        with self.read_connection() as conn:  # most calls find nothing to do: no write lock for them
            oldest = read_horizon(conn)
            target = target_horizon(conn, retention, moment)
            below = conn.scalar(select(revisions.c.revision)
                                .where(revisions.c.revision < max(oldest, target)).limit(1)) is not None
            free = free_pages(conn)
        if target > oldest:
            moved = self._write(lambda conn: set_horizon(conn, target) if try_prune_lock(conn) else None)
            if moved is None:  # another process prunes
                return Pruned(oldest, 0, 0, 0, done=True)
            oldest = moved
        changes_removed = revisions_removed = pages = 0
        while below:
            if time.monotonic() >= deadline:
                return Pruned(oldest, changes_removed, revisions_removed, 0, done=False)
            deleted = self._write(lambda conn: delete_batch(conn) if try_prune_lock(conn) else None)
            if deleted is None:
                return Pruned(oldest, changes_removed, revisions_removed, 0, done=True)
            changes_removed += deleted[0]
            revisions_removed += deleted[1]
            below = deleted != (0, 0)
        if changes_removed or revisions_removed:
            with self.read_connection() as conn:
                free = free_pages(conn)
        if free >= VACUUM_THRESHOLD:
            raw = self._engine.raw_connection()
            sqlite: Any = raw.driver_connection
            try:
                while free >= VACUUM_THRESHOLD and time.monotonic() < deadline:
                    returned, free = vacuum_step(sqlite)
                    pages += returned
                if pages:  # copy the WAL back now: that is when the file shrinks (PASSIVE: no waiting)
                    sqlite.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.OperationalError as exc:  # another writer holds the lock: the next run goes on
                if "locked" not in str(exc):
                    raise
            finally:
                raw.close()
        return Pruned(oldest, changes_removed, revisions_removed, pages, done=free < VACUUM_THRESHOLD)


class TableReader:
    """The whole table at one revision, read in batches from one snapshot, so a caller can build
    from it a little at a time (the gateway does, between requests). `open()` (it waits on the
    database) returns the revision; `fetch(n)` gives up to n rules in position order, [] at the
    end; `close()` ends the snapshot. Not thread-safe: one caller at a time."""

    def __init__(self, store: Store, ordered: bool = True, plain: bool = False):
        self._snapshot = store.read_connection()
        self._result: Any = None
        self._plain: PlainRows | None = None
        self._ordered = ordered
        self._split = plain
        self._hosts: tuple[str, ...] = ()

    def open(self) -> int:
        conn = self._snapshot.__enter__()
        try:
            revision = head(conn)
            self._hosts = read_allowed_hosts(conn)
            if self._split:  # two cursors of one snapshot: the plain rules, then the rest
                self._plain = PlainRows(conn)
                self._result = RuleRows(conn, self._ordered, not_(PLAIN))
            else:
                self._result = RuleRows(conn, self._ordered)
        except BaseException as exc:
            self._snapshot.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return revision

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        """The table's `allowed_hosts` at the snapshot's revision (after `open()`)."""
        return self._hosts

    def fetch_plain(self, n: int) -> list[tuple[str, str, str, int, int]]:
        """With `plain=True`: up to n more plain rules as `(id, from, to, status, position)`
        (`Matcher.add_plain`), [] at their end; then `fetch` gives the others."""
        return [] if self._plain is None else self._plain.fetch(n)

    def fetch(self, n: int) -> list[Rule]:
        rows: RuleRows = self._result
        return rows.fetch(n)

    def close(self, exc: BaseException | None = None) -> None:
        self._result = None
        self._snapshot.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)
