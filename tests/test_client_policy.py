"""The sans-IO core: what follows each 3xx, and what is refused."""

from __future__ import annotations

import httpx
import pytest

from redirectory.client import Policy, Redirect302Refused, UnsafeRedirect, decide
from redirectory.client.policy import CONTENT_HEADERS, credentials_follow, follows, memory_key, resolve_location
from redirectory.semantics import TABLE

URL = httpx.URL("https://api.example/v1/users?x=1")
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def test_follows_exactly_the_redirects_of_the_semantics_table() -> None:
    assert [code for code in range(300, 400) if follows(code)] == [301, 302, 303, 307, 308]
    assert all(follows(code) == TABLE[code].is_redirect for code in TABLE)


@pytest.mark.parametrize("method", METHODS)
def test_303_is_get_except_head(method: str) -> None:
    decision = decide(Policy(), method, URL, 303, "/v1/result")
    assert decision.method == ("HEAD" if method == "HEAD" else "GET")
    assert decision.keep_body is False
    assert set(CONTENT_HEADERS) <= set(decision.drop_headers)
    assert str(decision.url) == "https://api.example/v1/result"


@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("method", METHODS)
def test_307_308_keep_method_and_body(status: int, method: str) -> None:
    decision = decide(Policy(), method, URL, status, "https://api.example/v2/users")
    assert (decision.method, decision.keep_body, decision.drop_headers, decision.warning) == (method, True, (), None)


@pytest.mark.parametrize("method", METHODS)
def test_302_historic_turns_only_post_into_get_and_warns(method: str) -> None:
    decision = decide(Policy(), method, URL, 302, "/elsewhere")
    assert decision.method == ("GET" if method == "POST" else method)
    assert decision.keep_body is (method != "POST")
    assert decision.warning is not None and "breaks the guide" in decision.warning


@pytest.mark.parametrize("method", METHODS)
def test_302_preserve_and_error(method: str) -> None:
    kept = decide(Policy(redirect_302="preserve"), method, URL, 302, "/elsewhere")
    assert (kept.method, kept.keep_body) == (method, True)
    with pytest.raises(Redirect302Refused, match="use 303 or 307 for a temporary redirect"):
        decide(Policy(redirect_302="error"), method, URL, 302, "/elsewhere")


def test_301_post_historic_or_preserved_and_warned() -> None:
    historic = decide(Policy(), "POST", URL, 301, "/v2")
    assert (historic.method, historic.keep_body) == ("GET", False)
    assert historic.warning is not None and "308" in historic.warning
    kept = decide(Policy(redirect_301="preserve"), "POST", URL, 301, "/v2")
    assert (kept.method, kept.keep_body) == ("POST", True)
    assert decide(Policy(), "GET", URL, 301, "/v2").warning is None


def test_downgrade_refused_unless_allowed() -> None:
    with pytest.raises(UnsafeRedirect, match="downgrade https to http"):
        decide(Policy(), "GET", URL, 308, "http://api.example/v2")
    allowed = decide(Policy(allow_downgrade=True), "GET", URL, 308, "http://api.example/v2")
    assert allowed.url.scheme == "http"
    assert any("downgrade" in change for change in allowed.changes)


@pytest.mark.parametrize("location", ["ftp://files.example/x", "javascript:alert(1)", "mailto:a@b.example"])
def test_non_http_locations_refused(location: str) -> None:
    with pytest.raises(UnsafeRedirect, match="not an http or https URL"):
        decide(Policy(), "GET", URL, 307, location)


def test_cross_origin_drops_credentials() -> None:
    same = decide(Policy(), "GET", URL, 307, "/other")
    assert not same.cross_origin and "authorization" not in same.drop_headers
    other = decide(Policy(), "GET", URL, 307, "https://evil.example/")
    assert other.cross_origin
    assert {"authorization", "cookie", "proxy-authorization"} <= set(other.drop_headers)
    port = decide(Policy(sensitive_headers=frozenset({"X-Api-Key"})), "GET", URL, 307, "https://api.example:8443/")
    assert port.cross_origin and port.drop_headers == ("x-api-key",)


def test_credentials_follow_an_https_upgrade_of_the_same_host_only() -> None:
    assert credentials_follow(httpx.URL("http://a.example/x"), httpx.URL("https://a.example/y"))
    assert credentials_follow(httpx.URL("http://a.example:80/x"), httpx.URL("https://a.example:443/y"))
    assert not credentials_follow(httpx.URL("http://a.example:8080/"), httpx.URL("https://a.example/"))
    assert not credentials_follow(httpx.URL("https://a.example/"), httpx.URL("http://a.example/"))
    assert not credentials_follow(httpx.URL("http://a.example/"), httpx.URL("https://b.example/"))


def test_location_resolution() -> None:
    base = httpx.URL("https://api.example/v1/users/42#frag")
    assert str(resolve_location(base, "../items/1")) == "https://api.example/v1/items/1#frag"
    assert str(resolve_location(base, "/x#own")) == "https://api.example/x#own"
    assert str(resolve_location(base, "//cdn.example/a")) == "https://cdn.example/a#frag"
    assert str(resolve_location(base, "?page=2")) == "https://api.example/v1/users/42?page=2#frag"
    assert memory_key(base) == "https://api.example/v1/users/42"
    assert memory_key(httpx.URL("https://user:pw@api.example:8443/a?b=1#c")) == "https://api.example:8443/a?b=1"


def test_policy_rejects_unknown_choices() -> None:
    with pytest.raises(ValueError, match="redirect_302"):
        Policy(redirect_302="lenient")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a redirect"):
        decide(Policy(), "GET", URL, 304, "/x")


def test_why_cites_the_semantics_table() -> None:
    for status in (301, 302, 303, 307, 308):
        decision = decide(Policy(), "GET", URL, status, "/x")
        assert TABLE[status].rfc in decision.why and TABLE[status].reason in decision.why
