"""A lean HTTP/1.1 server for the gateway: uvloop transports + the httptools parser, no ASGI layer.

The gateway's answers never depend on the request body and never stream, so the ASGI machinery
(a task, scope and message dicts per request) is pure overhead here; this server parses with
httptools (the parser uvicorn uses) and writes each response from a per-rule cache of bytes.
It is the default (`--server httptools`); uvicorn and granian remain selectable.

HTTP/1.1 behaviour:
- persistent connections (HTTP/1.1 by default, HTTP/1.0 with `Connection: keep-alive`), pipelined
  requests answered in order; `Connection: close` honoured;
- request bodies are read and discarded; `Expect: 100-continue` gets `100 Continue`; a body larger
  than MAX_BODY gets the final response at once and the connection is closed (RFC 9110 §15.2.1);
- limits: request target MAX_TARGET bytes (414), header section MAX_HEADERS bytes (431), malformed
  requests 400; each then closes the connection;
- an idle keep-alive connection closes after KEEP_ALIVE seconds, a request whose head does not
  arrive within HEADER_TIMEOUT seconds too (slowloris);
- writes pause reading while the client does not read its responses (back-pressure);
- SIGTERM/SIGINT: stop accepting, close idle connections, flush hit counts, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from email.utils import formatdate
from typing import Any

import httptools

from redirectory.gateway import access
from redirectory.gateway.app import Gateway
from redirectory.gateway.config import GatewayConfig
from redirectory.rules.engine import SERVER_HEADERS, Response, error_body
from redirectory.semantics import TABLE

log = logging.getLogger("redirectory.http1")

MAX_TARGET = 16 * 1024
MAX_HEADERS = 64 * 1024
MAX_BODY = 1024 * 1024
KEEP_ALIVE = 5.0
HEADER_TIMEOUT = 10.0

_REASONS = {
    **{code: s.reason for code, s in TABLE.items()},
    400: "Bad Request",
    404: "Not Found",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


def render_http1(response: Response) -> tuple[bytes, bytes]:
    """(status line + headers without Date/Connection, body): cached per request key."""
    lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}\r\n"]
    lines += [f"{k}: {v}\r\n" for k, v in response.headers]
    return "".join(lines).encode("latin-1"), response.body


def _error(status: int, key: str, detail: str) -> bytes:
    body = error_body("urn:redirectory:error:", status, _REASONS[status], key, detail)
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
        f"content-language: en\r\ncontent-length: {len(body)}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in SERVER_HEADERS)
        + f"date: {_Clock.value}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _Clock:
    """The Date header value, refreshed once per second."""

    value = formatdate(usegmt=True)
    line = f"date: {value}\r\n".encode()

    @classmethod
    def tick(cls) -> None:
        cls.value = formatdate(usegmt=True)
        cls.line = f"date: {cls.value}\r\n".encode()


_KEEP = b"\r\n"
_KEEP_10 = b"connection: keep-alive\r\n\r\n"
_CLOSE = b"connection: close\r\n\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class GatewayProtocol(asyncio.Protocol):
    """One client connection."""

    __slots__ = (
        "server", "gateway", "transport", "parser", "client_ip", "url", "header_bytes", "headers",
        "body_bytes", "answered", "closing", "busy_since", "last_active", "paused", "access_log",
    )

    def __init__(self, server: Http1Server):
        self.server = server
        self.gateway = server.gateway
        self.transport: Any = None
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip: str | None = None
        self.url = b""
        self.header_bytes = 0
        self.headers: dict[bytes, bytes] = {}
        self.body_bytes = 0
        self.answered = False
        self.closing = False
        self.busy_since = 0.0  # when the current request's first byte arrived (0: idle)
        self.last_active = time.monotonic()
        self.paused = False
        self.access_log = server.config.access_log

    # -- connection ----------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else None
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None

    def pause_writing(self) -> None:
        if self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and self.paused:
            self.paused = False
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if not self.busy_since:
            self.busy_since = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # answered at on_message_complete/headers; the connection closes below
        except httptools.HttpParserError:
            if not self.closing:  # limits (414, 431) have answered and closed already
                self._fail(400, "badRequest", "The request is not valid HTTP/1.1")

    # -- parser callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url = b""
        self.header_bytes = 0
        self.headers = {}
        self.body_bytes = 0
        self.answered = False

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > MAX_TARGET:
            self._fail(414, "uriTooLong", f"The request target is longer than {MAX_TARGET} bytes")
            raise httptools.HttpParserError("target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > MAX_HEADERS:
            self._fail(431, "headersTooLarge", f"The header section is larger than {MAX_HEADERS} bytes")
            raise httptools.HttpParserError("headers too large")
        lowered = name.lower()
        if lowered in _WANTED:
            if lowered in _LISTS and lowered in self.headers:  # one list, in order (RFC 9110 §5.3)
                value = self.headers[lowered] + b"," + value
            self.headers[lowered] = value

    def on_headers_complete(self) -> None:
        headers = self.headers
        length = headers.get(b"content-length")
        too_big = False
        if length is not None:
            try:
                too_big = int(length) > MAX_BODY
            except ValueError:
                too_big = False  # httptools rejects it
        if too_big or self.parser.should_upgrade():
            self._respond(close=True)
        elif headers.get(b"expect", b"").lower() == b"100-continue" and length not in (None, b"0"):
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > MAX_BODY and not self.answered:
            self._respond(close=True)

    def on_message_complete(self) -> None:
        if not self.answered:
            self._respond(close=not self.parser.should_keep_alive())
        self.busy_since = 0.0
        self.last_active = time.monotonic()

    # -- answering -----------------------------------------------------------------------
    def _respond(self, close: bool) -> None:
        try:
            self._answer(close)
        except Exception:  # a bug: log it, tell the client nothing but 500
            log.exception("cannot answer %r", self.url[:200])
            self._fail(500, "internal", "The gateway could not answer this request")

    def _answer(self, close: bool) -> None:
        self.answered = True
        transport = self.transport
        if transport is None:
            return
        url = self.url
        qpos = url.find(b"?")
        if qpos == -1:
            path, query = url, b""
        else:
            path, query = url[:qpos], url[qpos + 1 :]
        hpos = query.find(b"#")
        if hpos != -1:
            query = query[:hpos]
        method = self.parser.get_method().decode("ascii", "replace")
        gateway = self.gateway
        if path[:1] != b"/":
            path = _origin_form(path)
        if gateway.wants_headers:
            h = self.headers
            host = h.get(b"host")
            fwd_host = h.get(b"x-forwarded-host")
            fwd_proto = h.get(b"x-forwarded-proto")
            (head, body), rule_id = gateway.answer(
                method, path, query,
                host.decode("latin-1") if host is not None else None,
                fwd_proto.decode("latin-1") if fwd_proto is not None else None,
                fwd_host.decode("latin-1") if fwd_host is not None else None,
                self.client_ip,
            )
        else:
            (head, body), rule_id = gateway.answer(method, path, query)
        if rule_id is not None:
            gateway.counters.hit(rule_id, time.time())
        if close or self.server.stopping:
            tail = _CLOSE
        elif self.parser.get_http_version() == "1.0":
            tail = _KEEP_10
        else:
            tail = _KEEP
        transport.write(b"".join((head, _Clock.line, tail, b"" if method == "HEAD" else body)))
        if self.access_log:  # started at its first byte or, pipelined, when the one before was answered
            access.log_request(method, path, int(head[9:12]), rule_id, self.busy_since or self.last_active)
        if tail is _CLOSE:
            self._close()

    def _fail(self, status: int, key: str, detail: str) -> None:
        if self.transport is not None and not self.closing:
            self.answered = True
            self.transport.write(_error(status, key, detail))
            if self.access_log:
                self._log_failure(status)
        self._close()

    def _log_failure(self, status: int) -> None:
        # The parser has read the method once it reports a URL byte; before that it is unknown.
        url = self.url
        method = self.parser.get_method().decode("ascii", "replace") if url else "-"
        access.log_request(method, url.split(b"?", 1)[0] or b"-", status, None,
                           self.busy_since or self.last_active)

    def _close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


_WANTED = frozenset({b"host", b"x-forwarded-host", b"x-forwarded-proto", b"content-length", b"expect"})
#: Wanted list fields: several lines of one are joined with commas.
_LISTS = frozenset({b"x-forwarded-host", b"x-forwarded-proto"})


def _origin_form(target: bytes) -> bytes:
    """An absolute-form target (`http://host/path`) or `*` reduced to its path."""
    if target == b"*":
        return b"/*"
    scheme_end = target.find(b"://")
    if scheme_end != -1:
        slash = target.find(b"/", scheme_end + 3)
        return target[slash:] if slash != -1 else b"/"
    return b"/" + target


class Http1Server:
    """The gateway served on one listening socket in this process."""

    def __init__(self, config: GatewayConfig):
        self.config = config
        self.gateway = Gateway(config, render=render_http1)
        self.connections: set[GatewayProtocol] = set()
        self.stopping = False
        self._stopped: asyncio.Event | None = None

    async def serve(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        await self.gateway.startup()
        server = await loop.create_server(lambda: GatewayProtocol(self), sock=sock, backlog=2048)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopped.set)
        housekeeping = asyncio.create_task(self._housekeeping())
        log.info("worker %s serving http://%s:%s", os.getpid(), self.config.host, self.config.port)
        await self._stopped.wait()
        self.stopping = True
        server.close()
        for conn in list(self.connections):
            if not conn.busy_since:
                conn._close()
        deadline = time.monotonic() + 5
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        housekeeping.cancel()
        await self.gateway.shutdown()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            _Clock.tick()
            now = time.monotonic()
            for conn in list(self.connections):
                if conn.busy_since:
                    if now - conn.busy_since > HEADER_TIMEOUT and not conn.answered:
                        conn._close()
                elif now - conn.last_active > KEEP_ALIVE:
                    conn._close()


def listen(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def run_worker(config: GatewayConfig, sock: socket.socket) -> None:
    """Serve until SIGTERM/SIGINT in this process (one worker)."""
    import uvloop

    uvloop.run(Http1Server(config).serve(sock))
