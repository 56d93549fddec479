"""HTTP/1.1 behaviour of the default server (`--server httptools`), over raw sockets."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_process import ServeProcess, parse_head, raw_request, start_serve

RULES = """\
rules:
  - from: /a/{rest:path}
    to: /b/{rest}
    status: 308
  - from: /form
    to: /done
    status: 303
    methods: [POST]
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("http1")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    served = start_serve(tmp, "--rules", str(rules), "--server", "httptools")
    yield served
    served.stop()


def statuses(raw: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) [A-Z]", raw)]


def test_pipelined_requests_are_answered_in_order(gateway: ServeProcess) -> None:
    raw = raw_request(
        gateway.port,
        b"GET /a/1 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
        b"POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nx=1"
        b"GET /a/2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    assert statuses(raw) == [308, 404, 303, 308]
    assert raw.index(b"location: /b/1") < raw.index(b"location: /done") < raw.index(b"location: /b/2")


def test_http10_closes_unless_keep_alive(gateway: ServeProcess) -> None:
    raw = raw_request(gateway.port, b"GET /a/1 HTTP/1.0\r\n\r\n")
    assert statuses(raw) == [308] and b"connection: close" in raw
    raw = raw_request(gateway.port, b"GET /a/1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /a/2 HTTP/1.0\r\n\r\n")
    assert statuses(raw) == [308, 308]
    assert b"connection: keep-alive" in raw


def test_chunked_body_is_discarded_and_the_connection_reused(gateway: ServeProcess) -> None:
    raw = raw_request(
        gateway.port,
        b"POST /form HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        b"GET /a/3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    assert statuses(raw) == [303, 308]


def test_expect_100_continue(gateway: ServeProcess) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(b"POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        assert sock.recv(4096).startswith(b"HTTP/1.1 303 See Other")


def test_large_body_gets_the_answer_at_once_and_a_close(gateway: ServeProcess) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(b"POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 50000000\r\n\r\n")
        reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 303 See Other") and b"connection: close" in reply


def test_malformed_request_is_400_json(gateway: ServeProcess) -> None:
    status, headers, body = parse_head(raw_request(gateway.port, b"THIS IS NOT HTTP\r\n\r\n"))
    assert status == 400
    assert dict(headers)["content-type"] == "application/json"
    assert b'"errors"' in body


def test_oversized_header_section_is_431(gateway: ServeProcess) -> None:
    big = b"X-Big: " + b"a" * 70000 + b"\r\n"
    status, _, _ = parse_head(raw_request(gateway.port, b"GET /a/1 HTTP/1.1\r\nHost: t\r\n" + big + b"\r\n"))
    assert status == 431


def test_absolute_form_target_is_answered_by_its_path(gateway: ServeProcess) -> None:
    raw = raw_request(gateway.port, b"GET http://example.com/a/9?x=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
    status, headers, _ = parse_head(raw)
    assert status == 308 and dict(headers)["location"] == "/b/9?x=1"


def test_idle_keep_alive_connection_is_closed(gateway: ServeProcess) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=15) as sock:
        sock.sendall(b"GET /a/1 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 308")
        started = time.monotonic()
        assert sock.recv(4096) == b""  # the server closes the idle connection
        assert 3 < time.monotonic() - started < 10


def test_slow_header_is_cut_off(gateway: ServeProcess) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=20) as sock:
        sock.sendall(b"GET /a/1 HTTP/1.1\r\nHost: t\r\n")  # never finished
        started = time.monotonic()
        assert sock.recv(4096) == b""
        assert time.monotonic() - started < 15


def test_sigterm_exits_cleanly_and_flushes(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    served = start_serve(tmp_path, "--rules", str(rules), "--workers", "2")
    for _ in range(10):
        raw_request(served.port, b"GET /a/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert served.stop() == 0
    from redirectory.store import Store

    store = Store.open(served.database)
    try:
        hits = {r.from_text: r.hits for r in store.stats().rules}
    finally:
        store.close()
    assert hits["/a/{rest:path}"] == 10


def exchange(port: int, data: bytes) -> tuple[list[int], float]:
    """The statuses the gateway answers `data` with, and the seconds until it closed the connection."""
    started = time.monotonic()
    raw = raw_request(port, data, timeout=15)
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)], time.monotonic() - started


@pytest.mark.parametrize(("request_bytes", "expected"), [
    (b"GET /a/1 HTTP/1.1\r\n\r\n", [400]),  # RFC 9112 §3.2: HTTP/1.1 needs Host
    (b"GET http://t/a/1 HTTP/1.1\r\n\r\n", [400]),  # ... also with an absolute-form target
    (b"GET /a/1 HTTP/1.1\r\nHost: t\r\nHost: t\r\n\r\n", [400]),  # two Host fields
    (b"GET /a/1 HTTP/1.0\r\nHost: t\r\nHost: u\r\n\r\n", [400]),  # ... in HTTP/1.0 too
    (b"GET /a/1 HTTP/1.1\r\nHost: user@t\r\n\r\n", [400]),  # not a valid uri-host
    (b"GET /a/1 HTTP/1.1\r\nHost: t:port\r\n\r\n", [400]),
    (b"GET /a/1 HTTP/1.1\r\nHost: \xc3\xa9.example\r\n\r\n", [400]),
    (b"GET /a/1 HTTP/2.0\r\nHost: t\r\n\r\n", [505]),
    (b"GET /a/1 HTTP/1.2\r\nHost: t\r\n\r\n", [505]),
    (b"GET /a/1 HTTP/3.0\r\nHost: t\r\n\r\n", [505]),
    (b"GET /a/1 HTTP/0.9\r\n\r\n", [505]),
    (b"GET /a/1\r\n", [505]),  # HTTP/0.9's bare request line: no header will follow
    (b"GET /a/1 HTTP/1.1\r\nHost: t\r\n\r\nGET /a/2\r\n", [308, 505]),  # ... after a request too
    (b"GET /a/1 HTTP/1.1\nHost: t\r\n\r\n", [400]),  # a bare LF ends the request line
    (b"GET /a/1 HTTP/1.1\r\nHost: t\n\r\n", [400]),  # ... or a header line
])
def test_nonconforming_requests_are_refused_at_once(gateway: ServeProcess, request_bytes: bytes,
                                                      expected: list[int]) -> None:
    statuses_seen, seconds = exchange(gateway.port, request_bytes)
    assert statuses_seen == expected
    assert seconds < 3  # closed at once, not after KEEP_ALIVE (5 s) or HEADER_TIMEOUT (10 s)


@pytest.mark.parametrize("request_bytes", [
    b"GET /a/1 HTTP/1.0\r\n\r\n",  # HTTP/1.0 needs no Host
    b"GET /a/1 HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n",  # empty is valid (RFC 9112 §3.2)
    b"GET /a/1 HTTP/1.1\r\nHost: [::1]:8000\r\nConnection: close\r\n\r\n",
    b"GET /a/1 HTTP/1.1\r\nHost: under_score.example:80\r\nConnection: close\r\n\r\n",
    b"GET /a/1 HTTP/1.1\r\nhost: t\r\nConnection: close\r\n\r\n",
])
def test_conforming_host_fields_are_answered(gateway: ServeProcess, request_bytes: bytes) -> None:
    assert exchange(gateway.port, request_bytes)[0] == [308]


def test_version_not_supported_says_what_is(gateway: ServeProcess) -> None:
    status, headers, body = parse_head(raw_request(gateway.port, b"GET /a/1 HTTP/2.0\r\nHost: t\r\n\r\n"))
    assert status == 505 and dict(headers)["content-type"] == "application/json"
    assert b"HTTP/1.1" in body and dict(headers)["connection"] == "close"


def test_a_refused_request_is_read_to_its_end_so_its_answer_arrives(gateway: ServeProcess) -> None:
    # The gateway answers 414 after 16 KiB of target; closing with the rest unread would reset the
    # connection before the client reads the answer (RFC 9112 §9.6).
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(b"GET /a/" + b"x" * 200_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        started = time.monotonic()
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
        assert raw.startswith(b"HTTP/1.1 414 ") and time.monotonic() - started < 3


def test_long_pipelined_request_lines_across_read_slices_are_all_answered(gateway: ServeProcess) -> None:
    """Request lines of every length around the parser's 1 KiB slices and 4 KiB reads: a slice that
    starts inside a long target and ends with ' HTTP/1.1\\r\\n' is the end of a versioned line, never
    an HTTP/0.9 request (it was answered 505 and the connection closed mid-pipeline)."""
    for slices in (2, 3):  # a request line ending exactly at a slice boundary
        line = f"GET /{'z' * (1024 * slices - 16)} HTTP/1.1\r\n".encode()
        assert len(line) == 1024 * slices
        raw = raw_request(gateway.port, line + b"Host: t\r\nConnection: close\r\n\r\n")
        assert statuses(raw) == [404], raw[:200]
    count = 600
    requests = [f"GET /nf/{'z' * (1000 + n)} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for n in range(count - 1)]
    requests.append(b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    raw = raw_request(gateway.port, b"".join(requests), timeout=30)
    got = statuses(raw)
    assert len(got) == count and set(got) == {404}, (len(got), sorted(set(got)))
