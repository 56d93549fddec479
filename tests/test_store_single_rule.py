"""Single-rule writes (used by the admin API), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from redirectory.rules.model import Rule, RuleSet
from redirectory.store import Store


class Refused(Exception):
    pass


def test_insert_replace_delete_each_make_one_revision_and_a_log_entry(store: Store) -> None:
    store.apply(RuleSet((Rule(source="/a", to="/b", status=308),)))
    row = store.insert_rule(Rule(source="/c", to="/d", status=307), actor="api:test")
    assert row.position == 1 and store.revision() == 2
    changed = store.replace_rule(row.id, Rule(source="/c", to="/e", status=307), actor="api:test")
    assert changed.id == row.id and changed.to == "/e" and changed.created_at == row.created_at
    assert changed.revision == 3
    assert store.delete_rule(row.id, actor="api:test") is True
    assert store.revision() == 4
    log = store.changes_since(1)
    assert [(c.revision, c.op, c.rule_id) for c in log] == [(2, "add", row.id), (3, "change", row.id), (4, "remove", row.id)]
    assert log[1].before is not None and log[1].before.to == "/d"
    assert log[1].after is not None and log[1].after.to == "/e"
    assert [r.source for r in store.load()[1].rules] == ["/a"]


def test_a_failing_precondition_changes_nothing(store: Store) -> None:
    row = store.insert_rule(Rule(source="/c", to="/d", status=307))
    before = (store.revision(), store.load()[1])

    def refuse(_row: object) -> None:
        raise Refused

    with pytest.raises(Refused):
        store.replace_rule(row.id, Rule(source="/c", to="/x", status=307), check=refuse)
    with pytest.raises(Refused):
        store.delete_rule(row.id, check=refuse)
    assert (store.revision(), store.load()[1]) == before


def test_unknown_ids(store: Store) -> None:
    assert store.replace_rule("00000000-0000-4000-8000-000000000000", Rule(source="/a", to="/b")) is None
    assert store.delete_rule("00000000-0000-4000-8000-000000000000") is False
    assert store.revision() == 0
