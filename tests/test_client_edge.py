"""The sync Client against the edge-case app (real uvicorn servers on loopback: two http origins, one https)."""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
import pytest

from redirectory.client import (
    BodyNotReplayable,
    Client,
    Redirect302Refused,
    RedirectLoop,
    RedirectMemory,
    RedirectWarning,
    Response,
    TooManyRedirects,
    UnsafeRedirect,
)

if TYPE_CHECKING:
    from client_servers import Edge

pytest_plugins = ["client_servers"]


@pytest.fixture
def client(edge: Edge) -> Iterator[Client]:
    with Client(verify=edge.ssl_context, timeout=10) as c:
        yield c


def r(status: int, to: str, **extra: str) -> str:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in {"to": to, **extra}.items())
    return f"/r/{status}?{query}"


def test_303_turns_post_into_get_without_body_or_content_headers(edge: Edge, client: Client) -> None:
    response = client.post(edge.base + r(303, "/echo/result"), json={"name": "Ada"},
                           headers={"Content-Language": "en"})
    echo = response.json()
    assert (echo["method"], echo["path"], echo["body"]) == ("GET", "/echo/result", "")
    assert not {"content-type", "content-length", "content-language"} & set(echo["headers"])
    assert [h.status_code for h in response.history] == [303]
    assert "303 See Other" in response.explain() and "POST -> GET" in response.explain()


def test_303_keeps_head_and_tolerates_a_body(edge: Edge, client: Client) -> None:
    head = client.head(edge.base + r(303, "/echo/result"))
    assert head.status_code == 200 and head.request.method == "HEAD"
    with_body = client.post(edge.base + r(303, "/echo/x", body="a note the guide says should not be here"))
    assert with_body.json()["method"] == "GET"
    assert with_body.history[0].text == "a note the guide says should not be here"


@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_307_308_resend_method_and_body(edge: Edge, client: Client, status: int, method: str) -> None:
    response = client.request(method, edge.base + r(status, "/echo/kept", cc="no-store"), json={"n": 1})
    echo = response.json()
    assert (echo["method"], echo["body"], echo["headers"]["content-type"]) == (method, '{"n":1}', "application/json")


def test_302_policies(edge: Edge, key: str) -> None:
    url = edge.base + r(302, f"/target/{key}")
    with Client() as historic, pytest.warns(RedirectWarning, match="breaks the guide"):
        assert historic.post(url, content=b"x").json()["method"] == "GET"
    with Client(redirect_302="preserve") as preserve, pytest.warns(RedirectWarning):
        echo = preserve.post(url, content=b"x").json()
        assert (echo["method"], echo["body"]) == ("POST", "x")
    before = edge.hits(key)["target"]
    with Client(redirect_302="error") as strict, pytest.raises(Redirect302Refused) as refused:
        strict.post(url, content=b"x")
    assert edge.hits(key)["target"] == before  # nothing was sent to the target
    assert "use 303 or 307" in str(refused.value)
    assert refused.value.history[0].status_code == 302
    assert "refused" in refused.value.explain()


def test_301_post_becomes_get_with_a_warning_and_is_not_remembered(edge: Edge, client: Client) -> None:
    url = edge.base + r(301, "/echo/moved")
    with pytest.warns(RedirectWarning, match="should answer 308"):
        assert client.post(url, content=b"x").json()["method"] == "GET"
    assert client.memory is not None and client.memory.lookup("POST", url) is None
    assert client.get(url).json()["method"] == "GET"
    assert client.memory.lookup("GET", url) is not None


def test_one_shot_body_is_refused_before_anything_reaches_the_target(edge: Edge, client: Client, key: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"part one, "
        yield b"part two"

    with pytest.raises(BodyNotReplayable, match="buffer_bodies=True") as refused:
        client.post(edge.base + r(307, f"/target/{key}"), content=chunks())
    assert edge.hits(key)["target"] == 0
    assert refused.value.request.method == "POST"

    with Client(buffer_bodies=True) as buffering:
        echo = buffering.post(edge.base + r(307, f"/target/{key}"), content=chunks()).json()
    assert (echo["method"], echo["body"]) == ("POST", "part one, part two")
    assert edge.hits(key)["target"] == 1


def test_multipart_with_seekable_files_is_replayed(edge: Edge, client: Client) -> None:
    files = {"upload": ("a.txt", io.BytesIO(b"file body"), "text/plain")}
    echo = client.post(edge.base + r(308, "/echo/up", cc="no-store"), files=files, data={"k": "v"}).json()
    assert echo["method"] == "POST" and "file body" in echo["body"] and 'name="k"' in echo["body"]


def test_loops_and_the_hop_limit(edge: Edge, client: Client) -> None:
    with pytest.raises(RedirectLoop, match="already requested") as loop:
        client.get(edge.base + "/loop/a")
    assert [h.status_code for h in loop.value.history] == [307, 307]
    assert isinstance(loop.value, httpx.TooManyRedirects)
    assert client.get(edge.base + "/chain/10").json()["path"] == "/chain/0"
    with pytest.raises(TooManyRedirects, match="more than 10 redirects"):
        client.get(edge.base + "/chain/11")
    with Client(max_redirects=2) as short, pytest.raises(TooManyRedirects, match="more than 2"):
        short.get(edge.base + "/chain/3")


def test_credentials_stay_on_their_origin(edge: Edge, client: Client) -> None:
    secret = {"Authorization": "Bearer s3cret", "Cookie": "session=abc", "Proxy-Authorization": "Basic eA==",
              "X-Trace": "kept"}
    same = client.get(edge.base + r(307, "/echo/same"), headers=secret).json()["headers"]
    assert same["authorization"] == "Bearer s3cret" and same["cookie"] == "session=abc"
    other = client.get(edge.base + r(307, edge.other + "/echo/other"), headers=secret).json()["headers"]
    assert not {"authorization", "cookie", "proxy-authorization"} & set(other)
    assert other["x-trace"] == "kept" and other["host"] == f"127.0.0.1:{edge.other_port}"

    with Client(auth=("user", "pass")) as authed:
        there = authed.get(edge.base + r(307, edge.other + "/echo/o")).json()["headers"]
        here = authed.get(edge.base + r(307, "/echo/s")).json()["headers"]
    assert "authorization" not in there and here["authorization"].startswith("Basic ")


def test_cookies_set_by_a_redirect_reach_the_follow_up(edge: Edge, client: Client) -> None:
    echo = client.post(edge.base + r(303, "/echo/home", cookie="session=fresh; Path=/")).json()
    assert echo["headers"]["cookie"] == "session=fresh"


def test_https_to_http_downgrade_is_refused_by_default(edge: Edge, client: Client, key: str) -> None:
    url = edge.secure + r(308, f"{edge.base}/target/{key}", cc="no-store")
    with pytest.raises(UnsafeRedirect, match="downgrade https to http"):
        client.get(url)
    assert edge.hits(key)["target"] == 0
    with Client(verify=edge.ssl_context, allow_downgrade=True) as lenient:
        assert lenient.get(url).json()["scheme"] == "http"
    upgrade = client.get(edge.base + r(308, f"{edge.secure}/echo/up", cc="no-store"))
    assert upgrade.json()["scheme"] == "https"


def test_permanent_moves_are_remembered_and_forgotten(edge: Edge, client: Client, key: str) -> None:
    url = f"{edge.base}/perm/{key}"
    first = client.post(url, content=b"one")
    assert first.json()["body"] == "one" and len(first.history) == 1
    second = client.post(url, content=b"two")
    assert (second.json()["method"], second.json()["body"]) == ("POST", "two")
    assert second.history == [] and "remembered, no request sent" in second.explain()
    assert "Cache-Control: max-age=60" in second.explain()
    assert edge.hits(key) == {"perm": 1, "target": 2}
    assert client.get(url).status_code == 200  # a GET learns separately (per-method keys)
    assert edge.hits(key)["perm"] == 2
    assert client.forget(url) == 2
    client.post(url, content=b"three")
    assert edge.hits(key) == {"perm": 3, "target": 4}


def test_forget_with_a_relative_url_uses_base_url(edge: Edge, key: str) -> None:
    with Client(base_url=edge.base + "/perm") as scoped:
        scoped.get(f"/{key}")
        assert scoped.forget(f"/{key}") == 1


def test_a_remembered_target_that_is_gone_is_forgotten_and_the_original_asked(edge: Edge, client: Client,
                                                                               key: str) -> None:
    url = f"{edge.base}/perm/{key}"
    assert client.get(url).status_code == 200
    edge.control(key, moved=False, target_status=410)
    response = client.get(url)
    assert response.json() == {"at": "original", "method": "GET"}
    assert "remembered target is gone" in response.explain() and "asking the original URL again" in response.explain()
    assert client.memory is not None and client.memory.lookup("GET", url) is None
    edge.control(key, moved=True, target_status=404)
    assert client.get(url).status_code == 404  # the server still points there: its 404 is the answer
    assert client.get(url).status_code == 404
    assert edge.hits(key)["perm"] <= 4


def test_no_store_and_temporary_redirects_are_not_remembered(edge: Edge, client: Client, key: str) -> None:
    edge.control(key, cc="no-store")
    client.get(f"{edge.base}/perm/{key}")
    client.get(f"{edge.base}/perm/{key}")
    assert edge.hits(key)["perm"] == 2
    client.get(edge.base + r(307, "/echo/t"))
    assert client.memory is not None and client.memory.lookup("GET", edge.base + r(307, "/echo/t")) is None


def test_follow_redirects_false_returns_the_3xx_with_our_next_request(edge: Edge, client: Client) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RedirectWarning)
        response = client.post(edge.base + r(302, "/echo/n"), content=b"x", follow_redirects=False)
    assert response.status_code == 302 and isinstance(response, Response)
    assert response.next_request is not None and response.next_request.method == "GET"
    follow_up = client.send(response.next_request)
    assert follow_up.json()["path"] == "/echo/n"


def test_memory_persists_across_clients(edge: Edge, key: str, tmp_path: Path) -> None:
    path = tmp_path / "moves.sqlite"
    with Client(memory=path) as first:
        first.get(f"{edge.base}/perm/{key}")
    with Client(memory=str(path)) as second:
        response = second.get(f"{edge.base}/perm/{key}")
    assert response.history == [] and edge.hits(key) == {"perm": 1, "target": 2}
    assert first.memory is not None and not first.memory.persistent  # leaving `with` closed the file
    shared = RedirectMemory(path=path)
    with Client(memory=shared):
        pass
    assert shared.persistent  # a memory passed in belongs to the caller and stays open
    shared.close()


def test_stream_hooks_and_transport_pass_through(edge: Edge) -> None:
    seen: list[str] = []
    hooks = {"request": [lambda request: seen.append(f"{request.method} {request.url.path}")]}
    transport = httpx.HTTPTransport(retries=1)
    with Client(event_hooks=hooks, transport=transport, timeout=httpx.Timeout(5)) as c:
        with c.stream("POST", edge.base + r(303, "/echo/s")) as response:
            assert isinstance(response, Response) and not response.is_stream_consumed
            assert b'"GET"' in response.read()
            assert [h.status_code for h in response.history] == [303]
    assert seen == ["POST /r/303", "GET /echo/s"]


def test_one_client_many_threads(edge: Edge, key: str) -> None:
    errors: list[BaseException] = []
    shared = RedirectMemory(8)
    with Client(memory=shared) as c:
        def work(n: int) -> None:
            try:
                for i in range(10):
                    echo = c.put(f"{edge.base}/perm/{key}", content=f"{n}-{i}".encode()).json()
                    assert (echo["method"], echo["body"]) == ("PUT", f"{n}-{i}")
            except BaseException as exc:  # noqa: BLE001 - collected for the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    hits = edge.hits(key)
    assert hits["target"] == 80 and hits["perm"] <= 8  # at most each thread's first request saw the 308


def test_url_credentials_survive_a_remembered_hop_but_never_reach_the_memory(edge: Edge, key: str,
                                                                             tmp_path: Path) -> None:
    url = f"http://ada:secret@127.0.0.1:{edge.port}/perm/{key}"
    with Client(memory=tmp_path / "m.sqlite") as client:
        first = client.get(url).json()["headers"]["authorization"]
        remembered = client.get(url)
        assert remembered.history == [] and remembered.json()["headers"]["authorization"] == first
        assert client.memory is not None
        assert all("secret" not in e.url + e.target for e in client.memory.entries())
    assert b"secret" not in (tmp_path / "m.sqlite").read_bytes()


def test_expires_decides_how_long_a_move_is_remembered(edge: Edge, client: Client) -> None:
    from datetime import UTC, datetime, timedelta

    from redirectory.client.freshness import format_http_date

    future = format_http_date(datetime.now(UTC) + timedelta(hours=2))
    url = edge.base + r(308, "/echo/e", expires=future)
    client.get(url)
    assert "Expires: " + future in client.get(url).explain()
    past = edge.base + r(308, "/echo/p", expires="Thu, 01 Jan 1970 00:00:00 GMT")
    client.get(past)
    assert client.get(past).history != []  # already expired: asked again


def test_what_is_not_followed_is_returned(edge: Edge, client: Client) -> None:
    assert client.get(edge.base + r(304, "/echo/x")).status_code == 304
    assert client.get(edge.base + r(300, "/echo/x")).status_code == 300
    no_location = client.get(edge.base + r(307, "/echo/x", no_location="1"))
    assert no_location.status_code == 307 and no_location.history == []
    assert no_location.explain().endswith(f"=> 307 Temporary Redirect (GET {no_location.url})")


class Tagged(httpx.Response):
    tag = "from the tagging transport"


class TaggingTransport(httpx.BaseTransport):
    """A real transport wrapper (HTTPTransport underneath) that returns its own Response subclass."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        response = self.inner.handle_request(request)
        return Tagged(response.status_code, headers=response.headers, stream=response.stream,
                      extensions=response.extensions)

    def close(self) -> None:
        self.inner.close()


def test_a_custom_transport_sees_every_hop_and_keeps_its_response_class(edge: Edge) -> None:
    transport = TaggingTransport()
    with Client(transport=transport) as c:
        response = c.post(edge.base + r(307, "/echo/t"), content=b"b")
    assert transport.requests == ["POST /r/307", "POST /echo/t"]
    assert isinstance(response, Tagged) and isinstance(response, Response)
    assert response.tag == "from the tagging transport" and "307 Temporary Redirect" in response.explain()
