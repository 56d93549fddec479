"""Several rule creations and updates as ONE revision (the admin API's atomic bulk writes)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, func, select, update

from redirectory.rules.model import Problem, Rule
from redirectory.store.guard import ChangeRefused
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
    *,
    problems: list[Problem] | None = None,
    validate: bool = True,
) -> dict[int, Any]:
    """Create and update rules in one transaction and one revision.

    `creates` are (request index, rule); `updates` are (request index, rule id, rule). `checks`
    maps a rule id to a precondition run on its current row inside the transaction (If-Match);
    anything raised aborts everything. Returns the written rows by request index.
    The change is validated with the table inside the transaction, like `Store.insert_rule`:
    ChangeRefused on errors, warnings added to `problems`; a problem's `index` is the request index
    of the item it is about.
    """

    def work(conn: Connection) -> dict[int, Any]:
        store._lock_revisions(conn)
        now = _utcnow()
        changed: list[tuple[int, Rule, Any, Rule, dict[str, Any]]] = []
        for index, rule_id, rule in updates:
            existing = store._current(conn, rule_id, (checks or {}).get(rule_id))
            if existing is None:
                raise MissingRule(index, rule_id)
            current, old, before = existing
            changed.append((index, _copy(rule, rule_id, current.position, *_utc_window(rule)), current, old, before))
        last = conn.scalar(select(func.max(rules_t.c.position)))
        position = 0 if last is None else int(last) + 1
        added = [(index, _copy(rule, _new_id(), position + n, *_utc_window(rule)))
                 for n, (index, rule) in enumerate(creates)]
        upserts = [new for _i, new, *_rest in changed] + [new for _i, new in added]
        if validate:
            order = [i for i, *_rest in changed] + [i for i, _new in added]
            found: list[Problem] = []
            try:
                store._check(conn, upserts, (), found)
            except ChangeRefused as exc:
                raise ChangeRefused(_reindexed(exc.problems, order)) from None
            if problems is not None:
                problems.extend(_reindexed(found, order))
        rev = store._new_revision(conn, actor, f"bulk: {len(creates)} added, {len(updates)} changed", now)
        written: dict[int, str] = {}
        log = []
        for index, new, current, old, before in changed:
            rule_id = str(new.id)
            after = _values(new, rule_id, current.position, current.created_at, now, rev)
            conn.execute(update(rules_t).where(rules_t.c.id == rule_id).values(
                {k: v for k, v in after.items() if k != "id"}))
            log.append(_log("change", rule_id, _record(old, before), _record(new, after)))
            written[index] = rule_id
        rows = []
        for index, stored in added:
            rule_id = str(stored.id)
            row = _values(stored, rule_id, stored.position, now, now, rev)
            rows.append(row)
            log.append(_log("add", rule_id, None, _record(stored, row)))
            written[index] = rule_id
        if rows:
            _bulk_insert(conn, rules_t, rows)
        for entry in log:
            entry["revision"] = rev
        if log:
            _bulk_insert(conn, changes, log)
        store._guard.record(upserts, (), rev)
        ids = list(written.values())
        got = {r.id: r for r in conn.execute(select(rules_t).where(rules_t.c.id.in_(ids))).all()} if ids else {}
        return {index: got[rule_id] for index, rule_id in written.items()}

    return store._write(work)


def _reindexed(problems: list[Problem], order: list[int]) -> list[Problem]:
    """Problems with `index` turned from the place among the written rules into the request index."""
    return [replace(p, index=order[p.index]) if p.index is not None and p.index < len(order) else p
            for p in problems]
