"""Live input: probe URLs hop by hop (httpx, follow_redirects=False), then re-request
conditionally to test 304 behaviour. Polite: an identifying User-Agent, a rate limit, timeouts,
safe methods only unless `allow_unsafe` with a host allow-list.

A 304 is re-read over a raw socket: HTTP clients stop at the header section of a 304 (RFC 9112
§6.3), so content a server wrongly sends after it is only visible on the wire.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from redirectory.check import VERSION
from redirectory.check.checks._util import REDIRECTS, SAFE
from redirectory.check.lifecycle import successor_targets
from redirectory.check.lint import notes
from redirectory.check.model import Exchange, Location, Request, Response, origin, without_fragment
from redirectory.validators import EntityTag, format_http_date

#: Identifies the checker to the servers it probes (product token and a comment, RFC 9110 §10.1.5).
USER_AGENT = f"redirectory-check/{VERSION} (redirect and conditional-request conformance checker)"
NO_MATCH = '"redirectory-check-no-match"'
#: The successor-version links of one response that are probed (the first ones; a hostile list is cut).
MAX_SUCCESSORS = 3
#: Fields never carried to another origin (RFC 9110 §15.4: drop Authorization, Cookie).
CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})


class LiveInputError(ValueError):
    """A URL or option that cannot be probed (bad scheme, unsafe method without opt-in)."""


@dataclass(slots=True)
class LiveOptions:
    method: str = "GET"
    headers: list[tuple[str, str]] = field(default_factory=list)
    data: bytes | None = None
    allow_unsafe: bool = False
    allow_hosts: frozenset[str] = frozenset()
    timeout: float = 10.0
    rate: float = 10.0  # requests per second at most (0: no limit)
    max_hops: int = 5
    conditional: bool = True
    verify: bool = True


def validate_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise LiveInputError(f"bad URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LiveInputError(f"bad URL {url!r}: expected an absolute http:// or https:// URL")
    return url


class Prober:
    def __init__(self, options: LiveOptions, on_request: Callable[[str, str], None] | None = None) -> None:
        self.options = options
        self.on_request = on_request
        self._last = 0.0
        self._successors: dict[str, Exchange] = {}  # successor-version target -> its probe (once a run)
        self.client = httpx.Client(follow_redirects=False, timeout=options.timeout, verify=options.verify,
                                   headers={"User-Agent": USER_AGENT})
        method = options.method.upper()
        if method not in SAFE and not options.allow_unsafe:
            raise LiveInputError(f"--method {method} is unsafe: add --allow-unsafe and --allow-host HOST "
                                 "(a non-production host)")

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Prober:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request -----------------------------------------------------------------------------
    def _may_send(self, method: str, url: str) -> bool:
        if method in SAFE:
            return True
        host = (urlsplit(url).hostname or "").lower()
        return self.options.allow_unsafe and host in self.options.allow_hosts

    def _wait(self) -> None:
        if self.options.rate > 0:
            delay = self._last + 1 / self.options.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self._last = time.monotonic()

    def fetch(self, method: str, url: str, extra: list[tuple[str, str]] | None = None,
              probe: str | None = None, body: bytes | None = None, credentials: bool = True) -> Exchange:
        """One request; `credentials=False` leaves out Authorization and Cookie given with --header."""
        mine = [(k, v) for k, v in self.options.headers if credentials or k.lower() not in CREDENTIALS]
        headers = [*mine, *(extra or []), ("Connection", "close")]
        sent = [("User-Agent", USER_AGENT), *headers]
        request = Request(method, url, sent, body)
        where = Location(uri=url, method=method)
        if not self._may_send(method, url):
            raise LiveInputError(f"refusing to send {method} to {url}: not in --allow-host")
        self._wait()
        if self.on_request:
            self.on_request(method, url)
        try:
            req = self.client.build_request(method, url, headers=headers, content=body)
            res = self.client.send(req, stream=True)
            try:
                raw = b"".join(res.iter_raw())
            finally:
                res.close()
            response = Response(res.status_code, [(k, v) for k, v in res.headers.multi_items()], raw)
        except httpx.RemoteProtocolError:
            wire = self._raw(method, url, headers, body)  # framing httpx refuses: read the bytes
            if wire is None:
                return Exchange(request, None, "live", where, error="malformed HTTP response", probe=probe)
            response = wire
        except httpx.HTTPError as exc:
            return Exchange(request, None, "live", where, error=f"{type(exc).__name__}: {exc}", probe=probe)
        except (httpx.InvalidURL, ValueError) as exc:  # a port out of range, a control character, a long label
            return Exchange(request, None, "live", where, error=f"invalid URL: {exc}", probe=probe)
        if response.status == 304:
            wire = self._raw(method, url, headers, body)
            if wire is not None and wire.status == 304:
                response.body, response.trailers = wire.body, wire.trailers
        ex = Exchange(request, response, "live", where, probe=probe)
        ex.httplint_notes, ex.cache_control, ex.httplint_bad = notes(request, response)
        return ex

    def _raw(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None) -> Response | None:
        """One request over a plain socket, reading until the server closes (Connection: close)."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", f"User-Agent: {USER_AGENT}",
                 *(f"{k}: {v}" for k, v in headers), f"Content-Length: {len(body or b'')}"]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        chunks: list[bytes] = []
        try:
            with socket.create_connection((parts.hostname or "", port), timeout=self.options.timeout) as sock:
                conn: socket.socket = sock
                if parts.scheme == "https":
                    ctx = ssl.create_default_context()
                    if not self.options.verify:
                        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                    conn = ctx.wrap_socket(sock, server_hostname=parts.hostname)
                conn.sendall(data)
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
                    if b"\r\n\r\n" in b"".join(chunks):
                        conn.settimeout(min(self.options.timeout, 0.5))  # a server may ignore Connection: close
        except TimeoutError:
            pass
        except (OSError, ssl.SSLError):
            if not chunks:
                return None
        head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
        top, *fields = head.decode("latin-1").split("\r\n")
        try:
            status = int(top.split()[1])
        except (IndexError, ValueError):
            return None
        headers_in = [(k.strip(), v.strip(" \t")) for k, _, v in (f.partition(":") for f in fields) if k]
        return Response(status, headers_in, rest)

    # -- a whole chain, then the conditional probes ------------------------------------------------
    def check_url(self, url: str) -> Exchange:
        method = self.options.method.upper()
        head = self.fetch(method, validate_url(url), body=self.options.data)
        ex, visited, body = head, [without_fragment(url)], self.options.data
        while ex.status in REDIRECTS and len(visited) <= self.options.max_hops + 1:
            self._probe_redirect(ex)
            target = ex.resolved_location()
            if target is None or urlsplit(target).scheme not in ("http", "https"):
                break
            if without_fragment(target) in visited:
                break  # a loop: RDR-CHAIN / RDR-SELF-LOOP report it
            code = ex.status
            if code == 303 or (code in (301, 302) and method == "POST"):
                method, body = ("HEAD" if method == "HEAD" else "GET"), None
            same_origin = origin(target) == origin(url)
            if not self._may_send(method, target):
                ex.options = self.fetch("OPTIONS", target, probe="options", credentials=same_origin)
                break
            nxt = self.fetch(method, target, body=body, credentials=same_origin)
            nxt.previous, ex.next = ex, nxt
            visited.append(without_fragment(target))
            ex = nxt
        if self.options.conditional and ex.status is not None and 200 <= ex.status < 300 and method == "GET":
            self._probe_conditional(ex, credentials=origin(ex.request.url) == origin(url))
        for hop in head.chain():
            self._probe_successors(hop, url)
        return head

    # -- successor-version links ----------------------------------------------------------------------
    def _probe_successors(self, ex: Exchange, url: str) -> None:
        """Probe the `Link: <...>; rel="successor-version"` targets of the response (the first
        MAX_SUCCESSORS), hop by hop (HEAD, GET when HEAD is not allowed), once per target in a run."""
        if ex.response is None:
            return
        for target in successor_targets(ex.request.url, ex.response.header_lines("link"))[:MAX_SUCCESSORS]:
            if urlsplit(target).scheme not in ("http", "https") or not urlsplit(target).hostname:
                continue
            if target not in self._successors:
                self._successors[target] = self._follow(target, same_origin=origin(target) == origin(url))
            ex.successors.append(self._successors[target])

    def _head_or_get(self, url: str, credentials: bool) -> Exchange:
        ex = self.fetch("HEAD", url, probe="successor", credentials=credentials)
        if ex.status in (405, 501):  # HEAD not supported there: ask with GET
            ex = self.fetch("GET", url, probe="successor", credentials=credentials)
        return ex

    def _follow(self, url: str, same_origin: bool) -> Exchange:
        head = ex = self._head_or_get(url, same_origin)
        visited = [without_fragment(url)]
        while ex.status in REDIRECTS and len(visited) <= self.options.max_hops:
            target = ex.resolved_location()
            if target is None or urlsplit(target).scheme not in ("http", "https") \
                    or without_fragment(target) in visited:
                break
            nxt = self._head_or_get(target, same_origin and origin(target) == origin(url))
            nxt.previous, ex.next = ex, nxt
            visited.append(without_fragment(target))
            ex = nxt
        return head

    def _probe_redirect(self, ex: Exchange) -> None:
        if self.options.conditional and ex.request.method == "GET":
            extra = [("If-None-Match", "*"), ("If-Modified-Since", format_http_date(datetime.now(UTC)))]
            ex.probes["redirect-conditional"] = self.fetch("GET", ex.request.url, extra, "redirect-conditional")

    def _probe_conditional(self, base: Exchange, credentials: bool = True) -> None:
        assert base.response is not None
        url, etag, modified = base.request.url, base.response.header("etag"), base.response.header("last-modified")
        plans: list[tuple[str, list[tuple[str, str]]]] = [("refetch", [("Accept-Encoding", "identity")])]
        tag: EntityTag | None = None
        if etag:
            try:
                tag = EntityTag.parse(etag)
            except ValueError:
                tag = None
        if tag is not None:
            twin = EntityTag(tag.opaque, weak=not tag.weak)
            plans += [("inm", [("If-None-Match", str(tag))]), ("inm-twin", [("If-None-Match", str(twin))]),
                      ("inm-list", [("If-None-Match", f"{NO_MATCH}, {tag}")]), ("star", [("If-None-Match", "*")])]
            if modified:
                plans.append(("precedence", [("If-None-Match", NO_MATCH), ("If-Modified-Since", modified)]))
        if modified:
            plans.append(("ims", [("If-Modified-Since", modified)]))
        for name, extra in plans:
            probe = self.fetch("GET", url, extra, name, credentials=credentials)
            probe.paired = base
            base.probes[name] = probe
