"""The HAR adapter on files recorded from real clients (tests/data/har/record.py): hops linked by
redirectURL and order, 304s paired with their 200, and what each client did after a redirect."""

from __future__ import annotations

from pathlib import Path

from redirectory.check.har import load_har
from redirectory.check.model import Exchange

HAR = Path(__file__).resolve().parent / "data" / "har"


def by_path(exchanges: list[Exchange], path: str, method: str = "GET") -> list[Exchange]:
    return [e for e in exchanges if e.request.url.endswith(path) and e.request.method == method]


def test_httpx_hops_and_pairs() -> None:
    exchanges = load_har(HAR / "httpx.har")
    moved = by_path(exchanges, "/clean/moved")[0]
    assert moved.status == 301 and moved.next is not None and moved.next.request.url.endswith("/clean/ok")
    assert moved.next.previous is moved and moved.next.status == 200
    not_modified = next(e for e in exchanges if e.status == 304 and e.request.url.endswith("/clean/ok"))
    assert not_modified.paired is not None and not_modified.paired.status == 200
    assert not_modified.request.header("if-none-match") == not_modified.paired.response.header("etag")  # type: ignore[union-attr]
    post = by_path(exchanges, "/clean/temporary-echo", "POST")[0]
    assert post.status == 307 and post.next is not None and post.next.request.method == "POST"
    assert post.next.request.body_hash == post.request.body_hash is not None  # httpx re-sends the same body
    controller = by_path(exchanges, "/clean/controller", "POST")[0]
    follow = controller.next
    assert controller.status == 303 and follow is not None and follow.request.method == "GET"
    assert not follow.request.body and follow.request.has("content-type")  # httpx 0.28 keeps Content-Type


def test_curl_follows_as_documented() -> None:
    exchanges = load_har(HAR / "curl.har")
    first = exchanges[0]  # curl -X POST -L: -X applies to every hop, so POST survives the 303
    assert first.status == 303 and first.next is not None and first.next.request.method == "POST"
    temp = by_path(exchanges, "/clean/temporary-echo", "POST")[0]  # curl --data -L: 307 re-sends the POST
    assert temp.next is not None and temp.next.request.method == "POST" and temp.next.status == 200
    assert temp.next.request.header("content-length") == temp.request.header("content-length")


def test_naive_client_recording() -> None:
    exchanges = load_har(HAR / "naive-client.har")
    assert [(e.request.method, e.status) for e in exchanges] == [("POST", 307), ("GET", 200), ("GET", 307),
                                                                  ("GET", 200)]
    assert exchanges[2].next is exchanges[3] and exchanges[3].request.url.startswith("http://localhost:")
    assert exchanges[3].request.header("authorization") == "Bearer demo-token"
