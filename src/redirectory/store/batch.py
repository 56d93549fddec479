"""Several rule creations and updates as ONE revision (the admin API's atomic bulk writes)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, select, update

from redirectory.rules.model import Rule
from redirectory.store.schema import changes
from redirectory.store.schema import rules as rules_t
from redirectory.store.store import (
    Store,
    _bulk_insert,
    _copy,
    _log,
    _new_id,
    _record,
    _utc_window,
    _utcnow,
    _values,
)


class MissingRule(LookupError):
    """An update names a rule id that does not exist; `index` is its place in the request."""

    def __init__(self, index: int, rule_id: str):
        super().__init__(rule_id)
        self.index = index
        self.rule_id = rule_id


def write_rules(
    store: Store,
    creates: Sequence[tuple[int, Rule]],
    updates: Sequence[tuple[int, str, Rule]],
    actor: str = "api",
    checks: Mapping[str, Callable[[Any], None]] | None = None,
) -> dict[int, Any]:
    """Create and update rules in one transaction and one revision.

    `creates` are (request index, rule); `updates` are (request index, rule id, rule). `checks`
    maps a rule id to a precondition run on its current row inside the transaction (If-Match);
    anything raised aborts everything. Returns the written rows by request index.
    """

    def work(conn: Connection) -> dict[int, Any]:
        store._lock_revisions(conn)
        now = _utcnow()
        rev = store._new_revision(conn, actor, f"bulk: {len(creates)} added, {len(updates)} changed", now)
        written: dict[int, str] = {}
        log = []
        for index, rule_id, rule in updates:
            existing = store._current(conn, rule_id, (checks or {}).get(rule_id))
            if existing is None:
                raise MissingRule(index, rule_id)
            current, old, before = existing
            new = _copy(rule, rule_id, current.position, *_utc_window(rule))
            after = _values(new, rule_id, current.position, current.created_at, now, rev)
            conn.execute(update(rules_t).where(rules_t.c.id == rule_id).values(
                {k: v for k, v in after.items() if k != "id"}))
            log.append(_log("change", rule_id, _record(old, before), _record(new, after)))
            written[index] = rule_id
        last = conn.scalar(select(func.max(rules_t.c.position)))
        position = 0 if last is None else int(last) + 1
        rows = []
        for index, rule in creates:
            rule_id = _new_id()
            stored = _copy(rule, rule_id, position, *_utc_window(rule))
            row = _values(stored, rule_id, position, now, now, rev)
            rows.append(row)
            log.append(_log("add", rule_id, None, _record(stored, row)))
            written[index] = rule_id
            position += 1
        if rows:
            _bulk_insert(conn, rules_t, rows)
        for entry in log:
            entry["revision"] = rev
        if log:
            _bulk_insert(conn, changes, log)
        ids = list(written.values())
        found = {r.id: r for r in conn.execute(select(rules_t).where(rules_t.c.id.in_(ids))).all()} if ids else {}
        return {index: found[rule_id] for index, rule_id in written.items()}

    return store._write(work)
