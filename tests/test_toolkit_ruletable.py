"""The rule table inside an app: a rule file, bad files, and the store with live reload."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from redirectory.rulefile import read_rule_file
from redirectory.rules.engine import Engine, Request
from redirectory.rules.model import Rule
from redirectory.store import Store
from redirectory.toolkit import RedirectOptions, RequestInfo, RuleTable, RuleTableError

EXAMPLE = Path(__file__).parent.parent / "examples" / "redirects.yaml"


@pytest.mark.parametrize(("method", "path", "query"), [
    ("GET", "/api/v1/users/42", ""), ("POST", "/api/v1/users/42", ""), ("GET", "/apiFoo/v1/something", "a=1"),
    ("POST", "/api/v1/reports/9/generate", ""), ("GET", "/legacy/items/12", ""),
])
def test_same_response_as_the_gateway_engine(method: str, path: str, query: str) -> None:
    table = RuleTable(EXAMPLE)
    ruleset, _ = read_rule_file(EXAMPLE)
    expected = Engine(ruleset).decide(Request(method, path, query)).response
    got = table.answer(RequestInfo(method, path, query))
    assert got is not None
    assert (got.status, got.body) == (expected.status, expected.body)
    assert got.headers == tuple(h for h in expected.headers if h[0] != "server")


def test_everything_else_goes_to_the_app() -> None:
    table = RuleTable(EXAMPLE)
    assert table.answer(RequestInfo("GET", "/api/v2/users/42")) is None
    assert table.answer(RequestInfo("GET", "/%zz/../..")) is None  # invalid paths are the app's too


def test_origin_from_options() -> None:
    table = RuleTable(EXAMPLE, options=RedirectOptions(public_url="https://api.example.com"))
    got = table.answer(RequestInfo("GET", "/api/v1/users/1"))
    assert got is not None and dict(got.headers)["location"] == "https://api.example.com/api/v2/users/1"


def test_host_rules_use_the_trusted_proxys_host(tmp_path: Path) -> None:
    rules = tmp_path / "hosts.yaml"
    rules.write_text("rules:\n  - from: //old.example/{rest:path}\n    to: https://new.example/{rest}\n    status: 308\n")
    proxied = RuleTable(rules, options=RedirectOptions(trusted_proxies=("10.0.0.0/8",)))
    behind = RequestInfo("GET", "/a", host="internal:8000", client_ip="10.1.2.3",
                         headers=(("x-forwarded-host", "old.example"), ("x-forwarded-proto", "https")))
    got = proxied.answer(behind)
    assert got is not None and dict(got.headers)["location"] == "https://new.example/a"
    assert proxied.answer(RequestInfo("GET", "/a", host="old.example")) is not None
    untrusted = RequestInfo("GET", "/a", host="internal:8000", client_ip="192.0.2.1",
                            headers=(("x-forwarded-host", "old.example"),))
    assert proxied.answer(untrusted) is None


def test_bad_rule_file_names_its_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - from: /a\n    to: /b\n    status: 302\n")
    with pytest.raises(RuleTableError, match=r"bad.yaml: 1 error\(s\) in the rule file:\n.*bad.yaml:4: status"):
        RuleTable(bad)
    with pytest.raises(RuleTableError, match="either rules"):
        RuleTable()
    with pytest.raises(RuleTableError, match="poll_interval must be > 0"):
        RuleTable(EXAMPLE, poll_interval=0)


def test_store_changes_are_served_live(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/rules.db"
    with Store.open(url) as store:
        store.upgrade()
        store.add([Rule(source="/old", to="/new", status=308)])
    table = RuleTable(store=url, poll_interval=0.05, flush_interval=0.05)
    try:
        first = table.answer(RequestInfo("GET", "/old"))
        assert first is not None and first.status == 308
        assert table.answer(RequestInfo("GET", "/later")) is None
        with Store.open(url) as store:
            store.add([Rule(source="/later", to="/now", status=307)])
        deadline = time.monotonic() + 5
        while table.answer(RequestInfo("GET", "/later")) is None:
            assert time.monotonic() < deadline, "the new rule was never served"
            time.sleep(0.02)
        later = table.answer(RequestInfo("GET", "/later"))
        assert later is not None and later.status == 307
    finally:
        table.close()
    # hits are written to the store, as the gateway does (the app's own routes are not counted)
    with Store.open(url) as store:
        hits = {r.from_text: r.hits for r in store.stats().rules}
        assert hits["/old"] == 1 and hits["/later"] >= 2
        assert not store.stats().unmatched
