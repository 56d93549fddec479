"""Scheme conditions (`scheme: http|https`): a rule that answers requests of one scheme only, such
as the redirect from http to https on the host it sends to (docs/rules.md, "Scheme conditions")."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.test import Client

from gateway_process import ServeProcess, cli, start_serve
from redirectory.rules.engine import Engine, Request
from redirectory.rules.export import dumps, nginx
from redirectory.rules.importers import load_nginx
from redirectory.rules.parsing import loads
from redirectory.rules.resolution import resolve
from redirectory.rules.validation import validate
from redirectory.toolkit import asgi as tk_asgi
from redirectory.toolkit import wsgi as tk_wsgi

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TABLE = """
rules:
  - from: //api.example.com/{rest:path}
    to: https://api.example.com/{rest}
    scheme: http
    status: 308
  - from: /docs
    to: /documentation
    scheme: HTTPS
  - from: /docs
    to: https://www.example.com/docs
    scheme: http
"""


def engine(text: str = TABLE) -> Engine:
    ruleset, problems = loads(text, "yaml", "t.yaml")
    assert not [p for p in problems + validate(ruleset, "t.yaml") if p.is_error], problems
    return Engine(ruleset)


def answer(e: Engine, path: str, **request: Any) -> tuple[int, str | None]:
    decision = e.decide(Request("GET", path, **request))
    return decision.response.status, decision.location


def test_a_rule_answers_its_scheme_only() -> None:
    e = engine()
    # the gateway's own listener is http; an https origin (public URL, trusted proxy) is https
    assert answer(e, "/v1/a", host="api.example.com") == (308, "https://api.example.com/v1/a")
    assert answer(e, "/v1/a", host="api.example.com", scheme="https")[0] == 404
    assert answer(e, "/v1/a", host="api.example.com", origin="https://api.example.com")[0] == 404
    assert answer(e, "/v1/a", host="api.example.com", origin="http://api.example.com", scheme="https")[0] == 404
    assert answer(e, "/docs", scheme="https") == (301, "/documentation")
    assert answer(e, "/docs") == (301, "https://www.example.com/docs")


def test_parsing_keeps_it_lower_case_and_errors_name_the_field() -> None:
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    assert [r.scheme for r in ruleset.rules] == ["http", "https", "http"]
    _ruleset, problems = loads("rules:\n  - {from: /a, to: /b, scheme: ftp}\n", "yaml", "e.yaml")
    assert [(p.field, p.line) for p in problems if p.is_error] == [("scheme", 2)]
    assert "http or https" in problems[0].message and "ftp" in problems[0].message


def test_validation_knows_the_scheme() -> None:
    def errors(text: str) -> list[str]:
        ruleset, problems = loads(text, "yaml", "v.yaml")
        assert not problems, problems
        return [p.code for p in validate(ruleset, "v.yaml") if p.is_error]

    upgrade = "rules:\n  - {from: '//a.example/{rest:path}', to: 'https://a.example/{rest}'%s}\n"
    assert errors(upgrade % "") == ["loop"]  # without the condition https requests loop
    assert errors(upgrade % ", scheme: http") == []
    assert errors(upgrade % ", scheme: https") == ["loop"]
    assert errors("rules:\n  - {from: /a, to: /a, scheme: http}\n") == ["loop"]  # a path keeps the scheme
    # one rule per scheme for one path: neither duplicates nor ambiguous
    assert errors("rules:\n  - {from: /a, to: /b, scheme: http}\n  - {from: /a, to: /c, scheme: https}\n") == []
    assert errors("rules:\n  - {from: /a, to: /b, scheme: http}\n  - {from: /a, to: /c, scheme: http}\n") == [
        "duplicate"]
    # across rules: /x (http only) -> https://a.example/y, and /y -> http://a.example/x
    across = ("rules:\n  - {from: '//a.example/x', to: 'https://a.example/y', scheme: http}\n"
              "  - {from: '//a.example/y', to: 'http://a.example/x'}\n")
    assert errors(across) == ["loop"]
    assert errors(across.replace("to: 'http://a.example/x'", "to: 'https://a.example/x'")) == []


def test_rules_test_takes_the_scheme_from_the_url_and_says_why_a_rule_was_skipped() -> None:
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    found = resolve(ruleset, "https://api.example.com/v1/a")
    assert found.explanation.decision.response.status == 404
    assert any("the rule answers http only" in c.verdict for c in found.explanation.considered)
    assert resolve(ruleset, "http://api.example.com/v1/a").explanation.decision.location == \
        "https://api.example.com/v1/a"
    shown = cli("rules", "test", "https://api.example.com/v1/a", "--rules", str(_written(TABLE)))
    assert "answers http only" in shown.stdout + shown.stderr, shown.stdout + shown.stderr


def _written(text: str) -> Path:
    import tempfile
    path = Path(tempfile.mkdtemp()) / "rules.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("fmt", ["yaml", "json", "csv"])
def test_every_file_format_round_trips(fmt: str) -> None:
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    again, problems = loads(dumps(ruleset, fmt), fmt, f"t.{fmt}")
    assert not problems and [r.scheme for r in again.rules] == ["http", "https", "http"]


def test_the_nginx_export_names_the_rules_it_leaves_out() -> None:
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    skipped = [p for p in nginx(ruleset).skipped if p.code == "nginx.scheme"]
    assert len(skipped) == 3 and skipped[0].field == "scheme"


def test_the_nginx_import_of_a_plain_http_server_sending_to_https_on_its_host() -> None:
    text = ("server { listen 80; server_name a.example;\n"
            "  location / { return 301 https://a.example/landing; }\n}\n")
    ruleset, problems = load_nginx(text, "site.conf")
    assert not [p for p in problems if p.code == "loop" or "loop" in p.message], problems
    assert [(r.source, r.scheme) for r in ruleset.rules] == [("//a.example/{rest:path}", "http")]
    e = Engine(ruleset)
    assert answer(e, "/landing", host="a.example") == (301, "https://a.example/landing")
    assert answer(e, "/landing", host="a.example", scheme="https")[0] == 404


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_the_toolkit_reads_the_scheme_the_server_received(kind: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {from: /a, to: 'https://a.example/a', scheme: http}\n")

    async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"app"]

    if kind == "asgi":
        for base, status in (("http://a.example", 301), ("https://a.example", 200)):
            client: Any = TestClient(tk_asgi.RedirectMiddleware(asgi_app, rules), base_url=base,
                                     follow_redirects=False)
            assert client.get("/a").status_code == status, base
    else:
        client = Client(tk_wsgi.RedirectMiddleware(wsgi_app, str(rules)))
        assert client.get("/a", base_url="http://a.example").status_code == 301
        assert client.get("/a", base_url="https://a.example").status_code == 200


# -- the real gateway --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("scheme")
    rules = tmp / "rules.yaml"
    rules.write_text(TABLE)
    proc = start_serve(tmp, "--rules", str(rules), "--forwarded-allow-ips", "127.0.0.1")
    yield proc
    proc.stop()


def test_the_gateway_answers_by_the_scheme_a_trusted_proxy_names(served: ServeProcess) -> None:
    host = {"host": "api.example.com"}
    with httpx.Client(base_url=served.base, follow_redirects=False) as client:
        for _ in range(2):  # the second time from the answer cache, which keys on the scheme
            assert client.get("/v1/a", headers=host).headers["location"] == "https://api.example.com/v1/a"
            assert client.get("/v1/a", headers={**host, "x-forwarded-proto": "https"}).status_code == 404
            assert client.get("/v1/a", headers={**host, "x-forwarded-proto": "http"}).status_code == 308
            assert client.get("/docs", headers={"x-forwarded-proto": "https"}).headers["location"] == "/documentation"
            assert client.get("/docs").headers["location"] == "https://www.example.com/docs"


def test_the_admin_api_takes_and_shows_it(served: ServeProcess) -> None:
    done = cli("keys", "create", "scheme", "--scope", "admin", "--database", served.database)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1].strip()
    with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {key}"}) as admin:
        made = admin.post("/api/v1/rules", json={"from": "/pay", "to": "https://pay.example.com/", "status": 308,
                                                 "scheme": "http"})
        assert made.status_code == 201, made.text
        assert made.json()["scheme"] == "http"
        bad = admin.post("/api/v1/rules", json={"from": "/x", "to": "/y", "scheme": "gopher"})
        assert bad.status_code == 400 and "scheme" in bad.text, bad.text
    with httpx.Client(base_url=served.base, follow_redirects=False) as client:
        deadline = time.monotonic() + 20  # the gateway syncs with the store within a second or so
        while client.get("/pay").status_code != 308 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/pay").status_code == 308
        assert client.get("/pay", headers={"x-forwarded-proto": "https"}).status_code == 404


# -- `https://{host}/...`: the request's own host ------------------------------------------------
UPGRADE = """
rules:
  - from: /{rest:path}
    to: https://{host}/{rest}
    scheme: http
    status: 308
"""


def test_a_target_on_the_request_s_own_host() -> None:
    e = engine(UPGRADE)
    assert answer(e, "/a/b", host="Shop.Example.com:8080", query="x=1") == (308, "https://shop.example.com/a/b?x=1")
    assert answer(e, "/a", host="shop.example.com", scheme="https")[0] == 404  # no loop over https
    for bad in (None, "", "bad host", "a@b.example", "[::1"):
        assert answer(e, "/a", host=bad)[0] == 404, bad  # only a valid host name is sent back


def test_own_host_targets_are_checked_like_the_others() -> None:
    ruleset, problems = loads(UPGRADE.replace("    scheme: http\n", ""), "yaml", "u.yaml")
    assert not problems and [p.code for p in validate(ruleset, "u.yaml") if p.is_error] == ["loop"]
    bad, problems = loads("rules:\n  - {from: /a, to: 'https://{host}.example/a'}\n", "yaml", "u.yaml")
    problems = [p for p in problems + validate(bad, "u.yaml") if p.is_error]
    assert [p.field for p in problems] == ["to"] and "{host}" in problems[0].message, problems
    ruleset, _ = loads(UPGRADE, "yaml", "u.yaml")
    assert [p.code for p in nginx(ruleset).skipped] == ["nginx.own_host"]


def test_imports_of_the_http_to_https_step_on_any_host() -> None:
    text = "server {\n  listen 80 default_server;\n  server_name _;\n  return 301 https://$host$request_uri;\n}\n"
    ruleset, _problems = load_nginx(text, "default.conf")
    assert [(r.source, r.to, r.scheme) for r in ruleset.rules] == [("/{rest:path}", "https://{host}/{rest}", "http")]
    assert answer(Engine(ruleset), "/x", host="a.example") == (301, "https://a.example/x")


@pytest.fixture(scope="module")
def upgrading(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("own-host")
    rules = tmp / "rules.yaml"
    rules.write_text(UPGRADE)
    proc = start_serve(tmp, "--rules", str(rules), "--forwarded-allow-ips", "127.0.0.1")
    yield proc
    proc.stop()


def test_the_gateway_sends_each_host_back_to_itself(upgrading: ServeProcess) -> None:
    with httpx.Client(base_url=upgrading.base, follow_redirects=False) as client:
        for _ in range(2):  # the second time from the answer cache, which keys on the host
            for host in ("a.example", "b.example"):
                moved = client.get("/p?q=1", headers={"host": host})
                assert moved.status_code == 308 and moved.headers["location"] == f"https://{host}/p?q=1"
            assert client.get("/p", headers={"host": "a.example", "x-forwarded-proto": "https"}).status_code == 404
