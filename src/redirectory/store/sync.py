"""Declarative sync: the plan that makes the stored table equal to a RuleSet (`diff`), writing it
(`apply`), and the edits others made since the last apply that applying would undo."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, true

from redirectory.rules.model import Rule, RuleSet
from redirectory.store.bulk import batches, bulk_cache, bulk_insert, delete_rules, rules_reindexed
from redirectory.store.codec import (
    STORED_COLUMNS,
    ChangeOp,
    copy_rule,
    log_entry,
    new_id,
    record,
    row_values,
    rule_from_row,
    utc_window,
)
from redirectory.store.database import utcnow
from redirectory.store.retention import read_horizon
from redirectory.store.revisions import RevisionWrite
from redirectory.store.schema import changes, revisions
from redirectory.store.schema import rules as rules_t


@dataclass(slots=True)
class Plan:
    """What `apply` does (or would do) to make the table equal to a RuleSet.

    `added` rules carry their new position (and, from `apply`, their new id); `changed`
    pairs are (before, after), both with the stored id; `removed` are the stored rules.
    `allowed_hosts` is (before, after) when the setting changes, else None.
    `reordered` lists (id, new position) of path rules whose only difference is their
    position: order does not matter for path rules, so that is not a change; `apply`
    still records the new positions when it writes a revision anyway.
    """

    added: list[Rule] = field(default_factory=list)
    changed: list[tuple[Rule, Rule]] = field(default_factory=list)
    removed: list[Rule] = field(default_factory=list)
    allowed_hosts: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    reordered: list[tuple[str, int]] = field(default_factory=list, repr=False)

    @property
    def empty(self) -> bool:
        """True when applying would change nothing (and so write no revision)."""
        return not (self.added or self.changed or self.removed or self.allowed_hosts)

    def summary(self) -> str:
        """`N added, N changed, N removed` (plus `, allowed_hosts changed` if so)."""
        text_ = f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed"
        if self.allowed_hosts is not None:
            text_ += ", allowed_hosts changed"
        return text_


@dataclass(frozen=True, slots=True)
class OutsideEdit:
    """A rule a declarative apply would change or remove, last written by someone else
    (`op` "add" or "change" by `actor` in `revision`) since the last apply (`since`; 0: never)."""

    rule: Rule
    op: str
    revision: int
    actor: str
    at: datetime
    since: int


def diff(
    current: Sequence[Rule],
    ruleset: RuleSet,
    hosts_before: tuple[str, ...],
    new_id: Callable[[], str] | None = None,
) -> Plan:
    """The plan that turns `current` (stored rules, with ids) into `ruleset`.

    Identity is `Rule.key()`. A rule whose compared fields are equal is unchanged, except
    that a regex rule whose position moved counts as changed (regex order matters).
    `new_id`, when given, assigns ids to added rules. Raises ValueError if two rules of
    `ruleset` share a key (the validator reports that as an error first).
    """
    by_key = {rule.key(): rule for rule in current}
    kept: set[str | None] = set()
    seen: set[tuple[Any, ...]] = set()
    plan = Plan()
    for position, incoming in enumerate(ruleset.rules):
        starts, ends = utc_window(incoming)
        rule = incoming
        if starts is not incoming.starts or ends is not incoming.ends:
            rule = copy_rule(incoming, incoming.id, position, starts, ends)
        key = rule.key()
        if key in seen:  # the validator reports these; never store two rules with one key
            raise ValueError(f"duplicate rule at position {position}: {rule.from_text!r}")
        seen.add(key)
        old = by_key.get(key)
        if old is None:
            rule_id = None if new_id is None else new_id()
            plan.added.append(copy_rule(rule, rule_id, position, starts, ends))
            continue
        kept.add(old.id)
        if old != rule or (rule.is_regex and old.position != position):
            plan.changed.append((old, copy_rule(rule, old.id, position, starts, ends)))
        elif old.position != position:
            assert old.id is not None
            plan.reordered.append((old.id, position))
    plan.removed = [rule for rule in current if rule.id not in kept]
    hosts_after = tuple(ruleset.allowed_hosts)
    if hosts_after != hosts_before:
        plan.allowed_hosts = (hosts_before, hosts_after)
    return plan


#: Added rules written (rows and change-log entries) at a time by `apply`.
ADD_BATCH = 10_000


def apply(w: RevisionWrite, ruleset: RuleSet, actor: str) -> tuple[Plan, int]:
    """Make the table exactly `ruleset` in this write (see `Store.apply`)."""
    conn = w.conn
    current_rev = w.head()
    stored = conn.execute(select(*STORED_COLUMNS)).all()
    current = [rule_from_row(row) for row in stored]
    meta = {rule.id: tuple(row[-3:]) for row, rule in zip(stored, current, strict=True)}
    plan = diff(current, ruleset, w.allowed_hosts(), new_id=new_id)
    if plan.empty:
        return plan, current_rev
    now = utcnow()
    rev = w.allocate(actor, f"apply: {plan.summary()}", now)
    log: list[dict[str, Any]] = []
    # Changed and re-positioned rows are rewritten (DELETE + bulk INSERT with the
    # same id and created_at): much faster than 100k single-row UPDATEs.
    gone: list[str] = []
    rows: list[dict[str, Any]] = []
    for rule in plan.removed:
        assert rule.id is not None
        created, updated, old_rev = meta[rule.id]
        before = row_values(rule, rule.id, rule.position, created, updated, old_rev)
        log.append(log_entry(ChangeOp.REMOVE, rule.id, record(rule, before), None))
        gone.append(rule.id)
    for old, new in plan.changed:
        assert old.id is not None
        created, updated, old_rev = meta[old.id]
        before = row_values(old, old.id, old.position, created, updated, old_rev)
        after = row_values(new, old.id, new.position, created, now, rev)
        log.append(log_entry(ChangeOp.CHANGE, old.id, record(old, before), record(new, after)))
        gone.append(old.id)
        rows.append(after)
    if plan.reordered:
        by_id = {rule.id: rule for rule in current}
        for rule_id, position in plan.reordered:
            created, updated, old_rev = meta[rule_id]
            rows.append(row_values(by_id[rule_id], rule_id, position, created, updated, old_rev))
            gone.append(rule_id)
    inserting = len(rows) + len(plan.added)
    with bulk_cache(conn, inserting + len(gone)):
        delete_rules(conn, gone)
        with rules_reindexed(conn, inserting, lambda: len(current) - len(gone)):
            bulk_insert(conn, rules_t, rows)
            w.log(log)
            # Added rules a batch at a time: their rows and change-log records (~1.3 KB a rule
            # as Python objects) are never all held at once.
            for batch in batches(plan.added, ADD_BATCH):
                rows = []
                log = []
                for rule in batch:
                    assert rule.id is not None
                    row = row_values(rule, rule.id, rule.position, now, now, rev)
                    log.append(log_entry(ChangeOp.ADD, rule.id, None, record(rule, row)))
                    rows.append(row)
                bulk_insert(conn, rules_t, rows)
                w.log(log)
    if plan.allowed_hosts is not None:
        w.log([w.set_allowed_hosts(*plan.allowed_hosts)])
    # `ruleset` was validated whole by the caller: it is the table now.
    if plan.reordered:
        w.forget_table()  # positions moved: cheaper to rebuild when next needed
    w.record([*plan.added, *(new for _old, new in plan.changed)], [str(r.id) for r in plan.removed],
             plan.allowed_hosts[1] if plan.allowed_hosts else None)
    return plan, rev


def edits_since_apply(
    conn: Connection, plan: Plan, apply_actors: Sequence[str], before: int | None = None
) -> list[OutsideEdit]:
    """See `Store.edits_since_apply`."""
    targets = {rule.id: rule for rule in plan.removed if rule.id}
    targets.update({old.id: old for old, _new in plan.changed if old.id})
    if not targets:
        return []
    actors = list(apply_actors)
    newer = revisions.c.revision < before if before is not None else true()
    oldest = read_horizon(conn)
    since = int(conn.scalar(select(func.max(revisions.c.revision))
                            .where(revisions.c.actor.in_(actors), revisions.c.revision >= oldest, newer))
                or 0)
    rows = conn.execute(
        select(changes.c.rule_id, changes.c.op, revisions.c.revision, revisions.c.actor, revisions.c.at)
        .join(revisions, revisions.c.revision == changes.c.revision)
        .where(changes.c.revision > since, changes.c.revision >= oldest, newer,
               revisions.c.actor.not_in(actors), changes.c.rule_id.is_not(None))
        .order_by(changes.c.seq)
    ).all()
    newest: dict[str, OutsideEdit] = {}
    for rule_id, op, revision, actor, at in rows:
        rule = targets.get(rule_id)
        if rule is not None:
            newest[rule_id] = OutsideEdit(rule, op, int(revision), actor, at, since)
    return sorted(newest.values(), key=lambda edit: edit.rule.position)
