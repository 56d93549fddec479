"""Revisions: the one way the rule table and its settings are written.

Every write path (apply, add, the single-rule writes, the admin API's bulk writes, settings) runs
`Revisions.write(work)`: one transaction that first serializes revision writers (SQLite's
`BEGIN IMMEDIATE` does it; PostgreSQL takes a table lock), and hands `work` a `RevisionWrite` that
validates the change against the table inside the transaction (`guard.py`), allocates the next
revision (notifying listeners when it commits, `notify.py`), logs the changes and tells the guard
what was written. Readers poll the revision and catch up with the change log (`changes_since`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, func, insert, select, text

from redirectory.rules.model import Problem, Rule
from redirectory.store.bulk import bulk_insert
from redirectory.store.codec import (
    JSON,
    STORED_COLUMNS,
    ChangeOp,
    RuleRows,
    StoredRule,
    dump_list,
    log_entry,
    rule_from_record,
    stored_from_row,
)
from redirectory.store.database import Database
from redirectory.store.guard import TableGuard, TableState
from redirectory.store.notify import notify_revision
from redirectory.store.retention import HistoryPruned, read_horizon
from redirectory.store.schema import changes, revisions, settings
from redirectory.store.schema import rules as rules_t

T = TypeVar("T")

ALLOWED_HOSTS = "allowed_hosts"


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change log.

    `op` is "add", "change", "remove" (rule changes: `rule_id` set, `before`/`after` as
    applicable) or "settings" (`allowed_hosts` holds the new value, the rest is None).
    """

    revision: int
    op: ChangeOp
    rule_id: str | None
    before: Rule | None
    after: Rule | None
    allowed_hosts: tuple[str, ...] | None = None


# -- reading (any transaction) ---------------------------------------------------------------------


def head(conn: Connection) -> int:
    """The newest revision, 0 before the first write."""
    return int(conn.scalar(select(func.max(revisions.c.revision))) or 0)


def read_allowed_hosts(conn: Connection) -> tuple[str, ...]:
    value = conn.scalar(select(settings.c.value).where(settings.c.name == ALLOWED_HOSTS))
    return () if value is None else tuple(json.loads(value))


def hosts_of_record(record: str | None) -> tuple[str, ...] | None:
    """The allowed_hosts of a "settings" change-log record."""
    return None if record is None else tuple(json.loads(record)[ALLOWED_HOSTS])


def count_after(conn: Connection, revision: int) -> int:
    """How many change-log entries follow `revision`."""
    return int(conn.scalar(select(func.count()).select_from(changes).where(changes.c.revision > revision)) or 0)


def check_kept(conn: Connection, revision: int) -> None:
    """HistoryPruned unless every change after `revision` is still in the log."""
    oldest = read_horizon(conn)
    if revision < oldest - 1:
        raise HistoryPruned(revision, oldest)


def changes_since(conn: Connection, revision: int) -> list[Change]:
    """Every change-log entry after `revision`, oldest first, decoded."""
    query = (
        select(changes.c.revision, changes.c.op, changes.c.rule_id, changes.c.before, changes.c.after)
        .where(changes.c.revision > revision)
        .order_by(changes.c.seq)
    )
    out: list[Change] = []
    for rev, op, rule_id, before, after in conn.execute(query).all():
        if op == ChangeOp.SETTINGS:
            out.append(Change(rev, ChangeOp(op), None, None, None, hosts_of_record(after)))
        else:
            out.append(Change(rev, ChangeOp(op), rule_id, rule_from_record(before), rule_from_record(after)))
    return out


def next_position(conn: Connection) -> int:
    """The position after the last rule's."""
    last = conn.scalar(select(func.max(rules_t.c.position)))
    return 0 if last is None else int(last) + 1


def stored_rule(conn: Connection, rule_id: str) -> StoredRule | None:
    row = conn.execute(select(*STORED_COLUMNS).where(rules_t.c.id == rule_id)).first()
    return None if row is None else stored_from_row(row)


# -- writing ---------------------------------------------------------------------------------------


class Revisions:
    """The revision writer of one store: its write transactions and the guard that validates them."""

    def __init__(self, db: Database):
        self.db = db
        #: Validates every rule write inside its transaction (`guard.py`).
        self.guard = TableGuard()

    @contextmanager
    def attempt(self) -> Iterator[None]:
        """Around one write attempt: a change recorded in the guard that did not commit is forgotten."""
        before = self.guard.revision
        try:
            yield
        except BaseException:
            if self.guard.revision != before:
                self.guard.discard()
            raise

    def write(self, work: Callable[[RevisionWrite], T], on_lock_wait: Callable[[float], None] | None = None) -> T:
        """Run `work` in one write transaction holding the revision lock (retried while SQLite is locked)."""

        def run(conn: Connection) -> T:
            return work(RevisionWrite(self, conn))

        return self.db.write(run, on_lock_wait, self.attempt)


class RevisionWrite:
    """One write transaction of the rule table, holding the revision lock."""

    def __init__(self, owner: Revisions, conn: Connection):
        self.conn = conn
        self.revision: int | None = None
        self._guard = owner.guard
        if owner.db.dialect == "postgresql":  # SQLite's BEGIN IMMEDIATE already serializes writers
            conn.execute(text("LOCK TABLE revisions IN EXCLUSIVE MODE"))

    def head(self) -> int:
        return head(self.conn)

    def allowed_hosts(self) -> tuple[str, ...]:
        return read_allowed_hosts(self.conn)

    def next_position(self) -> int:
        return next_position(self.conn)

    def current(self, rule_id: str, check: Callable[[StoredRule], None] | None = None) -> StoredRule | None:
        """Rule `rule_id` as stored, after `check(it)` (a precondition: what it raises aborts the write)."""
        found = stored_rule(self.conn, rule_id)
        if found is not None and check is not None:
            check(found)
        return found

    def stored(self, rule_id: str) -> StoredRule:
        """Rule `rule_id` as this transaction wrote it."""
        found = stored_rule(self.conn, rule_id)
        assert found is not None
        return found

    def table_state(self) -> TableState:
        """What the write guard reads of the table, in this transaction."""
        conn = self.conn

        def changes_after(revision: int) -> Iterator[tuple[Sequence[Rule], Sequence[str], tuple[str, ...] | None]]:
            for change in changes_since(conn, revision):
                if change.op == ChangeOp.SETTINGS:
                    yield (), (), change.allowed_hosts or ()
                elif change.op == ChangeOp.REMOVE:
                    yield (), (str(change.rule_id),), None
                elif change.after is not None:
                    yield (change.after,), (), None

        return TableState(
            head=lambda: head(conn),
            horizon=lambda: read_horizon(conn),
            rules=lambda: RuleRows(conn).all(),
            allowed_hosts=lambda: read_allowed_hosts(conn),
            changes=changes_after,
            pending=lambda revision: count_after(conn, revision),
        )

    def check(
        self,
        upserts: Sequence[Rule],
        removals: Sequence[str] = (),
        problems: list[Problem] | None = None,
        allowed_hosts: tuple[str, ...] | None = None,
        source: str | None = None,
    ) -> None:
        """Validate a change against the table as it is inside this write (ChangeRefused on errors);
        warnings are added to `problems`."""
        found = self._guard.check(self.table_state(), upserts, removals, allowed_hosts, source)
        if problems is not None:
            problems.extend(found)

    def allocate(self, actor: str, summary: str, now: datetime) -> int:
        """The next revision, recorded (listeners hear of it when this transaction commits)."""
        revision = head(self.conn) + 1
        self.conn.execute(insert(revisions).values(revision=revision, at=now, actor=actor, summary=summary))
        # PostgreSQL delivers it when this transaction commits (never if it rolls back).
        notify_revision(self.conn, revision)
        self.revision = revision
        return revision

    def log(self, entries: list[dict[str, Any]]) -> None:
        """Add change-log entries (`codec.log_entry`) to the allocated revision."""
        assert self.revision is not None, "allocate a revision first"
        for entry in entries:
            entry["revision"] = self.revision
        bulk_insert(self.conn, changes, entries)

    def set_allowed_hosts(self, before: tuple[str, ...], after: tuple[str, ...]) -> dict[str, Any]:
        """Store `after` as allowed_hosts; returns the change-log entry (`log` it)."""
        self.conn.execute(delete(settings).where(settings.c.name == ALLOWED_HOSTS))
        self.conn.execute(insert(settings).values(name=ALLOWED_HOSTS, value=dump_list(after)))
        return log_entry(ChangeOp.SETTINGS, None, JSON.encode({ALLOWED_HOSTS: list(before)}),
                         JSON.encode({ALLOWED_HOSTS: list(after)}))

    def record(self, upserts: Sequence[Rule], removals: Sequence[str] = (),
               allowed_hosts: tuple[str, ...] | None = None) -> None:
        """Tell the guard what this revision wrote (the rules were validated, or are the whole table)."""
        assert self.revision is not None, "allocate a revision first"
        self._guard.record(upserts, removals, self.revision, allowed_hosts)

    def forget_table(self) -> None:
        """The guard rebuilds its index when next needed (positions moved)."""
        self._guard.discard()
