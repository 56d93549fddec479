"""ASGI middlewares (Starlette, FastAPI, Litestar or any ASGI app): redirect rules, 302 guard,
conditional requests. No framework import: plain ASGI scopes and messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from redirectory.conditional import (
    SAFE_METHODS,
    Preconditions,
    evaluate,
    outcome_response,
    response_validators,
)
from redirectory.rules.engine import Response
from redirectory.toolkit.guard import Guard, GuardMode, refusal_response
from redirectory.toolkit.redirects import RequestInfo
from redirectory.toolkit.ruletable import RuleTable
from redirectory.validators import etag_of_bytes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def request_info(scope: Scope) -> RequestInfo:
    """A RequestInfo from an ASGI http scope."""
    headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", ()))
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    client = scope.get("client")
    host = next((v for k, v in headers if k == "host"), None)
    return RequestInfo(scope["method"], raw_path.decode("utf-8", "surrogateescape"),
                       scope.get("query_string", b"").decode("latin-1"), host,
                       client[0] if client else None, headers, _scheme(scope.get("scheme")))


def _scheme(value: Any) -> str | None:
    """http or https from a scope's scheme (`ws`/`wss` as their HTTP counterparts)."""
    return _SCHEMES.get(value) if isinstance(value, str) else None


_SCHEMES = {"http": "http", "ws": "http", "https": "https", "wss": "https"}


def _raw(headers: Any) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def _text(headers: Any) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]


async def send_response(send: Send, response: Response, method: str = "GET") -> None:
    """Send an engine/toolkit Response (no body bytes for HEAD, 304 or 303)."""
    await send({"type": "http.response.start", "status": response.status, "headers": _raw(response.headers)})
    body = b"" if method == "HEAD" or response.status in (303, 304) else response.body
    await send({"type": "http.response.body", "body": body})


class RedirectMiddleware:
    """Answers requests a redirect rule matches exactly as the gateway does; the rest go to `app`.

    `table` is a RuleTable, or the path of a rule file."""

    def __init__(self, app: ASGIApp, table: RuleTable | str | Path):
        self.app = app
        self.table = table if isinstance(table, RuleTable) else RuleTable(table)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response, extra = self.table.decide(request_info(scope))
            if response is not None:
                await send_response(send, response, scope["method"])
                return
            if extra:  # the lifecycle headers of the path, on the application's response
                await self.app(scope, receive, _adding(send, extra))
                return
        await self.app(scope, receive, send)


def _adding(send: Send, extra: tuple[tuple[str, str], ...]) -> Send:
    """`send` that adds `extra` headers to the response start (those the app did not set itself)."""
    async def adding(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            present = {k.lower() for k, _v in headers}
            headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra if k.encode() not in present]
            message = {**message, "headers": headers}
        await send(message)
    return adding


class GuardMiddleware:
    """The 302 guard (see `redirectory.toolkit.guard`) around an ASGI app."""

    def __init__(self, app: ASGIApp, mode: GuardMode | str = GuardMode.REWRITE, debug: bool | None = None,
                 guard: Guard | None = None):
        self.app = app
        self.guard = guard or Guard(mode, debug)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guard, method, path = self.guard, scope["method"], scope["path"]
        state: dict[str, Any] = {"drop": False, "refused": False, "status": 0, "seen": False}

        async def guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                verdict = guard.check(method, message["status"], _text(message.get("headers", ())))
                state.update(status=verdict.status, drop=verdict.drop_body, refused=verdict.refused)
                try:
                    guard.record(method, path, verdict.findings, verdict.refused)
                finally:
                    if verdict.refused:
                        state["drop"] = True
                if verdict.refused:
                    await send_response(send, refusal_response(), method)
                    return
                await send({**message, "status": verdict.status, "headers": _raw(verdict.headers)})
            elif message["type"] == "http.response.body":
                if state["refused"]:
                    return
                if state["status"] in (303, 304) and message.get("body") and not state["seen"]:
                    state["seen"] = True
                    finding = guard.body_seen(state["status"])
                    if finding is not None:
                        guard.record(method, path, [finding], False)
                if state["drop"]:
                    message = {**message, "body": b""}
                await send(message)
            else:
                await send(message)

        await self.app(scope, receive, guarded)


class ConditionalMiddleware:
    """Conditional requests after the handler (GET/HEAD), and the If-Match requirement before it.

    - GET with a 200 and no ETag (and no `Cache-Control: no-store`): a strong ETag from the body
      is added (bodies up to `max_buffer` bytes; larger ones pass through untouched);
    - GET/HEAD with a 2xx carrying ETag or Last-Modified: the preconditions are evaluated
      (RFC 9110 §13.2.2) and a 304 (§15.4.5 headers only) or 412 replaces the response;
    - `require_if_match`: POST, PUT, PATCH, DELETE without If-Match get 428 before the handler;
    - `weak_etags`: make the body ETags weak, for when a layer outside this one (compression)
      changes the bytes; otherwise put this middleware outside such layers.

    Writes need their validators *before* the handler runs: use the dependency/decorator forms.
    """

    def __init__(self, app: ASGIApp, require_if_match: bool = False, max_buffer: int = 1 << 20,
                 weak_etags: bool = False):
        self.app = app
        self.weak_etags = weak_etags
        self.require_if_match = require_if_match
        self.max_buffer = max_buffer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        pre = Preconditions.from_headers(_text(scope.get("headers", ())))
        if self.require_if_match and method not in SAFE_METHODS and pre.if_match is None:
            outcome = evaluate(method, pre, response_validators(()), require_if_match=True)
            await send_response(send, outcome_response(outcome), method)
            return
        if method not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = {"mode": "pass", "start": None, "chunks": [], "size": 0}

        async def flush(extra: list[tuple[str, str]] | None = None) -> None:
            start = state["start"]
            if extra:
                start = {**start, "headers": [*start.get("headers", ()), *_raw(extra)]}
            await send(start)
            for chunk in state["chunks"]:
                await send(chunk)
            state["chunks"] = []

        async def conditional(message: Message) -> None:
            if message["type"] == "http.response.start":
                status, headers = message["status"], _text(message.get("headers", ()))
                names = {k.lower(): v for k, v in headers}
                if not 200 <= status < 300:
                    await send(message)
                elif "etag" in names or "last-modified" in names:
                    outcome = evaluate(method, pre, response_validators(headers), unconditional_status=status)
                    if outcome.proceed:
                        await send(message)
                    else:
                        state["mode"] = "swallow"
                        await send_response(send, outcome_response(outcome, headers), method)
                elif method == "GET" and status == 200 and "no-store" not in names.get("cache-control", ""):
                    state.update(mode="buffer", start=message)
                else:
                    await send(message)
                return
            if message["type"] != "http.response.body" or state["mode"] == "pass":
                await send(message)
                return
            if state["mode"] == "swallow":
                return
            state["chunks"].append(message)
            state["size"] += len(message.get("body", b""))
            if state["size"] > self.max_buffer:
                state["mode"] = "pass"
                await flush()
            elif not message.get("more_body", False):
                body = b"".join(m.get("body", b"") for m in state["chunks"])
                etag = ("etag", str(etag_of_bytes(body, weak=self.weak_etags)))
                headers = [*_text(state["start"].get("headers", ())), etag]
                outcome = evaluate(method, pre, response_validators(headers))
                state["mode"] = "pass"
                if outcome.proceed:
                    await flush([etag])
                else:
                    state["chunks"] = []
                    await send_response(send, outcome_response(outcome, headers), method)

        await self.app(scope, receive, conditional)
