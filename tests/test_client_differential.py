"""Differential test: redirectory's Client against httpx's own redirect following, on the same servers.

Where the two semantics agree the outcomes must be identical. Where they differ, the difference is
asserted here, and listed (same numbering) in docs/client.md:

 D1  302 answering PUT/PATCH/DELETE: httpx turns them into GET and drops the body; we keep the method
     and body (RFC 9110 and Fetch allow the change for POST only).
 D2  303 (and a POST turned into GET): httpx keeps Content-Type and the other content headers on the
     GET; we drop them with the body.
 D3  Credentials across origins: httpx drops Authorization only (and Cookie everywhere); we also drop
     Proxy-Authorization, and keep a hand-set Cookie header on same-origin hops.
 D4  https -> http: httpx follows; we raise UnsafeRedirect (allow_downgrade=True to follow).
 D5  A loop: httpx sends 21 requests then raises TooManyRedirects; we raise RedirectLoop at the first repeat.
 D6  Hop limit: httpx 20, we 10.
 D7  307/308 with a one-shot (generator) body: httpx starts the follow-up and fails with StreamConsumed
     (the target sees a broken request); we raise BodyNotReplayable before sending anything.
 D8  Permanent redirects: httpx asks the old URL every time; we remember 301 (GET/HEAD) and 308.
 D9  Non-http Location (ftp:): httpx raises UnsupportedProtocol when sending; we raise UnsafeRedirect.
 D10 follow_redirects defaults to False in httpx, True here; 302 (and 301 on POST) warn (RedirectWarning).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pytest

from redirectory.client import BodyNotReplayable, Client, RedirectLoop, TooManyRedirects, UnsafeRedirect

if TYPE_CHECKING:
    from client_servers import Edge

pytest_plugins = ["client_servers"]

Outcome = tuple[Any, ...]


def outcome(client: httpx.Client, method: str, url: str, **kwargs: Any) -> Outcome:
    """What a caller observes: final status, method, path, body and content/credential headers — or the error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        return ("error", type(exc).__name__)
    try:
        echo = response.json()
    except ValueError:
        return (response.status_code, response.request.method, response.url.path, len(response.history))
    if "port" in echo:  # the edge app
        headers = {k: v for k, v in echo["headers"].items()
                   if k in ("content-type", "content-language", "authorization", "proxy-authorization", "cookie")}
        return (response.status_code, echo["method"], echo["path"], echo["body"], headers, len(response.history))
    return (response.status_code, echo.get("method"), response.url.path, echo.get("data"), len(response.history))


@pytest.fixture
def clients(edge: Edge) -> Iterator[tuple[httpx.Client, Client]]:
    with httpx.Client(follow_redirects=True, verify=edge.ssl_context) as theirs, \
            Client(verify=edge.ssl_context, memory=False) as ours:
        yield theirs, ours


def r(status: int, to: str, **extra: str) -> str:
    return f"/r/{status}?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in {"to": to, **extra}.items())


SAME = [
    ("GET", 301), ("HEAD", 301), ("POST", 301), ("GET", 302), ("POST", 302), ("HEAD", 303), ("GET", 303),
    ("GET", 307), ("POST", 307), ("PUT", 307), ("DELETE", 307), ("GET", 308), ("POST", 308), ("PATCH", 308),
]


@pytest.mark.parametrize(("method", "status"), SAME)
def test_same_outcome_where_the_semantics_agree(edge: Edge, clients: tuple[httpx.Client, Client], method: str,
                                                status: int) -> None:
    theirs, ours = clients
    url = edge.base + r(status, "/echo/target")
    kwargs = {} if method in ("GET", "HEAD", "DELETE") else {"content": b"same body"}
    assert outcome(ours, method, url, **kwargs) == outcome(theirs, method, url, **kwargs)


def test_same_outcome_on_chains_and_cross_origin_authorization(edge: Edge, httpbin_url: str,
                                                                clients: tuple[httpx.Client, Client]) -> None:
    theirs, ours = clients
    cases: list[tuple[str, dict[str, Any]]] = [
        (edge.base + "/chain/6", {}),
        (edge.base + r(307, edge.other + "/echo/o"), {"headers": {"Authorization": "Bearer x"}}),
        (edge.base + r(308, edge.secure + "/echo/up"), {"headers": {"Authorization": "Bearer x"}}),
        (f"{httpbin_url}/redirect-to?url=/anything&status_code=307", {"content": b"b"}),
        (f"{httpbin_url}/relative-redirect/4", {}),
        (f"{httpbin_url}/absolute-redirect/2", {}),
    ]
    for url, kwargs in cases:
        method = "POST" if "content" in kwargs else "GET"
        assert outcome(ours, method, url, **kwargs) == outcome(theirs, method, url, **kwargs), url


def _differs(theirs: Outcome, ours: Outcome, check: Callable[[Outcome, Outcome], bool]) -> None:
    assert theirs != ours
    assert check(theirs, ours), (theirs, ours)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_d1_302_keeps_methods_other_than_post(edge: Edge, clients: tuple[httpx.Client, Client], method: str) -> None:
    theirs, ours = (outcome(c, method, edge.base + r(302, "/echo/t"), content=b"kept") for c in clients)
    _differs(theirs, ours, lambda t, o: t[1] == "GET" and t[3] == "" and o[1] == method and o[3] == "kept")


def test_d2_content_headers_do_not_survive_a_303(edge: Edge, clients: tuple[httpx.Client, Client]) -> None:
    theirs, ours = (outcome(c, "POST", edge.base + r(303, "/echo/t"), json={"a": 1},
                            headers={"Content-Language": "en"}) for c in clients)
    _differs(theirs, ours, lambda t, o: t[4]["content-type"] == "application/json" and o[4] == {})


def test_d3_credentials(edge: Edge, clients: tuple[httpx.Client, Client]) -> None:
    proxy = {"Proxy-Authorization": "Basic eA=="}
    theirs, ours = (outcome(c, "GET", edge.base + r(307, edge.other + "/echo/o"), headers=proxy) for c in clients)
    _differs(theirs, ours, lambda t, o: "proxy-authorization" in t[4] and "proxy-authorization" not in o[4])
    cookie = {"Cookie": "session=1"}
    theirs, ours = (outcome(c, "GET", edge.base + r(307, "/echo/same"), headers=cookie) for c in clients)
    _differs(theirs, ours, lambda t, o: "cookie" not in t[4] and o[4]["cookie"] == "session=1")


def test_d4_downgrade(edge: Edge, clients: tuple[httpx.Client, Client]) -> None:
    theirs, ours = (outcome(c, "GET", edge.secure + r(307, edge.base + "/echo/down")) for c in clients)
    _differs(theirs, ours, lambda t, o: t[0] == 200 and o == ("error", UnsafeRedirect.__name__))


def test_d5_d6_loops_and_hop_limit(edge: Edge, clients: tuple[httpx.Client, Client]) -> None:
    theirs, ours = clients
    seen: dict[str, int] = {"theirs": 0, "ours": 0}
    theirs.event_hooks["request"].append(lambda request: seen.__setitem__("theirs", seen["theirs"] + 1))
    ours.event_hooks["request"].append(lambda request: seen.__setitem__("ours", seen["ours"] + 1))
    assert outcome(theirs, "GET", edge.base + "/loop/a") == ("error", "TooManyRedirects")
    assert outcome(ours, "GET", edge.base + "/loop/a") == ("error", RedirectLoop.__name__)
    assert seen == {"theirs": 21, "ours": 2}
    assert outcome(theirs, "GET", edge.base + "/chain/15")[0] == 200
    assert outcome(ours, "GET", edge.base + "/chain/15") == ("error", TooManyRedirects.__name__)


def test_d7_one_shot_bodies_precisely(edge: Edge, key: str, clients: tuple[httpx.Client, Client]) -> None:
    def body() -> Iterator[bytes]:
        yield b"once"

    theirs, ours = clients
    with pytest.raises(httpx.StreamConsumed):
        theirs.post(edge.base + r(307, f"/target/{key}"), content=body())
    deadline = time.monotonic() + 5
    while edge.hits(key)["target"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert edge.hits(key)["target"] == 1  # httpx opened the follow-up request before failing
    with pytest.raises(BodyNotReplayable):
        ours.post(edge.base + r(307, f"/target/{key}"), content=body())
    assert edge.hits(key)["target"] == 1  # we sent nothing


def test_d8_permanent_moves(edge: Edge, key: str) -> None:
    with httpx.Client(follow_redirects=True) as theirs:
        theirs.get(f"{edge.base}/perm/{key}")
        theirs.get(f"{edge.base}/perm/{key}")
    assert edge.hits(key)["perm"] == 2
    with Client() as ours:
        ours.get(f"{edge.base}/perm/{key}")
        ours.get(f"{edge.base}/perm/{key}")
    assert edge.hits(key)["perm"] == 3


def test_d9_non_http_location(edge: Edge, clients: tuple[httpx.Client, Client]) -> None:
    theirs, ours = (outcome(c, "GET", edge.base + r(307, "ftp://files.example/x")) for c in clients)
    _differs(theirs, ours, lambda t, o: t == ("error", "UnsupportedProtocol") and o == ("error", "UnsafeRedirect"))


def test_d10_defaults(edge: Edge) -> None:
    assert httpx.Client().follow_redirects is False
    assert Client().follow_redirects is True
    with Client() as ours, pytest.warns(Warning, match="breaks the guide"):
        ours.get(edge.base + r(302, "/echo/t"))
