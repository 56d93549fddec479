"""Scheduled phases (issue 18, point 2): "307 until 2027-03-01, then 308", answered by the clock of
each request, shown by `rules test --at` and the resolutions API. docs/rules.md, "Scheduled phases"."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gateway_process import cli, start_serve
from redirectory.rules.engine import Engine, Request
from redirectory.rules.export import dumps, nginx
from redirectory.rules.parsing import loads, rule_from_mapping

TABLE = """
rules:
  - from: /api/v1/{rest:path}
    to: /api/v2/{rest}
    status: 307
    phases:
      - {starts: 2027-03-01T00:00:00Z, status: 308}
      - {starts: 2028-01-01T00:00:00Z, status: 308, cache: 31536000}
"""


def at(e: Engine, when: datetime | None) -> tuple[int, str | None]:
    decision = e.decide(Request("POST", "/api/v1/users"), when)
    return decision.response.status, dict(decision.response.headers).get("cache-control")


def test_each_phase_answers_from_its_start() -> None:
    ruleset, problems = loads(TABLE, "yaml", "t.yaml")
    assert not problems
    e = Engine(ruleset)
    assert at(e, datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC)) == (307, None)
    assert at(e, datetime(2027, 3, 1, tzinfo=UTC)) == (308, "max-age=3600")  # the default for a permanent one
    assert at(e, datetime(2029, 1, 1, tzinfo=UTC)) == (308, "max-age=31536000")
    assert e.matcher.windows == 1  # decisions depend on the time: the gateway caches none


def test_phases_are_checked() -> None:
    cases = [
        ([{"starts": "2027-01-01T00:00:00Z", "status": 302}], "302 must not be used"),
        ([{"starts": "2027-01-01T00:00:00Z", "status": 404}], "must be 301, 303, 307, 308"),
        ([{"status": 308}], "`starts` is required"),
        ([{"starts": "2028-01-01T00:00:00Z", "status": 308}, {"starts": "2027-01-01T00:00:00Z", "status": 301}],
         "list the phases in time order"),
        ([{"starts": "2027-01-01T00:00:00Z", "status": 308, "when": 1}], "unknown key 'when'"),
        ({"starts": "2027-01-01T00:00:00Z"}, "must be a list of phases"),
    ]
    for value, said in cases:
        rule, problems = rule_from_mapping({"from": "/a", "to": "/b", "phases": value})
        assert rule is None and problems[0].field == "phases" and said in problems[0].message, (value, problems)
    rule, problems = rule_from_mapping({"from": "/a", "to": "/b", "starts": "2027-06-01T00:00:00Z",
                                        "phases": [{"starts": "2027-01-01T00:00:00Z", "status": 308}]})
    assert rule is None and "after `starts`" in problems[0].message


@pytest.mark.parametrize("fmt", ["yaml", "json", "csv"])
def test_every_file_format_round_trips(fmt: str) -> None:
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    text = dumps(ruleset, fmt)
    again, problems = loads(text, fmt, f"t.{fmt}")
    assert not problems and again.rules[0].phases == ruleset.rules[0].phases
    if fmt == "json":
        assert text == json.dumps(ruleset.to_dict(), indent=2, ensure_ascii=False) + "\n"


def test_exports_name_what_they_leave_out() -> None:
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    assert [p.code for p in nginx(ruleset).skipped] == ["nginx.phases"]


def test_rules_test_at_shows_what_will_be_answered(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(TABLE)
    before = cli("rules", "test", "/api/v1/x", "-X", "POST", "--rules", str(rules), "--at", "2027-01-01T00:00:00Z")
    after = cli("rules", "test", "/api/v1/x", "-X", "POST", "--rules", str(rules), "--at", "2027-03-01")
    assert before.returncode == 0 and "307" in before.stdout and "308" not in before.stdout.split("HTTP/1.1")[1][:5]
    assert after.returncode == 0 and "HTTP/1.1 308" in after.stdout, after.stdout
    bad = cli("rules", "test", "/api/v1/x", "--rules", str(rules), "--at", "next week")
    assert bad.returncode == 2 and "--at" in bad.stderr and "Traceback" not in bad.stderr


def test_the_gateway_switches_at_the_phase_without_a_restart(tmp_path: Path) -> None:
    switch = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"""rules:
  - from: /soon
    to: /later
    status: 307
    phases: [{{starts: "{switch.strftime('%Y-%m-%dT%H:%M:%SZ')}", status: 308}}]
""")
    served = start_serve(tmp_path, "--rules", str(rules))
    try:
        done = cli("keys", "create", "phases", "--scope", "read", "--database", served.database)
        key = done.stdout.strip().splitlines()[-1].strip()
        with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {key}"}) as admin:
            ahead = admin.post("/api/v1/resolutions", json={"url": "/soon", "at": "2100-01-01T00:00:00Z"})
            assert ahead.status_code == 200, ahead.text
            assert ahead.json()["response"]["status"] == 308
            bad = admin.post("/api/v1/resolutions", json={"url": "/soon", "at": "tomorrow"})
            assert bad.status_code == 400 and "'at'" in bad.text
        with httpx.Client(base_url=served.base, follow_redirects=False) as client:
            first = client.get("/soon")
            if datetime.now(UTC) < switch:
                assert first.status_code == 307
            deadline = time.monotonic() + 30
            while client.get("/soon").status_code != 308 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert client.get("/soon").status_code == 308
            assert datetime.now(UTC) >= switch  # not before its time
    finally:
        served.stop()


def test_the_next_change_bounds_how_long_answers_may_be_cached() -> None:
    from dataclasses import replace

    from redirectory.rules.engine import EngineOptions

    text = """rules:
  - {from: /w, to: /x, starts: 2027-01-01T00:00:00Z, ends: 2027-02-01T00:00:00Z}
  - {from: /p, to: /q, status: 307, phases: [{starts: 2026-12-15T00:00:00Z, status: 308}]}
  - {from: /r, to: /s, status: 308, cache: ramp}
  - {from: /plain, to: /other}
"""
    ruleset, _ = loads(text, "yaml", "t.yaml")
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    rules = [replace(r, changed_at=now - timedelta(hours=30)) if r.cache == "ramp" else r for r in ruleset.rules]
    for compact in (False, True):  # the gateway keeps exact windowed rules as compact records
        matcher = Engine(rules, EngineOptions(compact=compact)).matcher
        assert matcher.windows == 3
        assert matcher.next_change(now) == datetime(2026, 12, 2, 6, tzinfo=UTC)  # the ramp's next day
        assert matcher.next_change(datetime(2026, 12, 20, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
        assert matcher.next_change(datetime(2028, 1, 1, tzinfo=UTC)) is None  # the ramp capped, all past
