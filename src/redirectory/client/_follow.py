"""The redirect loop's state, shared by the sync and async clients (they only add the I/O).

One `Session` per `send()`: it applies remembered moves before a request goes out, decides what
follows each response (through `policy.decide`), learns permanent moves, detects loops, counts
hops and keeps the trace.
"""

from __future__ import annotations

import logging
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import httpx

from redirectory.client.errors import (
    BodyNotReplayable,
    RedirectError,
    RedirectLoop,
    RedirectWarning,
    TooManyRedirects,
)
from redirectory.client.memory import RedirectMemory, RememberedRedirect
from redirectory.client.policy import Decision, Policy, decide, follows, memory_key
from redirectory.client.trace import Hop, Trace, until

__all__ = ["Session", "Settings", "body_replayable", "build_next_request", "emit_warnings"]

logger = logging.getLogger("redirectory.client")

#: A remembered target answering one of these means the remembered move is stale.
GONE_STATUSES = frozenset({404, 410})


@dataclass(frozen=True, slots=True)
class Settings:
    policy: Policy
    memory: RedirectMemory | None
    max_redirects: int


def _seekable(file: Any) -> bool:
    if isinstance(file, str | bytes):
        return True
    seekable = getattr(file, "seekable", None)
    return bool(seekable()) if callable(seekable) else False


def body_replayable(request: httpx.Request) -> bool:
    """Can this request's body be sent a second time?

    In-memory bodies (bytes, str, json=, data= forms, a body already read) can; multipart
    uploads can when every file is seekable (httpx rewinds them); generators, iterators and
    other one-shot streams cannot.
    """
    stream = request.stream
    if isinstance(stream, httpx.ByteStream):
        return True
    fields = getattr(stream, "fields", None)
    if type(stream).__name__ == "MultipartStream" and isinstance(fields, list):
        return all(_seekable(getattr(item, "file", b"")) for item in fields)
    return False


def _cookie_pairs(header: str | None) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            pairs[name] = value
    return pairs


def build_next_request(request: httpx.Request, decision: Decision, jar: httpx.Cookies) -> httpx.Request:
    """The follow-up request: `decision` applied to `request`, cookies from `jar` for the new URL.

    Host is recomputed; headers in `decision.drop_headers` go; the body stream is reused when the
    method and body are kept. Cookies: the client's jar decides which of its cookies the new URL
    gets (domain, path, secure rules), including those the redirect response just set; a Cookie
    header the request carried by hand is kept only on the same origin.
    """
    headers = httpx.Headers(request.headers)
    for name in ("host", *decision.drop_headers):
        if name in headers:
            del headers[name]
    carried = headers.get("cookie")
    if "cookie" in headers:
        del headers["cookie"]
    headers["Host"] = decision.url.netloc.decode("ascii")
    if decision.keep_body:
        follow_up = httpx.Request(decision.method, decision.url, headers=headers, stream=request.stream,
                                  extensions=request.extensions)
    else:
        follow_up = httpx.Request(decision.method, decision.url, headers=headers, extensions=request.extensions)
    from_jar: str | None = None
    if len(jar.jar):
        scratch = httpx.Request(decision.method, decision.url)
        jar.set_cookie_header(scratch)
        from_jar = scratch.headers.get("cookie")
    cookies = _cookie_pairs(carried) | _cookie_pairs(from_jar)
    if cookies:
        follow_up.headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return follow_up


class Session:
    """The state of one `send()`. `prepare()` before each network request, `on_response()` after."""

    def __init__(self, settings: Settings, request: httpx.Request, *, follow: bool, jar: httpx.Cookies) -> None:
        self.settings = settings
        self.follow = follow
        self.jar = jar
        self.trace = Trace(request.method, str(request.url))
        self._sent: list[tuple[str, str]] = []
        self._redirects = 0
        self._shortcut: tuple[httpx.Request, list[RememberedRedirect]] | None = None
        self._retried = False

    @property
    def memory(self) -> RedirectMemory | None:
        return self.settings.memory

    def _refuse(self, exc: RedirectError, request: httpx.Request,
                response: httpx.Response | None = None) -> RedirectError:
        if response is not None:
            self.trace.responses.append(response)
            self.trace.hops.append(Hop("stopped", request.method, str(request.url), response.status_code, None,
                                       None, str(exc)))
        return type(exc)(str(exc), request=request, trace=self.trace)

    def _count(self, request: httpx.Request) -> None:
        self._redirects += 1
        if self._redirects > self.settings.max_redirects:
            raise TooManyRedirects(
                f"more than {self.settings.max_redirects} redirects (max_redirects) starting at "
                f"{self.trace.method} {self.trace.url}; last at {request.method} {request.url}",
                request=request, trace=self.trace,
            )

    def prepare(self, request: httpx.Request) -> httpx.Request:
        """Apply remembered moves to `request`; refuse a loop; return what to send over the network."""
        current, used = request, []
        memory = self.memory
        while self.follow and memory is not None:
            entry = memory.lookup(current.method, memory_key(current.url))
            if entry is None:
                break
            self._count(current)
            try:
                decision = decide(self.settings.policy, current.method, current.url, entry.status, entry.target)
            except RedirectError as exc:
                raise self._refuse(exc, current) from None
            self.trace.hops.append(Hop(
                "memory", current.method, str(current.url), entry.status, decision.method, str(decision.url),
                decision.why,
                (f"remembered until {until(entry.expires_at)} ({entry.freshness})", *decision.changes),
            ))
            used.append(entry)
            current = build_next_request(current, decision, self.jar)
        self._shortcut = (request, used) if used else None
        key = (current.method, memory_key(current.url))
        if key in self._sent:
            chain = " -> ".join(f"{m} {u}" for m, u in [*self._sent, key])
            raise RedirectLoop(f"redirect loop: {key[0]} {key[1]} was already requested ({chain})",
                               request=current, trace=self.trace)
        self._sent.append(key)
        return current

    def wants_body(self, response: httpx.Response) -> bool:
        """Should the I/O layer read this response before `on_response` (a redirect about to be followed)?"""
        return self.follow and follows(response.status_code) and "location" in response.headers

    def on_response(self, request: httpx.Request, response: httpx.Response) -> httpx.Request | None:
        """The next request to send, or None when `response` is the final one."""
        status = response.status_code
        shortcut, self._shortcut = self._shortcut, None
        if shortcut is not None and status in GONE_STATUSES:
            retry = self._forget(shortcut, request, response)
            if retry is not None:
                return retry
        location = response.headers.get("location")
        if not follows(status) or location is None:
            return None
        try:
            decision = decide(self.settings.policy, request.method, request.url, status, location)
        except RedirectError as exc:
            if not self.follow:
                response.next_request = None
                return None
            raise self._refuse(exc, request, response) from None
        learnt = self._learn(request, response, decision)
        if not self.follow:
            response.next_request = build_next_request(request, decision, self.jar)
            return None
        self._count(request)
        if decision.keep_body and not body_replayable(request):
            raise self._refuse(BodyNotReplayable(
                f"{decision.why}; but the body of {request.method} {request.url} was a one-shot stream "
                "that cannot be sent again (nothing was sent to the new location). Pass buffer_bodies=True "
                "to the client, or send bytes instead of a generator or stream"
            ), request, response)
        self.trace.responses.append(response)
        self.trace.hops.append(Hop("network", request.method, str(request.url), status, decision.method,
                                   str(decision.url), decision.why, (*decision.changes, *learnt), decision.warning))
        return build_next_request(request, decision, self.jar)

    def _learn(self, request: httpx.Request, response: httpx.Response, decision: Decision) -> tuple[str, ...]:
        """Remember a permanent move (or forget an older one for the same key); a note for the trace."""
        if self.memory is None:
            return ()  # keys and targets are stored without user:password (memory_key)
        entry = self.memory.remember(request.method, memory_key(request.url), response.status_code,
                                     memory_key(decision.url), response.headers.multi_items(), flush=False)
        if entry is None:
            return ()
        return (f"remembered until {until(entry.expires_at)} ({entry.freshness})",)

    def _forget(self, shortcut: tuple[httpx.Request, list[RememberedRedirect]], request: httpx.Request,
                response: httpx.Response) -> httpx.Request | None:
        original, used = shortcut
        memory = self.memory
        assert memory is not None
        for entry in used:
            memory.discard(entry, flush=False)
        forgotten = ", ".join(f"{e.method} {e.url} -> {e.target}" for e in used)
        can_retry = not self._retried and body_replayable(original)
        self._retried = True
        why = f"the remembered target answered {response.status_code}: forgot {forgotten}"
        if can_retry:
            why += "; asking the original URL again"
        else:
            why += "; the original URL cannot be asked again (one-shot body or already retried)"
        self.trace.hops.append(Hop("forgotten", request.method, str(request.url), response.status_code,
                                   original.method if can_retry else None,
                                   str(original.url) if can_retry else None, why))
        if not can_retry:
            return None
        key = (request.method, memory_key(request.url))
        if key in self._sent:
            self._sent.remove(key)
        return original

    def finish(self, response: httpx.Response) -> Trace:
        response.history = list(self.trace.responses)
        self.trace.final_status = response.status_code
        self.trace.final_method = response.request.method
        self.trace.final_url = str(response.request.url)
        return self.trace


def emit_warnings(session: Session, seen: int) -> int:
    """Log (DEBUG) and warn (RedirectWarning) for the hops after the first `seen`; returns the new count."""
    for hop in session.trace.hops[seen:]:
        logger.debug("%s %s %s -> %s %s: %s", hop.kind, hop.method, hop.url, hop.next_method, hop.next_url, hop.why)
        if hop.warning:
            logger.info("%s", hop.warning)
            warnings.warn(hop.warning, RedirectWarning, stacklevel=_caller_level())
    return len(session.trace.hops)


_OWN_MODULES = ("httpx.", "redirectory.client.", "contextlib", "anyio.", "asyncio.")


def _caller_level() -> int:
    """The stacklevel of the first frame outside httpx and this package (the user's call)."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if level > 1 and not name.startswith(_OWN_MODULES) and name not in ("httpx", "redirectory.client"):
            return level
        frame, level = frame.f_back, level + 1
    return level
