"""Redirect helpers: safe Location, the guide's statuses, native responses for each framework."""

from __future__ import annotations

import django
import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import strategies as st

if not settings.configured:
    settings.configure(DEBUG=False, USE_TZ=True, DEFAULT_CHARSET="utf-8")
    django.setup()

import flask  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from starlette.requests import Request as StarletteRequest  # noqa: E402
from starlette.responses import Response as StarletteResponse  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402
from werkzeug.wrappers import Request as WerkzeugRequest  # noqa: E402
from werkzeug.wrappers import Response as WerkzeugResponse  # noqa: E402

from redirectory.toolkit import (  # noqa: E402
    ForbiddenStatus,
    InvalidLocation,
    RedirectOptions,
    RequestInfo,
    Validators,
    configure,
    moved_permanently,
    not_modified,
    permanent_redirect,
    redirect,
    see_other,
    temporary_redirect,
)
from redirectory.toolkit.redirects import redirect_response, resolve_location  # noqa: E402

REQ = RequestInfo("GET", "/api/v1/users/42", client_ip="10.0.0.5",
                  headers=(("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com")))


def starlette_request(path: str = "/a/b", headers: list[tuple[bytes, bytes]] | None = None) -> StarletteRequest:
    return StarletteRequest({"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
                             "query_string": b"", "headers": headers or [], "client": ("10.0.0.5", 1234)})


def werkzeug_request(path: str = "/a/b") -> WerkzeugRequest:
    return WerkzeugRequest(EnvironBuilder(path=path, method="POST").get_environ())


def django_request(path: str = "/a/b") -> HttpRequest:
    request = HttpRequest()
    request.method = "POST"
    request.path = path
    request.META = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "REMOTE_ADDR": "10.0.0.5"}
    return request


def native_headers(response: object) -> dict[str, str]:
    if isinstance(response, StarletteResponse):
        return {k.decode(): v.decode() for k, v in response.raw_headers}
    if isinstance(response, WerkzeugResponse):
        return {k.lower(): v for k, v in response.headers.items()}
    assert isinstance(response, HttpResponse)
    return {k.lower(): v for k, v in response.items()}


def native_status_body(response: object) -> tuple[int, bytes]:
    if isinstance(response, StarletteResponse):
        return response.status_code, bytes(response.body)
    if isinstance(response, WerkzeugResponse):
        return response.status_code, response.get_data()
    assert isinstance(response, HttpResponse)
    return response.status_code, response.content


REQUESTS = {"starlette": starlette_request, "werkzeug": werkzeug_request, "django": django_request}
TYPES = {"starlette": StarletteResponse, "werkzeug": WerkzeugResponse, "django": HttpResponse}


@pytest.mark.parametrize("framework", sorted(REQUESTS))
@pytest.mark.parametrize(("helper", "status"), [(moved_permanently, 301), (permanent_redirect, 308),
                                                (see_other, 303), (temporary_redirect, 307)])
def test_helpers_return_native_bodyless_redirects(framework: str, helper: object, status: int) -> None:
    response = helper(REQUESTS[framework](), "/api/v2/users/42")  # type: ignore[operator]
    assert isinstance(response, TYPES[framework])
    code, body = native_status_body(response)
    headers = native_headers(response)
    assert (code, body) == (status, b"")
    assert headers["location"] == "/api/v2/users/42"
    assert headers["content-length"] == "0"
    assert "content-type" not in headers
    assert ("cache-control" in headers) == (status in (301, 308))


@pytest.mark.parametrize("framework", sorted(REQUESTS))
def test_302_raises_everywhere(framework: str) -> None:
    with pytest.raises(ForbiddenStatus, match="302 must not be used: use 303 or 307"):
        redirect(REQUESTS[framework](), "/x", 302)
    with pytest.raises(ForbiddenStatus, match="use one of 301, 303, 307, 308"):
        redirect(REQUESTS[framework](), "/x", 200)


@pytest.mark.parametrize("framework", sorted(REQUESTS))
def test_not_modified_has_no_body_and_no_content_headers(framework: str) -> None:
    response = not_modified(REQUESTS[framework](), Validators.of(version=3),
                            headers=[("Cache-Control", "max-age=60"), ("Content-Type", "application/json")])
    headers = native_headers(response)
    assert native_status_body(response) == (304, b"")
    assert headers.get("etag") == '"3"' and headers.get("cache-control") == "max-age=60"
    assert "content-type" not in headers and "content-length" not in headers


def test_flask_request_proxy_is_understood() -> None:
    app = flask.Flask("t")
    with app.test_request_context("/a/b", method="POST"):
        response = see_other(flask.request, "c")
    assert native_headers(response)["location"] == "/a/c"


def test_unsupported_request_type_is_named() -> None:
    with pytest.raises(TypeError, match="unsupported request dict"):
        see_other({}, "/x")


@pytest.mark.parametrize(("location", "message"), [
    ("/a\r\nSet-Cookie: x=1", "control characters"),
    ("/a\nb", "control characters"),
    ("/a\\b", "backslash"),
    ("//evil.example/x", "scheme-relative"),
    ("javascript:alert(1)", "scheme 'javascript' is not allowed"),
    ("https://user:pw@api.example.com/", "user information"),
    ("https:///x", "has no host"),
    ("https://evil.example/x", "not in the allowed hosts"),
    ("", "non-empty string"),
])
def test_bad_locations_are_refused_with_a_reason(location: str, message: str) -> None:
    options = RedirectOptions(allowed_hosts=("bar.example.internal",))
    with pytest.raises(InvalidLocation, match=message):
        resolve_location(location, REQ, options)


def test_location_resolution() -> None:
    assert resolve_location("/a b/é?q=1 2#f") == "/a%20b/%C3%A9?q=1%202#f"
    assert resolve_location("/a%2Fb%zz") == "/a%2Fb%25zz"
    assert resolve_location("c", REQ) == "/api/v1/users/c"
    assert resolve_location("https://Bar.Example.Internal:8443/x y") == "https://bar.example.internal:8443/x%20y"
    assert resolve_location("https://bücher.example/") == "https://xn--bcher-kva.example/"
    # behind a trusted proxy the Location is absolute, with the client's scheme and host
    trusted = RedirectOptions(trusted_proxies=("10.0.0.0/8",), allowed_hosts=())
    assert resolve_location("/v2", REQ, trusted) == "https://api.example.com/v2"
    assert resolve_location("https://api.example.com/own", REQ, trusted) == "https://api.example.com/own"
    untrusted = RedirectOptions(trusted_proxies=("192.168.0.0/16",))
    assert resolve_location("/v2", REQ, untrusted) == "/v2"
    public = RedirectOptions(public_url="https://public.example/base")
    assert resolve_location("/v2", REQ, public) == "https://public.example/v2"


def test_options_errors_name_the_setting() -> None:
    with pytest.raises(ValueError, match="public_url: 'ftp://x' is not an absolute http"):
        RedirectOptions(public_url="ftp://x")
    with pytest.raises(ValueError, match="trusted_proxies: .*CIDR"):
        RedirectOptions(trusted_proxies=("not-an-ip",))
    with pytest.raises(ValueError, match="must not contain CR, LF"):
        redirect_response(301, "/x", headers=[("X-A", "1\r\nX-B: 2")])
    with pytest.raises(TypeError, match="RedirectOptions"):
        configure("https://x")  # type: ignore[arg-type]


def test_configure_sets_the_helpers_options() -> None:
    try:
        configure(RedirectOptions(public_url="https://api.example.com"))
        assert native_headers(see_other(starlette_request(), "/r"))["location"] == "https://api.example.com/r"
    finally:
        configure(RedirectOptions())


@given(st.text(max_size=40), st.booleans())
def test_any_location_is_safe_or_refused(location: str, proxied: bool) -> None:
    options = RedirectOptions(trusted_proxies=("*",) if proxied else (), allowed_hosts=("ok.example",))
    try:
        result = resolve_location(location, REQ, options)
    except InvalidLocation:
        return
    assert not any(ord(ch) <= 0x20 or ord(ch) >= 0x7F for ch in result)
    assert not result.startswith("//") and "\\" not in result
    if "://" in result.split("/", 3)[0] + "/" or result.startswith("http"):
        host = result.split("://", 1)[1].split("/", 1)[0].split(":")[0]
        assert host in ("ok.example", "api.example.com")
