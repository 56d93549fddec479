"""`cache: ramp` (issue 18, point 3): a new or changed 301/308 starts at a max-age of 5 minutes and
doubles it each whole day the rule stays unchanged, up to a year; a change restarts the ramp.
docs/rules.md, "Cache that ramps up"."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from gateway_process import cli, start_serve
from redirectory.rules.engine import Engine, Request
from redirectory.rules.export import dumps, nginx
from redirectory.rules.parsing import loads
from redirectory.semantics import RAMP_CAP, RAMP_START, ramp_max_age
from redirectory.store import Store
from redirectory.store.schema import rules as rules_t

TABLE = """
rules:
  - {from: /a, to: /b, status: 308, cache: ramp}
  - {from: /c, to: /d, status: 307, cache: ramp, phases: [{starts: 2020-01-01T00:00:00Z, status: 301}]}
"""


def test_the_ramp_doubles_each_day_up_to_a_year() -> None:
    assert [ramp_max_age(d) for d in range(0, 5)] == [300, 600, 1200, 2400, 4800]
    assert ramp_max_age(16) == 300 << 16 and ramp_max_age(17) == RAMP_CAP and ramp_max_age(400) == RAMP_CAP
    assert all(ramp_max_age(d) <= ramp_max_age(d + 1) for d in range(40))
    ruleset, problems = loads(TABLE, "yaml", "t.yaml")
    assert not problems
    changed = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    e = Engine([replace(r, changed_at=changed) for r in ruleset.rules])
    seen = []
    for day in range(4):
        decision = e.decide(Request("GET", "/a"), changed + timedelta(days=day, hours=1))
        seen.append(dict(decision.response.headers)["cache-control"])
    assert seen == ["max-age=300", "max-age=600", "max-age=1200", "max-age=2400"]
    # a whole day counts from the change, not from midnight
    assert dict(e.decide(Request("GET", "/a"), changed + timedelta(hours=23)).response.headers)[
        "cache-control"] == "max-age=300"
    # the phase to 301 ramps too; a rule from a file (no change time) stays at the start
    assert dict(e.decide(Request("GET", "/c"), changed + timedelta(days=2)).response.headers)[
        "cache-control"] == "max-age=1200"
    fresh = Engine(ruleset)
    assert dict(fresh.decide(Request("GET", "/a")).response.headers)["cache-control"] == f"max-age={RAMP_START}"


def test_ramp_is_for_permanent_redirects() -> None:
    _rules, problems = loads("rules:\n  - {from: /a, to: /b, status: 307, cache: ramp}\n", "yaml", "r.yaml")
    assert [(p.field, p.code) for p in problems] == [("cache", "cache.ramp")]
    assert "permanent redirects (301, 308" in problems[0].message
    _rules, problems = loads("rules:\n  - {from: /a, to: /b, cache: soon}\n", "yaml", "r.yaml")
    assert problems[0].field == "cache" and "or ramp" in problems[0].message


@pytest.mark.parametrize("fmt", ["yaml", "json", "csv"])
def test_every_file_format_round_trips(fmt: str) -> None:
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    again, problems = loads(dumps(ruleset, fmt), fmt, f"t.{fmt}")
    assert not problems and [r.cache for r in again.rules] == ["ramp", "ramp"]


def test_exports_name_what_they_leave_out() -> None:
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    assert [p.code for p in nginx(ruleset).skipped] == ["nginx.cache_ramp", "nginx.cache_ramp"]


def test_the_store_gives_each_rule_its_change_time_and_a_change_restarts_it(store: Store) -> None:
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    store.apply(ruleset)
    _rev, loaded = store.load()
    first = {r.source: r.changed_at for r in loaded.rules}
    assert all(isinstance(when, datetime) and when.tzinfo is not None for when in first.values())
    time.sleep(0.01)  # a later change time (the store's clock, microseconds)
    changed, _ = loads(TABLE.replace("/b,", "/b2,"), "yaml", "t.yaml")
    store.apply(changed)
    _rev, again = store.load()
    second = {r.source: r.changed_at for r in again.rules}
    assert second["/a"] is not None and first["/a"] is not None and second["/a"] > first["/a"]
    assert second["/c"] == first["/c"]  # unchanged: its ramp goes on


def test_the_gateway_serves_each_rules_ramp(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n" + "".join(f"  - {{from: /r{d}, to: /t{d}, status: 301, cache: ramp}}\n"
                                         for d in range(3)))
    database = f"sqlite:///{tmp_path}/gateway.db"
    assert cli("rules", "apply", str(rules), "--database", database).returncode == 0
    store = Store.open(database)
    try:  # as if each rule had last changed d days ago
        with store.write_connection() as conn:
            now = datetime.now(UTC)
            for d in range(3):
                conn.execute(update(rules_t).where(rules_t.c.source == f"/r{d}")
                             .values(updated_at=now - timedelta(days=d, minutes=5)))
    finally:
        store.close()
    served = start_serve(tmp_path, database=database)
    try:
        with httpx.Client(base_url=served.base, follow_redirects=False) as client:
            ages = [client.get(f"/r{d}").headers["cache-control"] for d in range(3)]
        assert ages == ["max-age=300", "max-age=600", "max-age=1200"]
    finally:
        served.stop()


def test_the_change_log_says_ramp_as_files_do() -> None:
    from redirectory.store.codec import RAMP_STORED, record, row_values, rule_from_record, rule_from_row

    rule = loads(TABLE, "yaml", "t.yaml")[0].rules[0]
    when = datetime(2026, 12, 1, tzinfo=UTC)
    values = row_values(rule, "r1", 0, when, when, 1)
    assert values["cache"] == RAMP_STORED  # the integer column
    text = record(rule, values)
    assert json.loads(text)["cache"] == "ramp"  # the history's record, as the API shows it
    back = rule_from_record(text)
    assert back is not None and back.cache == "ramp" and back.changed_at == when
    assert rule_from_row([values[c] for c in values]).cache == "ramp"
