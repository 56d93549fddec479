"""An endpoint's lifecycle (issue 18, point 1): `deprecation`, `sunset` and `links` on a rule, sent as
RFC 9745 `Deprecation`, RFC 8594 `Sunset` and RFC 8288 `Link` headers by the gateway on the rule's
answers, and by the toolkit on the application's own responses for a rule that redirects nothing.
docs/rules.md, "Deprecation and sunset"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from werkzeug.test import Client

from gateway_process import ServeProcess, start_serve
from redirectory.rules.engine import Engine, Request
from redirectory.rules.export import dumps, nginx
from redirectory.rules.parsing import loads, rule_from_mapping
from redirectory.rules.validation import validate
from redirectory.toolkit import asgi as tk_asgi
from redirectory.toolkit import wsgi as tk_wsgi

TABLE = """
rules:
  - from: /api/v1/users/{rest:path}
    to: /api/v2/users/{rest}
    status: 308
    deprecation: 2026-06-01T00:00:00Z
    sunset: 2027-01-01T00:00:00Z
    links:
      successor-version: /api/v2/users
      deprecation: https://docs.example.com/v1-users
  - from: /api/v1/orders/{rest:path}       # v1 orders are still served by the app: announce the end
    status: 404
    sunset: 2027-03-01T00:00:00Z
    links: {successor-version: /api/v2/orders}
  - from: /plain
    to: /elsewhere
"""

V1_USERS = (("deprecation", "@1780272000"), ("sunset", "Fri, 01 Jan 2027 00:00:00 GMT"),
            ("link", '<https://docs.example.com/v1-users>; rel="deprecation", </api/v2/users>; rel="successor-version"'))
V1_ORDERS = (("sunset", "Mon, 01 Mar 2027 00:00:00 GMT"), ("link", '</api/v2/orders>; rel="successor-version"'))


def ruleset() -> Any:
    rules, problems = loads(TABLE, "yaml", "t.yaml")
    assert not problems and not [p for p in validate(rules, "t.yaml") if p.is_error]
    return rules


def test_the_engine_sends_the_headers_exactly() -> None:
    e = Engine(ruleset())
    redirect = e.decide(Request("GET", "/api/v1/users/7"))
    assert redirect.response.status == 308
    assert tuple(h for h in redirect.response.headers if h[0] in ("deprecation", "sunset", "link")) == V1_USERS
    kept = e.decide(Request("GET", "/api/v1/orders/9"))
    assert kept.response.status == 404
    assert tuple(h for h in kept.response.headers if h[0] in ("deprecation", "sunset", "link")) == V1_ORDERS
    assert kept.response.headers[-1] == ("server", "redirectory")
    plain = e.decide(Request("GET", "/plain"))
    assert not [h for h in plain.response.headers if h[0] in ("deprecation", "sunset", "link")]


def test_dates_and_links_are_checked() -> None:
    cases = [
        ({"sunset": "2026-01-01T00:00:00Z", "deprecation": "2026-06-01T00:00:00Z"}, "sunset", "must not come before"),
        ({"links": {"Successor": "/x"}}, "links", "not a relation type"),
        ({"links": {"successor-version": "/x> ; rel=evil"}}, "links", "absolute http(s) URL or an absolute path"),
        ({"links": {"successor-version": "javascript:alert(1)"}}, "links", "absolute http(s) URL"),
        ({"links": ["/x"]}, "links", "mapping of relation to URL"),
        ({"deprecation": "soon"}, "deprecation", ""),
    ]
    for extra, fld, said in cases:
        rule, problems = rule_from_mapping({"from": "/a", "to": "/b", **extra})
        assert rule is None and problems[0].field == fld and said in problems[0].message, (extra, problems)


@pytest.mark.parametrize("fmt", ["yaml", "json", "csv"])
def test_every_file_format_round_trips(fmt: str) -> None:
    rules = ruleset()
    text = dumps(rules, fmt)
    again, problems = loads(text, fmt, f"t.{fmt}")
    assert not problems
    assert [(r.deprecation, r.sunset, r.links) for r in again.rules] == [
        (r.deprecation, r.sunset, r.links) for r in rules.rules]
    if fmt == "json":
        assert text == json.dumps(rules.to_dict(), indent=2, ensure_ascii=False) + "\n"


def test_the_nginx_export_names_what_it_leaves_out() -> None:
    skipped = nginx(ruleset()).skipped
    assert [p.code for p in skipped] == ["nginx.lifecycle", "nginx.not_redirected"]
    assert "without its Deprecation, Sunset and Link headers" in skipped[0].message


def _app_asgi() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"link", b"</own>; rel=\"self\"")]
                    if scope["path"] == "/api/v1/orders/own" else [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"served by the app"})
    return app


def _app_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"served by the app"]


def test_the_toolkit_adds_them_to_the_applications_own_responses(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(TABLE)
    asgi = TestClient(tk_asgi.RedirectMiddleware(_app_asgi(), rules), follow_redirects=False)
    served = asgi.get("/api/v1/orders/9")
    assert served.status_code == 200 and served.text == "served by the app"
    assert served.headers["sunset"] == "Mon, 01 Mar 2027 00:00:00 GMT"
    assert served.headers["link"] == '</api/v2/orders>; rel="successor-version"'
    own = asgi.get("/api/v1/orders/own")  # a header the app sets itself is left alone
    assert own.headers["link"] == '</own>; rel="self"' and own.headers["sunset"]
    assert "sunset" not in asgi.get("/other").headers
    moved = asgi.get("/api/v1/users/7")
    assert moved.status_code == 308 and moved.headers["deprecation"] == "@1780272000"
    wsgi = Client(tk_wsgi.RedirectMiddleware(_app_wsgi, str(rules)))
    answer = wsgi.get("/api/v1/orders/9")
    assert answer.status_code == 200 and answer.headers["Sunset"] == "Mon, 01 Mar 2027 00:00:00 GMT"
    assert "Sunset" not in wsgi.get("/other").headers


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("lifecycle")
    rules = tmp / "rules.yaml"
    rules.write_text(TABLE)
    proc = start_serve(tmp, "--rules", str(rules))
    yield proc
    proc.stop()


def test_the_gateway_sends_them(served: ServeProcess) -> None:
    with httpx.Client(base_url=served.base, follow_redirects=False) as client:
        moved = client.get("/api/v1/users/7")
        assert moved.status_code == 308
        assert [(k, moved.headers[k]) for k in ("deprecation", "sunset", "link")] == list(V1_USERS)
        kept = client.get("/api/v1/orders/1")
        assert kept.status_code == 404 and kept.headers["sunset"] == "Mon, 01 Mar 2027 00:00:00 GMT"


def test_a_lifecycle_section_lists_entries_that_redirect_nothing() -> None:
    text = """rules:
  - {from: /api/v1/users, to: /api/v2/users, status: 308}
lifecycle:
  - from: /api/v1/orders/{rest:path}
    sunset: 2027-03-01T00:00:00Z
    links: {successor-version: /api/v2/orders}
"""
    rules, problems = loads(text, "yaml", "l.yaml")
    assert not problems and [(r.source, r.status) for r in rules.rules] == [
        ("/api/v1/users", 308), ("/api/v1/orders/{rest:path}", 404)]
    as_json = json.dumps({"lifecycle": [{"from": "/v1/{rest:path}", "sunset": "2027-03-01T00:00:00Z"}]})
    only, problems = loads(as_json, "json", "l.json")
    assert not problems and [r.status for r in only.rules] == [404]
    _rules, problems = loads("lifecycle:\n  - {from: /x, to: /y}\n", "yaml", "bad.yaml")
    assert [(p.line, p.field, p.code) for p in problems] == [(2, "to", "lifecycle.redirect")]
