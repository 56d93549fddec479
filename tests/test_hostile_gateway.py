"""Hostile clients on the redirect port, against the real `redirectory serve` on every `--server`.

- Unique large requests matching a placeholder rule must not grow a worker without bound: the
  response cache holds at most CACHE_BYTES of entries (an entry over CACHE_ENTRY_MAX_BYTES is
  never cached), so the worker's RSS stays within that plus a margin, whatever the client sends.
- A WebSocket upgrade request is answered as any other request, never 500 (the gateway has no
  WebSocket endpoints).
"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway_process import ServeProcess, cli, free_port, start_serve
from redirectory.gateway.app import CACHE_BYTES, CACHE_ENTRY_MAX_BYTES
from redirectory.serve import SERVERS

MIB = 1024 * 1024
UPGRADE = (b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
#: What the worker may grow beyond the cache's bound: allocator slack, buffers, the odd arena.
MARGIN = 32 * MIB

RULES = """\
rules:
  - from: /go/{rest:path}
    to: /dest/{rest}
    status: 308
  - from: /q/{x}
    to: /r/{x}
    status: 308
    query: drop
"""


@pytest.fixture(scope="module", params=SERVERS)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp(f"hostile-{request.param}")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    process = start_serve(tmp, "--rules", str(rules), "--server", request.param)
    yield process
    process.stop()


def _server(served: ServeProcess) -> str:
    args = [str(arg) for arg in served.proc.args]  # type: ignore[union-attr]
    return args[args.index("--server") + 1]


def _tree_rss(pid: int) -> int:
    """VmRSS of a process and all its descendants (granian's worker is a child), in bytes."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        status = Path(f"/proc/{current}/status").read_text()
        total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) * 1024
        for task in Path(f"/proc/{current}/task").iterdir():
            todo += [int(child) for child in (task / "children").read_text().split()]
    return total


def _pipelined(port: int, targets: Iterable[bytes], window: int = 32) -> Counter[bytes]:
    """GET every target, pipelined on one connection with at most `window` requests unanswered,
    reading answers while sending (a server stops reading from a client that does not read, and
    uvicorn queues every request it has read); the status codes answered."""
    requests = (b"GET %s HTTP/1.1\r\nHost: gateway\r\n\r\n" % target for target in targets)
    statuses: Counter[bytes] = Counter()
    sent, exhausted, outgoing, received = 0, False, b"", bytearray()
    deadline = time.monotonic() + 120
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, selectors.DefaultSelector() as sel:
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while not exhausted or outgoing or statuses.total() < sent:
            assert time.monotonic() < deadline, f"{statuses.total()} of {sent} answers after 120 s"
            for _key, mask in sel.select(timeout=5):
                if mask & selectors.EVENT_WRITE:
                    while len(outgoing) < 65536 and not exhausted and sent - statuses.total() < window:
                        request = next(requests, None)
                        exhausted = request is None
                        if request is not None:
                            outgoing, sent = outgoing + request, sent + 1
                    outgoing = outgoing[sock.send(outgoing):] if outgoing else b""
                    if not outgoing:  # until answers make room in the window, or for good
                        sel.modify(sock, selectors.EVENT_READ)
                if mask & selectors.EVENT_READ:
                    data = sock.recv(1 << 20)
                    assert data, f"the gateway closed the connection after {statuses.total()} answers"
                    received += data
                    while (end := received.find(b"\r\n\r\n")) != -1:  # redirects have no body
                        statuses[bytes(received[9:12])] += 1
                        del received[: end + 4]
                    if not exhausted:
                        sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    return statuses


def _head(port: int, request: bytes) -> bytes:
    """The response head to one request (read until its end: the server may keep the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            if not data:
                break
            received += data
    return received


def _answers_normally(served: ServeProcess) -> None:
    response = httpx.get(served.base + "/go/normal/request?x=1", timeout=10)
    assert (response.status_code, response.headers["location"]) == (308, "/dest/normal/request?x=1")


# The cache is the same code on every server: the default one and an ASGI one (whose entries are
# larger) measure it.
@pytest.mark.parametrize("served", ["httptools", "uvicorn"], indirect=True)
def test_unique_large_requests_stay_within_the_cache_bound(served: ServeProcess) -> None:
    _answers_normally(served)
    before = _tree_rss(served.proc.pid)

    # The attack: ~16 KB unique requests (long path + long query), each a ~16 KB Location.
    # Never cached (over CACHE_ENTRY_MAX_BYTES); unbounded, these grew a worker by 32-66 KiB each.
    pad = b"q" * 7900
    huge = [b"/go/%06d/%s?%s" % (i, b"p" * 7900, pad) for i in range(1000)]
    assert _pipelined(served.port, huge) == {b"308": len(huge)}
    _answers_normally(served)
    grown = _tree_rss(served.proc.pid) - before
    assert grown < 16 * MIB, f"{len(huge)} requests of 16 KB grew the gateway by {grown / MIB:.0f} MiB"

    # Unique requests whose entries are just under the per-entry limit (a long query the rule
    # drops: cheap to answer), three times the cache's budget of them: it starts over when full.
    query = b"k" * (CACHE_ENTRY_MAX_BYTES - 1200)
    count = 3 * CACHE_BYTES // CACHE_ENTRY_MAX_BYTES
    assert _pipelined(served.port, (b"/q/%08d?%s" % (i, query) for i in range(count))) == {b"308": count}
    _answers_normally(served)
    grown = _tree_rss(served.proc.pid) - before
    assert grown < CACHE_BYTES + MARGIN, f"{count} cacheable requests grew the gateway by {grown / MIB:.0f} MiB"


def test_a_websocket_upgrade_is_answered_as_any_request(served: ServeProcess) -> None:
    upgrade = UPGRADE
    for target, status in ((b"/go/chat", b"308"), (b"/elsewhere", b"404")):
        answer = _head(served.port, b"GET %s HTTP/1.1\r\nHost: gateway\r\n%s\r\n" % (target, upgrade))
        assert answer.startswith(b"HTTP/1.1 %s " % status), answer[:200]
    _answers_normally(served)
    if _server(served) == "uvicorn":  # its per-request upgrade warning is logged once
        answer = _head(served.port, b"GET /go/x HTTP/1.1\r\nHost: gateway\r\n%s\r\n" % upgrade)
        assert answer.startswith(b"HTTP/1.1 308 ")
        assert served.output().count("Unsupported upgrade request") == 1, served.output()
        assert "No supported WebSocket library" not in served.output()


def test_the_asgi_app_under_a_websocket_server_answers_upgrades_over_http(tmp_path: Path) -> None:
    """`create_app` run by the operator's own uvicorn, WebSockets on: the upgrade gets the redirect
    (ASGI's websocket.http.response extension), never a 500 or a handshake."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    database = f"sqlite:///{tmp_path}/gateway.db"
    assert cli("rules", "apply", str(rules), "--database", database).returncode == 0
    port = free_port()
    log = (tmp_path / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "redirectory.gateway.app:create_app", "--factory", "--port", str(port),
         "--ws", "websockets-sansio", "--lifespan", "on"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "REDIRECTORY_DATABASE_URL": database})
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "uvicorn.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/go/x", timeout=2).status_code == 308:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        answer = _head(port, b"GET /go/chat?x=1 HTTP/1.1\r\nHost: gateway\r\n" + UPGRADE + b"\r\n")
        assert answer.startswith(b"HTTP/1.1 308 ") and b"\r\nlocation: /dest/chat?x=1\r\n" in answer.lower(), answer
        assert _head(port, b"GET /elsewhere HTTP/1.1\r\nHost: gateway\r\n" + UPGRADE + b"\r\n").startswith(
            b"HTTP/1.1 404 ")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
