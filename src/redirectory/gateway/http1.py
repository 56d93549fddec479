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
- RFC 9112: an HTTP/1.1 request without Host, any request with two Host fields or an invalid one
  gets 400 (§3.2); a version other than HTTP/1.0 and HTTP/1.1 gets 505, and so does HTTP/0.9's
  bare request line (`GET /x`), at once; a line ended by a bare LF gets 400 (llhttp is strict);
- an idle keep-alive connection closes after KEEP_ALIVE seconds, a request whose head does not
  arrive within HEADER_TIMEOUT seconds too (slowloris);
- fairness: a read that fills the READ_BUFFER is parsed, then that client waits one turn of the
  event loop, so a client pipelining a flood of requests cannot delay everybody else's answers;
- a client that does not read its responses (back-pressure): once WRITE_HIGH bytes of responses
  wait in the worker, it stops reading from that client and parsing what it already read (at most
  READ_BUFFER bytes wait unparsed; answers to one FEED_SLICE may go past WRITE_HIGH); once the
  client has accepted no byte for SEND_TIMEOUT seconds, the connection is reset (RST), which also
  frees the kernel's buffers;
- at most `max_connections` connections per worker (GatewayConfig; fewer if the open-file limit
  cannot be raised to fit): a new connection beyond that is closed at once;
- a refused request (400, 414, 431, 505) or a body not read: the answer, then a half-close, and
  what the client still sends is discarded until it closes or LINGER seconds pass, so that it
  reads the answer instead of a reset (RFC 9112 §9.6);
- hostile-client events (the connection limit, send timeouts) are logged once when a burst starts,
  then as a count at most once a minute and when the burst ends, never once per connection;
- SIGTERM/SIGINT: stop accepting, close idle connections, flush hit counts, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import resource
import signal
import socket
import struct
import time
from email.utils import formatdate
from typing import Any

import httptools

from redirectory.gateway import access
from redirectory.gateway.app import Gateway
from redirectory.gateway.config import GatewayConfig
from redirectory.rules.engine import SERVER_HEADERS, Response, error_body
from redirectory.semantics import TABLE, reason_phrase

log = logging.getLogger("redirectory.http1")

MAX_TARGET = 16 * 1024
MAX_HEADERS = 64 * 1024
MAX_BODY = 1024 * 1024
KEEP_ALIVE = 5.0
HEADER_TIMEOUT = 10.0
#: A client that has accepted no byte of its responses for this long is not reading: reset it.
SEND_TIMEOUT = 10.0
WRITE_HIGH = 16 * 1024  # responses waiting in the worker beyond which reading from the client stops
WRITE_LOW = 4 * 1024  # ... and below which it resumes
SEND_BUFFER = 64 * 1024  # the kernel's send buffer per connection (SO_SNDBUF; Linux doubles it)
READ_BUFFER = 4 * 1024  # most bytes read from a client at once (one buffer per worker)
FEED_SLICE = 1024  # most bytes parsed before checking back-pressure again
RESERVED_FDS = 64  # files a worker keeps open beside its connections (listener, database, logs)
BURST_QUIET = 10.0  # seconds without the event that end a burst in the log
BURST_REPORT = 60.0  # while a burst lasts, its count is logged this often
HTTP_VERSIONS = ("1.1", "1.0")
LINGER = 2.0  # seconds a refused request's connection keeps discarding what the client still sends
VALID_HOSTS_KEPT = 256  # Host values remembered as valid per worker (forgotten all at once beyond)

#: Status line reason phrases, from `semantics.reason_phrase` (never retyped).
_REASONS = {code: reason_phrase(code) for code in (*TABLE, 400, 404, 414, 431, 500, 505)}


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
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST and drops the buffers

#: RFC 9112 §3.2 / RFC 3986 §3.2.2: Host = uri-host [ ":" port ] (an IP literal, or a reg-name of
#: unreserved, pct-encoded and sub-delims characters; empty is valid).
_HOST = re.compile(rb"(?:\[[0-9A-Za-z._~!$&'()*+,;=:-]+\]|[0-9A-Za-z._~%!$&'()*+,;=-]*)(?::[0-9]*)?")


class _Stop(Exception):
    """Raised from a parser callback after the request was answered with an error: parse no further."""


class _Burst:
    """A hostile-client event in the log: one line when a burst of it starts, then the count of
    further events at most every BURST_REPORT seconds and when BURST_QUIET seconds pass without one."""

    def __init__(self, level: int, first: str, more: str):
        self.level, self.first, self.more = level, first, more  # `more`: {count} and {seconds} fields
        self.active = False
        self.count = 0
        self.last = self.reported = 0.0

    def note(self, **fields: object) -> None:
        now = time.monotonic()
        if self.active:
            self.count += 1
        else:
            self.active, self.reported = True, now
            log.log(self.level, self.first.format(**fields))
        self.last = now

    def tick(self, now: float) -> None:
        if not self.active:
            return
        ended = now - self.last >= BURST_QUIET
        if self.count and (ended or now - self.reported >= BURST_REPORT):
            log.log(self.level, self.more.format(count=self.count, seconds=now - self.reported))
            self.count, self.reported = 0, now
        if ended:
            self.active = False


class GatewayProtocol(asyncio.BufferedProtocol):
    """One client connection."""

    __slots__ = (
        "server", "gateway", "transport", "parser", "client_ip", "url", "header_bytes", "headers",
        "hosts", "head_done", "version", "body_bytes", "answered", "closing", "busy_since", "last_active", "paused",
        "pending", "written", "sent", "stalled_since", "linger_until", "access_log", "began", "metrics",
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
        self.hosts = 0  # Host fields in the current request
        self.head_done = True  # the current request's head is parsed (or no request has begun)
        self.version = "1.1"  # the current request's HTTP version, once its head is parsed
        self.body_bytes = 0
        self.answered = False
        self.closing = False
        self.busy_since = 0.0  # when the current request's first byte arrived (0: idle)
        self.last_active = time.monotonic()
        self.paused = False  # WRITE_HIGH bytes wait to be sent: not reading, not parsing
        self.pending = b""  # bytes read but not parsed while paused
        self.written = 0  # bytes handed to the transport
        self.sent = 0  # bytes the kernel had taken when a stall was last checked
        self.stalled_since = 0.0  # since when the client accepted no byte while some wait (0: none wait)
        self.linger_until = 0.0  # half-closed after an error: what the client still sends is discarded until then
        self.access_log = server.config.access_log
        self.metrics = server.gateway.metrics  # None: metrics off (gateway/metrics.py)
        self.began = False  # a request began in the piece being parsed

    # -- connection ----------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        server = self.server
        if len(server.connections) >= server.max_connections:
            self.closing = True
            transport.close()
            server.refused.note()
            return
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else None
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None

    def pause_writing(self) -> None:
        if self.transport is not None and not self.paused:
            self.paused = True
            if not self.closing:
                self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is None or not self.paused:
            return
        self.paused = False
        if self.pending:
            data, self.pending = self.pending, b""
            if self.busy_since:  # the head waited for us, not for the client
                self.busy_since = time.monotonic()
            self._feed(data)
        if not self.paused and not self.closing and self.transport is not None:
            self.transport.resume_reading()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server.read_buffer  # one per worker: each read is parsed (or copied) at once

    def buffer_updated(self, nbytes: int) -> None:
        if self.closing:  # lingering: discard what comes
            if nbytes == READ_BUFFER and self.linger_until:
                self._yield_turn()
            return
        if not self.busy_since:
            self.busy_since = time.monotonic()
        if nbytes <= FEED_SLICE:  # usually one whole request: parse it at once
            self._parse(self.server.read_buffer[:nbytes])
            return
        self._feed(self.server.read_buffer[:nbytes])
        if nbytes == READ_BUFFER and not self.paused and not self.closing:
            self._yield_turn()

    def _yield_turn(self) -> None:
        """A full buffer: more is waiting (a pipelining client). Let every other connection have its
        turn before this one is read again, or one client's flood delays everybody's answers."""
        if self.transport is not None:
            self.transport.pause_reading()
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        if self.transport is not None and not self.paused and (not self.closing or self.linger_until):
            self.transport.resume_reading()

    def _feed(self, data: memoryview | bytes) -> None:
        """Parse `data` FEED_SLICE bytes at a time; once paused, keep the rest for resume_writing."""
        for pos in range(0, len(data), FEED_SLICE):
            if self.closing:
                return
            if self.paused:
                self.pending = bytes(data[pos:])
                return
            if not self._parse(data[pos : pos + FEED_SLICE]):
                return

    def _parse(self, piece: memoryview | bytes) -> bool:
        """Feed one piece (at most FEED_SLICE bytes) to the parser; False when it was refused."""
        self.began = False
        try:
            self.parser.feed_data(piece)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._parse_error(exc)
            return False
        if not self.head_done and self.url:
            self._check_request_line(piece)
        return True

    def _check_request_line(self, piece: memoryview | bytes) -> None:
        """A request whose head is not complete yet: answer HTTP/0.9 (no header will come) at once."""
        if not self.closing and _bare_request_line(bytes(piece), self.parser.get_http_version(), self.began):
            self._fail(505, "httpVersionNotSupported", "HTTP/0.9 is not supported: send HTTP/1.1")

    def _parse_error(self, exc: Exception) -> None:
        if self.closing or isinstance(exc, httptools.HttpParserUpgrade):
            return  # a callback has answered (an upgrade request too) and closed already
        if "HTTP version" in str(exc):  # llhttp: "Invalid HTTP version" (HTTP/1.2, HTTP/3.0, ...)
            self._fail(505, "httpVersionNotSupported", _VERSION_DETAIL)
        else:
            self._fail(400, "badRequest", "The request is not valid HTTP/1.1")

    # -- parser callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.closing:
            raise _Stop  # pipelined after a request that closes the connection
        self.began = True  # in the piece being parsed (see _bare_request_line)
        self.url = b""
        self.header_bytes = 0
        self.headers = {}
        self.hosts = 0
        self.head_done = False
        self.body_bytes = 0
        self.answered = False

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > MAX_TARGET:
            self._fail(414, "uriTooLong", f"The request target is longer than {MAX_TARGET} bytes")
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > MAX_HEADERS:
            self._fail(431, "headersTooLarge", f"The header section is larger than {MAX_HEADERS} bytes")
            raise _Stop
        lowered = name.lower()
        if lowered in _WANTED:
            if lowered == b"host":
                self.hosts += 1
            elif lowered in _LISTS and lowered in self.headers:  # one list, in order (RFC 9110 §5.3)
                value = self.headers[lowered] + b"," + value
            self.headers[lowered] = value

    def on_headers_complete(self) -> None:
        self.head_done = True
        headers = self.headers
        self.version = version = self.parser.get_http_version()
        if version not in HTTP_VERSIONS:
            self._fail(505, "httpVersionNotSupported", _VERSION_DETAIL)
            raise _Stop
        if self.hosts != 1 or headers[b"host"] not in self.server.valid_hosts:
            problem = _host_problem(self.hosts, headers.get(b"host"), version)
            if problem:
                self._fail(400, "badRequest", problem)
                raise _Stop
            self.server.remember_host(headers.get(b"host"))
        length = headers.get(b"content-length")
        too_big = False
        if length is not None:
            try:
                too_big = int(length) > MAX_BODY
            except ValueError:
                too_big = False  # httptools rejects it
        if too_big or self.parser.should_upgrade():
            self._respond(close=True, linger=True)
        elif headers.get(b"expect", b"").lower() == b"100-continue" and length not in (None, b"0"):
            self._write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > MAX_BODY and not self.answered:
            self._respond(close=True, linger=True)

    def on_message_complete(self) -> None:
        if not self.answered:
            self._respond(close=not self.parser.should_keep_alive())
        self.busy_since = 0.0
        self.last_active = time.monotonic()

    # -- answering -----------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        self.written += len(data)
        self.transport.write(data)

    def _respond(self, close: bool, linger: bool = False) -> None:
        if self.closing:
            return
        try:
            self._answer(close, linger)
        except Exception:  # a bug: log it, tell the client nothing but 500
            log.exception("cannot answer %r", self.url[:200])
            self._fail(500, "internal", "The gateway could not answer this request")

    def _answer(self, close: bool, linger: bool) -> None:
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
        elif self.version == "1.0":
            tail = _KEEP_10
        else:
            tail = _KEEP
        data = b"".join((head, _Clock.line, tail, b"" if method == "HEAD" else body))
        self.written += len(data)
        transport.write(data)
        metrics = self.metrics
        if metrics is not None:
            metrics.answered(head[9:12], rule_id is not None, path, self.busy_since or self.last_active)
        if self.access_log:  # started at its first byte or, pipelined, when the one before was answered
            access.log_request(method, path, int(head[9:12]), rule_id, self.busy_since or self.last_active,
                               self.headers.get(b"x-request-id"), query)
        if tail is _CLOSE:
            self._close(linger)

    def _fail(self, status: int, key: str, detail: str) -> None:
        if self.transport is not None and not self.closing:
            self.answered = True
            self._write(_error(status, key, detail))
            if self.metrics is not None:
                self.metrics.failed(status)
            if self.access_log:
                self._log_failure(status)
        self._close(linger=True)

    def _log_failure(self, status: int) -> None:
        # The parser has read the method once it reports a URL byte; before that it is unknown.
        url = self.url
        method = self.parser.get_method().decode("ascii", "replace") if url else "-"
        path, _, query = url.partition(b"?")
        access.log_request(method, path or b"-", status, None, self.busy_since or self.last_active,
                           self.headers.get(b"x-request-id"), query)

    def _close(self, linger: bool = False) -> None:
        """Close once what was written is sent. `linger`: the client may still be sending (the
        request was refused or its body not read), and closing with its bytes unread would reset
        the connection before it reads the answer; so half-close, and discard what it sends until
        it closes or LINGER seconds pass (RFC 9112 §9.6; nginx's lingering_close)."""
        if self.closing:
            return
        self.closing = True
        transport = self.transport
        if transport is None:
            return
        if linger and not self.paused and transport.can_write_eof():
            self.linger_until = time.monotonic() + LINGER
            transport.write_eof()
        else:
            transport.close()

    def _reset(self) -> None:
        """Abort with RST: the kernel drops what the client never took (nginx: reset_timedout_connection)."""
        self.closing = True
        transport = self.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            transport.abort()


_WANTED = frozenset({b"host", b"x-forwarded-host", b"x-forwarded-proto", b"content-length", b"expect",
                     b"x-request-id"})  # the access log's request id
#: Wanted list fields: several lines of one are joined with commas.
_LISTS = frozenset({b"x-forwarded-host", b"x-forwarded-proto"})
_VERSION_DETAIL = "Only HTTP/1.1 and HTTP/1.0 are served: send HTTP/1.1"


#: A request line without an HTTP version (HTTP/0.9) at the end of what was read.
#: A request line without a version ending a piece: after the end of the line before it, or (when the
#: request began in this piece) at the piece's start. A piece that starts inside a long target does
#: not count from its start: "...zzz HTTP/1.1\r\n" is the end of a versioned line, not HTTP/0.9.
_HTTP09_LINE = re.compile(rb"\n[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ \r\n]+\r?\n\Z")
_HTTP09_PIECE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ \r\n]+\r?\n")


def _bare_request_line(piece: bytes, version: str, began_here: bool = True) -> bool:
    """Whether the request line that `piece` ends ended without a version: an HTTP/0.9 client sends
    no header, so waiting for the end of the head would keep it until HEADER_TIMEOUT. llhttp reports
    version 0.9 only once a byte follows the line; until then a fresh parser reports 0.0 and a
    parser that read a request before reports that request's version."""
    if version == "0.0":
        return b"\n" in piece
    if began_here and _HTTP09_PIECE.fullmatch(piece) is not None:
        return True
    return _HTTP09_LINE.search(piece) is not None


def _host_problem(count: int, host: bytes | None, version: str) -> str | None:
    """What makes the Host fields of a request invalid (RFC 9112 §3.2), or None."""
    if count > 1:
        return "The request has more than one Host header field"
    if host is None:
        return "An HTTP/1.1 request needs a Host header field" if version == "1.1" else None
    if _HOST.fullmatch(host) is None:
        return "The Host header field is not a valid host[:port]"
    return None


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
        self.max_connections = config.max_connections
        self.valid_hosts: set[bytes] = set()  # Host values seen valid (most clients send one of a few)
        self.read_buffer = memoryview(bytearray(READ_BUFFER))
        self.stopping = False
        self._stopped: asyncio.Event | None = None
        self.stop_signal: int | None = None  # the signal that stopped it (for serve's shutdown line)
        pid = os.getpid()
        self.refused = _Burst(
            logging.WARNING,
            f"worker {pid}: {self.max_connections} connections open, the limit (--max-connections): "
            "new connections are closed at once until some close",
            f"worker {pid}: closed {{count}} more new connections at the limit of {self.max_connections} "
            "in {seconds:.0f} s",
        )
        self.send_timeouts = _Burst(
            logging.INFO,
            f"worker {pid}: reset the connection of {{client}}: it took no byte of its responses for "
            f"{SEND_TIMEOUT:g} s",
            f"worker {pid}: reset {{count}} more connections whose clients took no byte of their responses "
            f"for {SEND_TIMEOUT:g} s, in {{seconds:.0f}} s",
        )

    def _stop(self, signum: int) -> None:
        self.stop_signal = signum
        if self._stopped is not None:
            self._stopped.set()

    def remember_host(self, host: bytes | None) -> None:
        if host is not None:
            if len(self.valid_hosts) >= VALID_HOSTS_KEPT:
                self.valid_hosts.clear()
            self.valid_hosts.add(host)

    async def serve(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self.max_connections = _fit_open_files(self.max_connections)
        # Accepted connections inherit it: the kernel holds at most this much of a client's responses.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        await self.gateway.startup()
        server = await loop.create_server(lambda: GatewayProtocol(self), sock=sock, backlog=2048)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop, sig)
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
                if conn.transport is None:
                    continue
                waiting = conn.transport.get_write_buffer_size()
                if waiting:
                    sent = conn.written - waiting
                    if sent != conn.sent or not conn.stalled_since:
                        conn.sent, conn.stalled_since = sent, now
                    elif now - conn.stalled_since > SEND_TIMEOUT:
                        self.send_timeouts.note(client=conn.client_ip)
                        conn._reset()
                    continue  # the send timeout governs a client that does not read
                conn.stalled_since = 0.0
                if conn.linger_until:
                    if now > conn.linger_until:
                        conn.transport.close()
                    continue
                if conn.busy_since:
                    if now - conn.busy_since > HEADER_TIMEOUT and not conn.answered:
                        conn._close()
                elif now - conn.last_active > KEEP_ALIVE:
                    conn._close()
            self.refused.tick(now)
            self.send_timeouts.tick(now)


def _fit_open_files(wanted: int) -> int:
    """`wanted` connections, or as many as the open-file limit allows once its soft limit is raised
    as far as the hard one (systemd's default soft limit is 1024) allows."""
    need = wanted + RESERVED_FDS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return wanted
    raised = need if hard == resource.RLIM_INFINITY else min(need, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    if soft >= need:
        return wanted
    fitted = max(1, soft - RESERVED_FDS)
    log.warning("worker %s: the open-file limit (%s) allows %s connections, not %s: raise it "
                "(ulimit -n, systemd LimitNOFILE=) or lower --max-connections", os.getpid(), soft, fitted, wanted)
    return fitted


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


def run_worker(config: GatewayConfig, sock: socket.socket) -> int | None:
    """Serve until SIGTERM/SIGINT in this process (one worker); the signal that stopped it."""
    import uvloop

    server = Http1Server(config)
    uvloop.run(server.serve(sock))
    return server.stop_signal
