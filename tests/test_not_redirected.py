"""Rules that redirect nothing (`status: 404`): their requests are answered as if no rule matched
(the gateway's 404; the toolkit passes them to the application), whatever rule of lower
precedence would redirect them. docs/rules.md, "Rules that redirect nothing"."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway_process import ServeProcess, cli, start_serve
from redirectory.rules.engine import Engine, Request
from redirectory.rules.export import nginx
from redirectory.rules.export_apache import apache
from redirectory.rules.importers import load_nginx
from redirectory.rules.parsing import loads, rule_from_mapping
from redirectory.rules.validation import validate
from redirectory.toolkit import RequestInfo, RuleTable

TABLE = """
rules:
  - from: /api/v1/{rest:path}
    to: /api/v2/{rest}
    status: 308
  - from: /api/v1/health
    status: 404
    note: the old health check stays where it is
  - from_regex: ^/(?P<p>.+)/$
    to: /{p}
  - from_regex: ^/static/
    status: 404
    priority: 1
  - from: /to-health
    to: /api/v1/health
    status: 308
"""


def engine() -> Engine:
    ruleset, problems = loads(TABLE, "yaml", "t.yaml")
    assert not [p for p in problems + validate(ruleset, "t.yaml") if p.is_error]
    return Engine(ruleset)


def answer(e: Engine, path: str) -> tuple[int, str | None]:
    decision = e.decide(Request("GET", path))
    return decision.response.status, decision.location


def test_an_exclusion_beats_what_would_redirect_its_paths() -> None:
    e = engine()
    assert answer(e, "/api/v1/users") == (308, "/api/v2/users")
    assert answer(e, "/api/v1/health") == (404, None)
    assert answer(e, "/docs/") == (301, "/docs")
    assert answer(e, "/static/app.js/") == (404, None)  # the regex of higher priority
    decision = e.decide(Request("GET", "/api/v1/health"))
    assert decision.outcome == "no-rule" and decision.rule is not None and decision.rule.status == 404
    assert json.loads(decision.response.body)["type"].endswith(":notFound")  # the unmatched answer
    verdicts = [c.verdict for c in e.explain(Request("GET", "/api/v1/health")).considered]
    assert verdicts == ["chosen", "not reached: a rule of higher precedence matched"]


def test_fields_and_validation() -> None:
    rule, problems = rule_from_mapping({"from": "/a", "status": 404})
    assert rule is not None and rule.to == "" and not problems
    rule, problems = rule_from_mapping({"from": "/a", "status": 404, "to": "/b"})
    assert rule is None and problems[0].field == "to" and "leave `to` out" in problems[0].message
    rule, problems = rule_from_mapping({"from": "/a", "status": 410})
    assert rule is None and any("not a rule status" in p.message and "guide" in p.message for p in problems)
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    # a redirect to an excluded path ends there: no chain, no loop
    assert not [p for p in validate(ruleset, "t.yaml") if p.code in ("chain", "loop")]
    dup, _ = loads("rules:\n  - {from: /a, status: 404}\n  - {from: /a, status: 404}\n", "yaml", "d.yaml")
    assert [p.code for p in validate(dup, "d.yaml") if p.is_error] == ["duplicate"]


@pytest.mark.parametrize("fmt", ["yaml", "json", "csv"])
def test_every_file_format_round_trips(fmt: str) -> None:
    from redirectory.rules.export import dumps

    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    again, problems = loads(dumps(ruleset, fmt), fmt, f"t.{fmt}")
    assert not problems and [r.status for r in again.rules] == [r.status for r in ruleset.rules]


def test_exports_name_what_they_leave_out() -> None:
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    assert sorted(p.code for p in nginx(ruleset).skipped) == ["nginx.not_redirected"] * 2
    assert sorted(p.code for p in apache(ruleset).skipped) == ["apache.not_redirected"] * 2


def test_the_toolkit_passes_an_excluded_path_to_the_application(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(TABLE)
    table = RuleTable(rules)
    assert table.answer(RequestInfo("GET", "/api/v1/health")) is None  # the app answers
    redirected = table.answer(RequestInfo("GET", "/api/v1/users"))
    assert redirected is not None and redirected.status == 308


def test_nginx_content_locations_keep_their_paths_from_later_redirects() -> None:
    # nginx: `^~ /dist` and the longer prefix `/static` answer before `location /`'s rewrite
    text = """server { server_name a.example;
        location / { rewrite ^/(.*)/$ /$1 permanent; proxy_pass http://app; }
        location ^~ /dist { rewrite ^/dist/staging/(.*)$ /dist/$1 permanent; root /srv; }
        location /static { root /srv; }
        location = /exact/ { root /srv; }
    }"""
    ruleset, problems = load_nginx(text, "n.conf")
    assert not [p for p in problems if p.is_error]
    e = Engine(ruleset)

    def at(path: str) -> tuple[int, str | None]:
        decision = e.decide(Request("GET", path, host="a.example"))
        return decision.response.status, decision.location

    assert at("/a/") == (301, "/a")
    assert at("/dist/") == (404, None) and at("/dist/staging/x") == (301, "/dist/x")
    assert at("/static/") == (404, None) and at("/staticfiles/") == (404, None)  # a prefix, as nginx's
    assert at("/exact/") == (404, None)


# -- the real gateway and admin API ---------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("not-redirected")
    rules = tmp / "rules.yaml"
    rules.write_text(TABLE)
    proc = start_serve(tmp, "--rules", str(rules))
    yield proc
    proc.stop()


def test_the_gateway_and_the_admin_api(served: ServeProcess) -> None:
    with httpx.Client(base_url=served.base, follow_redirects=False) as client:
        assert client.get("/api/v1/users").status_code == 308
        excluded = client.get("/api/v1/health")
        assert excluded.status_code == 404 and excluded.headers["content-type"] == "application/json"
        assert "location" not in excluded.headers
    done = cli("keys", "create", "not-redirected", "--scope", "admin", "--database", served.database)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1].strip()
    with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {key}"}) as admin:
        made = admin.post("/api/v1/rules", json={"from": "/api/v1/status", "status": 404})
        assert made.status_code == 201, made.text
        assert made.json()["status"] == 404 and made.json()["to"] == ""
        bad = admin.post("/api/v1/rules", json={"from": "/api/v1/other", "status": 404, "to": "/x"})
        assert bad.status_code == 400 and "leave `to` out" in bad.text
    with httpx.Client(base_url=served.base, follow_redirects=False) as client:
        deadline = time.monotonic() + 20
        while client.get("/api/v1/status").status_code != 404 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/api/v1/status").status_code == 404
