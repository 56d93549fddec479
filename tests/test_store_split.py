"""The store's modules: the row codec round-trips every rule field, typed reads (`StoredRule`,
`RulePage`), and big SQLite inserts that rebuild the rule indexes after the rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redirectory.rules.model import Rule, RuleSet
from redirectory.store import RuleFilter, Store, StoredRule
from redirectory.store import bulk as bulk_module
from redirectory.store.codec import RULE_COLUMN_NAMES, record, row_values, rule_from_record, rule_from_row

WORDS = st.text(alphabet="abcxyz-_é", min_size=1, max_size=6)
TIMES = st.none() | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                                 timezones=st.just(UTC))
RULES = st.builds(
    Rule,
    to=WORDS.map(lambda w: f"/{w}"),
    source=WORDS.map(lambda w: f"/{w}"),
    status=st.sampled_from([301, 302, 307, 308]),
    methods=st.none() | st.lists(st.sampled_from(["GET", "HEAD", "POST"]), unique=True).map(tuple),
    query=st.sampled_from(["keep", "drop"]),
    starts=TIMES,
    ends=TIMES,
    cache=st.none() | st.integers(0, 2**31 - 1),
    priority=st.integers(-(2**31), 2**31 - 1),
    case_insensitive=st.booleans(),
    enabled=st.booleans(),
    tags=st.lists(WORDS, max_size=3).map(tuple),
    note=st.none() | st.text(max_size=20),
)


@settings(max_examples=200)
@given(RULES)
def test_a_rule_survives_its_row_and_its_change_log_record(rule: Rule) -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    values = row_values(rule, "id-1", 7, now, now, 3)
    from_row = rule_from_row([values[name] for name in RULE_COLUMN_NAMES])
    from_record = rule_from_record(record(rule, values))
    assert from_row == rule and from_record == rule
    assert (from_row.id, from_row.position) == ("id-1", 7)
    assert from_record is not None and (from_record.id, from_record.position) == ("id-1", 7)


def test_get_rule_and_list_page_are_typed(store: Store) -> None:
    store.apply(RuleSet((
        Rule(source="//api.example.com/a", to="/b", status=308, tags=("x",), methods=("GET",)),
        Rule(source="/c", to="/d", status=301, enabled=False, note="Billing"),
        Rule(source_regex="^/e/(\\d+)$", to="/f/$1", status=302),
    )))
    page = store.list_page(RuleFilter(), [("from", "ASC")], 0, 10)
    assert page.total == 3 and all(isinstance(item, StoredRule) for item in page.items)
    assert [item.rule.from_text for item in page.items] == ["//api.example.com/a", "/c", "^/e/(\\d+)$"]
    first = page.items[0]
    assert store.get_rule(first.id) == first and store.get_rule("no-such-id") is None
    assert first.to == "/b" and first.revision == 1 and first.created_at == first.updated_at
    assert store.list_page(RuleFilter(host="API.example.com"), [], 0, 10).total == 1
    assert store.list_page(RuleFilter(method="get"), [], 0, 10).total == 3  # no methods: every method
    assert store.list_page(RuleFilter(method="POST"), [], 0, 10).total == 2
    assert store.list_page(RuleFilter(enabled=False), [], 0, 10).items[0].rule.source == "/c"
    assert store.list_page(RuleFilter(tag="x", status=308), [], 0, 10).total == 1
    assert store.list_page(RuleFilter(text="billing"), [], 0, 10).total == 1
    two = store.list_page(RuleFilter(), [("status", "DESC")], 1, 1)
    assert two.total == 3 and [item.rule.status for item in two.items] == [302]


def _indexes(store: Store) -> set[str]:
    with store.read_connection() as conn:
        return {row[0] for row in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'rules' AND sql IS NOT NULL")}


def test_a_big_sqlite_insert_rebuilds_the_rule_indexes_after_the_rows(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_module, "REINDEX_ROWS", 10)
    store = Store.open(f"sqlite:///{tmp_path}/big.db")
    store.upgrade()
    indexes = _indexes(store)
    assert {"ix_rules_status", "ix_rules_source", "ix_rules_position"} <= indexes
    store.add([Rule(source=f"/a{i}", to="/b") for i in range(30)])  # 30 >= 10 into an empty table
    store.apply(RuleSet(tuple(Rule(source=f"/c{i}", to="/d") for i in range(100))))  # all replaced
    assert _indexes(store) == indexes
    assert store.rule_count() == 100 and store.list_rules(search="c99")[0].source == "/c99"
    with store.read_connection() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    store.close()
