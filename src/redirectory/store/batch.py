"""Several rule creations and updates as ONE revision (the admin API's atomic bulk writes)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from sqlalchemy import update

from redirectory.rules.model import Problem, Rule
from redirectory.store.bulk import bulk_insert
from redirectory.store.codec import ChangeOp, StoredRule, copy_rule, log_entry, new_id, record, row_values, utc_window
from redirectory.store.database import utcnow
from redirectory.store.guard import ChangeRefused
from redirectory.store.revisions import RevisionWrite
from redirectory.store.schema import rules as rules_t
from redirectory.store.store import Store


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
    checks: Mapping[str, Callable[[StoredRule], None]] | None = None,
    *,
    problems: list[Problem] | None = None,
    validate: bool = True,
) -> dict[int, StoredRule]:
    """Create and update rules in one transaction and one revision.

    `creates` are (request index, rule); `updates` are (request index, rule id, rule). `checks`
    maps a rule id to a precondition run on it as stored (`StoredRule`) inside the transaction (If-Match);
    anything raised aborts everything. Returns the written rules as stored, by request index.
    The change is validated with the table inside the transaction, like `Store.insert_rule`:
    ChangeRefused on errors, warnings added to `problems`; a problem's `index` is the request index
    of the item it is about.
    """

    def work(w: RevisionWrite) -> dict[int, StoredRule]:
        now = utcnow()
        changed: list[tuple[int, Rule, StoredRule]] = []
        for index, rule_id, rule in updates:
            current = w.current(rule_id, (checks or {}).get(rule_id))
            if current is None:
                raise MissingRule(index, rule_id)
            changed.append((index, copy_rule(rule, rule_id, current.position, *utc_window(rule)), current))
        position = w.next_position()
        added = [(index, copy_rule(rule, new_id(), position + n, *utc_window(rule)))
                 for n, (index, rule) in enumerate(creates)]
        upserts = [new for _i, new, _current in changed] + [new for _i, new in added]
        if validate:
            order = [i for i, *_rest in changed] + [i for i, _new in added]
            found: list[Problem] = []
            try:
                w.check(upserts, (), found)
            except ChangeRefused as exc:
                raise ChangeRefused(_reindexed(exc.problems, order)) from None
            if problems is not None:
                problems.extend(_reindexed(found, order))
        rev = w.allocate(actor, f"bulk: {len(creates)} added, {len(updates)} changed", now)
        written: dict[int, str] = {}
        log = []
        for index, new, current in changed:
            rule_id = str(new.id)
            after = row_values(new, rule_id, current.position, current.created_at, now, rev)
            w.conn.execute(update(rules_t).where(rules_t.c.id == rule_id).values(
                {k: v for k, v in after.items() if k != "id"}))
            log.append(log_entry(ChangeOp.CHANGE, rule_id, record(current.rule, current.values()), record(new, after)))
            written[index] = rule_id
        rows = []
        for index, stored in added:
            rule_id = str(stored.id)
            row = row_values(stored, rule_id, stored.position, now, now, rev)
            rows.append(row)
            log.append(log_entry(ChangeOp.ADD, rule_id, None, record(stored, row)))
            written[index] = rule_id
        if rows:
            bulk_insert(w.conn, rules_t, rows)
        if log:
            w.log(log)
        w.record(upserts)
        return {index: w.stored(rule_id) for index, rule_id in written.items()}

    return store.write_revision(work)


def _reindexed(problems: list[Problem], order: list[int]) -> list[Problem]:
    """Problems with `index` turned from the place among the written rules into the request index."""
    return [replace(p, index=order[p.index]) if p.index is not None and p.index < len(order) else p
            for p in problems]
