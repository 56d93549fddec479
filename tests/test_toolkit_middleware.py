"""The ASGI and WSGI middlewares in process: conditional requests and the rule table.
Both kinds get the same raw app (no framework) and must answer the same."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from redirectory.toolkit import asgi as tk_asgi
from redirectory.toolkit import wsgi as tk_wsgi

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

RULES = Path(__file__).parent.parent / "examples" / "redirects.yaml"
BODY = [b'{"items":', b"[1,2,3]", b"}"]
ROUTES: dict[str, tuple[int, list[tuple[str, str]], list[bytes]]] = {
    "/plain": (200, [("content-type", "application/json")], BODY),
    "/big": (200, [("content-type", "application/octet-stream")], [b"x" * 600, b"y" * 600]),
    "/nostore": (200, [("cache-control", "no-store")], BODY),
    "/tagged": (200, [("etag", '"t1"'), ("cache-control", "max-age=60"), ("vary", "Accept"),
                      ("set-cookie", "s=1"), ("content-type", "application/json"), ("x-custom", "1")], BODY),
    "/missing": (404, [("content-type", "application/json")], [b"{}"]),
}


class Calls:
    count = 0


def raw_asgi(calls: type[Calls]) -> Callable[..., Any]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.count += 1
        status, headers, chunks = ROUTES.get(scope["path"], ROUTES["/missing"])
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in headers]})
        for i, chunk in enumerate(chunks):
            body = b"" if scope["method"] == "HEAD" else chunk
            await send({"type": "http.response.body", "body": body, "more_body": i < len(chunks) - 1})
    return app


def raw_wsgi(calls: type[Calls]) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        calls.count += 1
        status, headers, chunks = ROUTES.get(environ["PATH_INFO"], ROUTES["/missing"])
        start_response(f"{status} X", list(headers))  # a generator: called on the first iteration
        for chunk in chunks:
            yield b"" if environ["REQUEST_METHOD"] == "HEAD" else chunk
    return app


class Kind:
    def __init__(self, kind: str, **options: Any):
        self.calls = type("C", (Calls,), {})
        if kind == "asgi":
            app = tk_asgi.ConditionalMiddleware(raw_asgi(self.calls), max_buffer=1000, **options)
            self.client: Any = TestClient(app)
        else:
            app = tk_wsgi.ConditionalMiddleware(raw_wsgi(self.calls), max_buffer=1000, **options)
            self.client = Client(app)
        self.kind = kind

    def request(self, method: str, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        if self.kind == "asgi":
            r = self.client.request(method, path, headers=sent)
        else:
            r = self.client.open(path, method=method, headers=sent)
        body = r.content if self.kind == "asgi" else r.get_data()
        return r.status_code, {k.lower(): v for k, v in r.headers.items()}, body


@pytest.fixture(params=["asgi", "wsgi"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_etag_from_a_streamed_body_and_304(kind: str) -> None:
    k = Kind(kind)
    status, headers, body = k.request("GET", "/plain")
    assert (status, body) == (200, b"".join(BODY))
    etag = headers["etag"]
    assert etag.startswith('"') and len(etag) == 34
    status, headers, body = k.request("GET", "/plain", If_None_Match=etag)
    assert (status, body, headers["etag"]) == (304, b"", etag)
    assert "content-type" not in headers and "content-length" not in headers
    assert k.request("GET", "/plain", If_None_Match='"other"')[0] == 200
    assert k.request("GET", "/plain", If_Match='"other"')[0] == 412


def test_weak_etags_option(kind: str) -> None:
    status, headers, _ = Kind(kind, weak_etags=True).request("GET", "/plain")
    assert headers["etag"].startswith('W/"')


def test_no_etag_when_too_big_no_store_or_not_get(kind: str) -> None:
    k = Kind(kind)
    status, headers, body = k.request("GET", "/big")
    assert status == 200 and "etag" not in headers and body == b"x" * 600 + b"y" * 600
    status, headers, _ = k.request("GET", "/nostore")
    assert status == 200 and "etag" not in headers
    status, headers, _ = k.request("POST", "/plain", If_None_Match="*")
    assert status == 200 and "etag" not in headers  # writes need validators before the handler


def test_app_validators_and_304_headers(kind: str) -> None:
    k = Kind(kind)
    status, headers, body = k.request("GET", "/tagged", If_None_Match='"t1"')
    assert (status, body) == (304, b"")
    assert {n: headers[n] for n in ("etag", "cache-control", "vary", "set-cookie")} == {
        "etag": '"t1"', "cache-control": "max-age=60", "vary": "Accept", "set-cookie": "s=1"}
    assert "x-custom" not in headers and "content-type" not in headers
    assert k.request("HEAD", "/tagged", If_None_Match='W/"t1"')[0] == 304
    status, headers, body = k.request("GET", "/tagged", If_Match='"t0"')
    assert status == 412 and b"preconditionFailed" in body and headers["content-type"] == "application/json"


def test_non_2xx_is_left_alone(kind: str) -> None:
    assert Kind(kind).request("GET", "/missing", If_None_Match="*")[0] == 404


def test_require_if_match_answers_428_before_the_app(kind: str) -> None:
    k = Kind(kind, require_if_match=True)
    status, _, body = k.request("DELETE", "/tagged")
    assert status == 428 and b"preconditionRequired" in body and k.calls.count == 0
    assert k.request("DELETE", "/tagged", If_Match='"t1"')[0] == 200 and k.calls.count == 1
    assert k.request("GET", "/tagged")[0] == 200


def test_rule_table_middleware(kind: str) -> None:
    calls = type("C", (Calls,), {})
    if kind == "asgi":
        client: Any = TestClient(tk_asgi.RedirectMiddleware(raw_asgi(calls), RULES), follow_redirects=False)
    else:
        client = Client(tk_wsgi.RedirectMiddleware(raw_wsgi(calls), str(RULES)))
    r = client.get("/api/v1/users/42?x=1")
    assert r.status_code == 301 and r.headers["location"] == "/api/v2/users/42?x=1"
    assert "server" not in {k.lower() for k in r.headers.keys()}  # the app's server names itself
    r = client.head("/apiFoo/v1/a")
    assert r.status_code == 307
    assert calls.count == 0
    assert client.get("/plain").status_code == 200 and calls.count == 1
