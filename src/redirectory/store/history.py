"""The history as the admin API shows it: revisions with their change-log rows (records as dicts),
and the table as it was after a revision (`ruleset_at`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from redirectory.rules.model import RuleSet
from redirectory.store.codec import ChangeOp, RuleRows, rule_from_record
from redirectory.store.retention import HistoryPruned, read_horizon
from redirectory.store.revisions import head, hosts_of_record, read_allowed_hosts
from redirectory.store.schema import changes, revisions


@dataclass(frozen=True, slots=True)
class LoggedChange:
    """One change-log row as stored: `before`/`after` are the JSON records (dicts) or None."""

    op: str
    rule_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Revision:
    """One revision with (up to a limit) its change-log entries, oldest first."""

    revision: int
    at: datetime
    actor: str
    summary: str
    change_count: int
    changes: list[LoggedChange]


def _logged(op: str, rule_id: str | None, before: str | None, after: str | None) -> LoggedChange:
    return LoggedChange(op, rule_id, None if before is None else json.loads(before),
                        None if after is None else json.loads(after))


def history_page(conn: Connection, offset: int, limit: int,
                 changes_per_revision: int | None) -> tuple[int, list[Revision]]:
    """See `Store.history`."""
    kept = revisions.c.revision >= read_horizon(conn)
    total = int(conn.scalar(select(func.count()).select_from(revisions).where(kept)) or 0)
    rows = conn.execute(
        select(revisions).where(kept).order_by(revisions.c.revision.desc()).limit(limit).offset(offset)
    ).all()
    return total, _history_revisions(conn, rows, changes_per_revision)


def _history_revisions(
    conn: Connection, rows: Sequence[Any], changes_per_revision: int | None
) -> list[Revision]:
    numbers = [int(row.revision) for row in rows]
    if not numbers:
        return []
    counts: dict[int, int] = dict(
        conn.execute(
            select(changes.c.revision, func.count())
            .where(changes.c.revision.in_(numbers))
            .group_by(changes.c.revision)
        ).all()
    )
    logged: dict[int, list[LoggedChange]] = {n: [] for n in numbers}
    for number in numbers:
        query = (
            select(changes.c.op, changes.c.rule_id, changes.c.before, changes.c.after)
            .where(changes.c.revision == number)
            .order_by(changes.c.seq)
        )
        if changes_per_revision is not None:
            query = query.limit(changes_per_revision)
        logged[number].extend(_logged(*entry) for entry in conn.execute(query))
    return [
        Revision(int(row.revision), row.at, row.actor, row.summary, int(counts.get(row.revision, 0)),
                 logged[int(row.revision)])
        for row in rows
    ]


def revision_page(conn: Connection, revision: int, offset: int, limit: int | None) -> Revision | None:
    """See `Store.revision_page`."""
    oldest = read_horizon(conn)
    if 0 < revision < oldest:
        raise HistoryPruned(revision, oldest)
    row = conn.execute(select(revisions).where(revisions.c.revision == revision)).first()
    if row is None:
        return None
    count = int(conn.scalar(select(func.count()).select_from(changes)
                            .where(changes.c.revision == revision)) or 0)
    query = (select(changes.c.op, changes.c.rule_id, changes.c.before, changes.c.after)
             .where(changes.c.revision == revision).order_by(changes.c.seq).offset(offset))
    if limit is not None:
        query = query.limit(limit)
    logged = [_logged(*entry) for entry in conn.execute(query)]
    return Revision(int(row.revision), row.at, row.actor, row.summary, count, logged)


def oldest_revision(conn: Connection) -> int | None:
    """See `Store.oldest_revision`."""
    latest = head(conn)
    return None if latest == 0 else min(read_horizon(conn), latest)


def ruleset_at(conn: Connection, revision: int) -> RuleSet:
    """See `Store.ruleset_at`."""
    latest = head(conn)
    oldest = read_horizon(conn)
    if revision < 0 or revision > latest:
        raise LookupError(f"no revision {revision}")
    if revision < oldest and not (revision == 0 and oldest == 1):
        raise HistoryPruned(revision, oldest)
    table = {rule.id: rule for rule in RuleRows(conn).all()}
    hosts = read_allowed_hosts(conn)
    query = (select(changes.c.op, changes.c.rule_id, changes.c.before)
             .where(changes.c.revision > revision).order_by(changes.c.seq.desc()))
    for op, rule_id, before in conn.execute(query):
        if op == ChangeOp.SETTINGS:
            hosts = hosts_of_record(before) or ()
        elif op == ChangeOp.ADD:
            table.pop(rule_id, None)
        elif (rule := rule_from_record(before)) is not None:  # change, remove
            table[rule_id] = rule
    ordered = sorted(table.values(), key=lambda r: (r.position, r.id or ""))
    return RuleSet(rules=tuple(ordered), allowed_hosts=hosts)
