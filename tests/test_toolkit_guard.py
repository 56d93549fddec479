"""The 302 guard as ASGI (Starlette) and WSGI (Flask, Django) middleware, in every mode."""

from __future__ import annotations

import json
import logging
import warnings

import django
import pytest
from django.conf import settings

if not settings.configured:
    settings.configure(DEBUG=False, USE_TZ=True, DEFAULT_CHARSET="utf-8")
    django.setup()

import flask  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import RedirectResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402
from werkzeug.test import Client  # noqa: E402

from redirectory.toolkit import Guard, GuardMode, RedirectGuardError  # noqa: E402
from redirectory.toolkit import asgi as tk_asgi  # noqa: E402
from redirectory.toolkit import wsgi as tk_wsgi  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402


def starlette_app() -> Starlette:
    async def found(request: Request) -> Response:
        return RedirectResponse("/target", status_code=302)

    async def no_location(request: Request) -> Response:
        return Response(status_code=301)

    async def see_other_body(request: Request) -> Response:
        return Response(b"<p>see other</p>", status_code=303, headers={"location": "/r"}, media_type="text/html")

    async def not_modified_body(request: Request) -> Response:
        return Response(b"stale", status_code=304, headers={"etag": '"a"', "content-type": "text/plain",
                                                            "content-encoding": "gzip"})

    async def fine(request: Request) -> Response:
        return Response(b"ok", media_type="text/plain")

    methods = ["GET", "HEAD", "POST", "DELETE"]
    return Starlette(routes=[Route("/found", found, methods=methods), Route("/nolocation", no_location),
                             Route("/303", see_other_body, methods=methods), Route("/304", not_modified_body),
                             Route("/fine", fine)])


def flask_app() -> flask.Flask:
    app = flask.Flask("guarded")

    @app.route("/found", methods=["GET", "HEAD", "POST", "DELETE"])
    def found() -> object:
        return flask.redirect("/target")  # 302 with an HTML body in Flask 3.1

    @app.route("/nolocation")
    def no_location() -> object:
        return flask.Response(status=307)

    @app.route("/303", methods=["GET", "POST"])
    def see_other_body() -> object:
        return flask.Response("<p>see other</p>", status=303, headers={"Location": "/r"})

    @app.route("/304")
    def not_modified_body() -> object:
        return flask.Response(b"stale", status=304, headers={"ETag": '"a"', "Content-Encoding": "gzip"})

    @app.route("/fine")
    def fine() -> object:
        return "ok"

    return app


def asgi_client(mode: str, debug: bool = False) -> tuple[TestClient, Guard]:
    guard = Guard(mode, debug)
    return TestClient(tk_asgi.GuardMiddleware(starlette_app(), guard=guard), follow_redirects=False,
                      raise_server_exceptions=True), guard


def wsgi_client(mode: str, debug: bool = False) -> tuple[Client, Guard]:
    guard = Guard(mode, debug)
    return Client(tk_wsgi.GuardMiddleware(flask_app().wsgi_app, guard=guard)), guard


CLIENTS = {"asgi": asgi_client, "wsgi": wsgi_client}


@pytest.mark.parametrize("kind", sorted(CLIENTS))
def test_rewrite_mode(kind: str) -> None:
    client, guard = CLIENTS[kind]("rewrite")
    r = client.get("/found")
    assert r.status_code == 307 and r.headers["location"].endswith("/target")
    r = client.head("/found")
    assert r.status_code == 307
    r = client.post("/found")
    assert r.status_code == 303 and r.headers["location"].endswith("/target")
    assert r.headers["content-length"] == "0" and "content-type" not in r.headers
    data = r.content if kind == "asgi" else r.get_data()
    assert data == b""
    r = client.delete("/found")
    assert r.status_code == 303
    assert guard.counts["302"] == 4
    r = client.get("/fine")
    assert r.status_code == 200 and (r.content if kind == "asgi" else r.get_data()) == b"ok"


@pytest.mark.parametrize("kind", sorted(CLIENTS))
def test_fixes_303_and_304(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    client, guard = CLIENTS[kind]("rewrite")
    with caplog.at_level(logging.WARNING, "redirectory.toolkit.guard"):
        r = client.post("/303")
        assert r.status_code == 303 and (r.content if kind == "asgi" else r.get_data()) == b""
        assert r.headers["content-length"] == "0" and "content-type" not in r.headers
        r = client.get("/304")
        assert r.status_code == 304 and (r.content if kind == "asgi" else r.get_data()) == b""
        assert "content-encoding" not in r.headers and "content-type" not in r.headers
        assert r.headers["etag"] == '"a"'
    # Werkzeug already strips entity headers from a 304; the guard fixes the rest (see below)
    assert guard.counts["303-with-body"] == 1 and guard.counts["304-content-headers"] == (kind == "asgi")
    assert "303 response with a body (dropped)" in caplog.text


def test_wsgi_304_with_content_headers_and_body() -> None:
    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        start_response("304 Not Modified", [("ETag", '"a"'), ("Content-Type", "text/plain"),  # type: ignore[operator]
                                            ("Content-Length", "5")])
        return [b"stale"]

    guard = Guard("rewrite")
    r = Client(tk_wsgi.GuardMiddleware(app, guard=guard)).get("/")
    assert r.status_code == 304 and r.get_data() == b""
    assert set(r.headers.keys()) == {"ETag"}
    assert guard.counts["304-content-headers"] == 1 and guard.counts["304-with-body"] == 1


@pytest.mark.parametrize("kind", sorted(CLIENTS))
def test_refuse_mode_in_production_answers_500(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    client, guard = CLIENTS[kind]("refuse")
    with caplog.at_level(logging.ERROR, "redirectory.toolkit.guard"):
        r = client.get("/found")
        assert r.status_code == 500
        body = r.content if kind == "asgi" else r.get_data()
        problem = json.loads(body)
        del problem["instance"], problem["timestamp"]  # a random id and the time: may hold the digits 302
        assert problem["errors"][0]["status"] == 500 and "302" not in json.dumps(problem)  # no details for the client
        r = client.get("/nolocation")
        assert r.status_code == 500
    assert "302 must not be used" in caplog.text and "without Location" in caplog.text
    assert guard.counts["302"] == 1 and guard.counts["3xx-without-location"] == 1


@pytest.mark.parametrize("kind", sorted(CLIENTS))
def test_refuse_mode_in_debug_raises(kind: str) -> None:
    client, _ = CLIENTS[kind]("refuse", debug=True)
    with pytest.raises(RedirectGuardError, match="GET /found: 302 for GET: 302 must not be used"):
        client.get("/found")


@pytest.mark.parametrize("kind", sorted(CLIENTS))
def test_report_mode_changes_nothing(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    client, guard = CLIENTS[kind]("report")
    with caplog.at_level(logging.WARNING, "redirectory.toolkit.guard"):
        assert client.get("/found").status_code == 302
        r = client.post("/303")
        assert r.status_code == 303 and (r.content if kind == "asgi" else r.get_data()) == b"<p>see other</p>"
        assert client.get("/nolocation").status_code in (301, 307)
    assert guard.counts["302"] == 1 and guard.counts["303-with-body"] == 1
    assert guard.counts["3xx-without-location"] == 1
    assert "302 for GET" in caplog.text


@pytest.mark.parametrize("kind", sorted(CLIENTS))
def test_findings_are_prometheus_metrics(kind: str) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    guard = Guard("report", False, registry=registry)
    app = starlette_app() if kind == "asgi" else flask_app().wsgi_app
    if kind == "asgi":
        client = TestClient(tk_asgi.GuardMiddleware(app, guard=guard), follow_redirects=False)
    else:
        client = Client(tk_wsgi.GuardMiddleware(app, guard=guard))
    client.get("/found")
    client.get("/found")
    client.post("/303")
    value = registry.get_sample_value
    assert value("redirectory_guard_findings_total", {"finding": "302", "mode": "report"}) == 2
    assert value("redirectory_guard_findings_total", {"finding": "303-with-body", "mode": "report"}) == 1
    assert b"redirectory_guard_findings_total" in generate_latest(registry)
    # A second guard on the same registry adds to the same counter (no duplicate registration).
    Guard("rewrite", False, registry=registry).record("GET", "/x", guard.check("GET", 302, []).findings, False)
    assert value("redirectory_guard_findings_total", {"finding": "302", "mode": "rewrite"}) == 1


def test_django_redirect_is_rewritten_under_wsgi() -> None:
    from django.core.handlers.wsgi import WSGIHandler
    from django.http import HttpResponseRedirect

    def view(request: object) -> HttpResponse:
        return HttpResponseRedirect("/target")  # what django.shortcuts.redirect() returns

    handler = WSGIHandler()
    handler.get_response = lambda request: view(request)  # type: ignore[method-assign]
    client = Client(tk_wsgi.GuardMiddleware(handler, mode="rewrite"))
    assert client.post("/login").status_code == 303
    assert client.get("/login").status_code == 307


def test_unknown_mode_is_named() -> None:
    with pytest.raises(ValueError, match="unknown guard mode 'strict': use one of refuse, rewrite, report"):
        Guard("strict")
    assert Guard(GuardMode.REPORT).mode is GuardMode.REPORT


def test_debug_defaults_to_on_under_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Guard("refuse").debug is True  # pytest sets PYTEST_CURRENT_TEST
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    assert Guard("refuse").debug is False
    monkeypatch.setenv("REDIRECTORY_DEBUG", "1")
    assert Guard("refuse").debug is True
