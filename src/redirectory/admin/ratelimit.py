"""Rate limiting per API key (guide: 429 Too Many Requests, X-RateLimit-* headers).

A fixed window per key, in memory (one admin listener per `serve` process): by default 600
requests a minute. `REDIRECTORY_ADMIN_RATE_LIMIT` sets it: `N` (requests per minute) or
`N/S` (N requests per S seconds); `0` turns limiting off. A key's window starts with its
first request (after the previous window ended) and lasts S seconds.

Every response to a request made with a valid key carries `X-RateLimit-Limit`,
`X-RateLimit-Remaining` and `X-RateLimit-Reset` (when the window ends, in UTC epoch seconds).
A request over the limit is refused before any route runs: 429 in the guide's error format with
`Retry-After` (seconds). Requests without a valid key are not counted (they get 401).

A key is recognised by the SHA-256 of the secret it was sent with, learnt from the store on its
first use (one extra lookup per key and process); a 401 forgets it (a revoked key).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from redirectory.admin.errors import ErrorItem, error_response

log = logging.getLogger("redirectory.admin")

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

ENV_VAR = "REDIRECTORY_ADMIN_RATE_LIMIT"
DEFAULT_LIMIT = 600
DEFAULT_WINDOW = 60
API_PREFIX = "/api/"


def parse_limit(text: str | None) -> tuple[int, int]:
    """`N` (per minute) or `N/S` (per S seconds) -> (limit, window seconds); ValueError if bad."""
    if text is None or not text.strip():
        return DEFAULT_LIMIT, DEFAULT_WINDOW
    count, sep, seconds = text.strip().partition("/")
    limit = int(count)
    window = int(seconds.strip().removesuffix("s")) if sep else DEFAULT_WINDOW
    if limit < 0 or window < 1:
        raise ValueError(f"{ENV_VAR}={text!r}: use N or N/SECONDS with N >= 0 and SECONDS >= 1")
    return limit, window


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds when the window ends
    retry_after: int = 0  # seconds until then (at least 1 when refused)

    def headers(self) -> dict[str, str]:
        return {"x-ratelimit-limit": str(self.limit), "x-ratelimit-remaining": str(self.remaining),
                "x-ratelimit-reset": str(self.reset)}


class FixedWindow:
    """Counts per key in fixed windows of `window` seconds, each key's starting at its first
    request after the previous one ended."""

    def __init__(self, limit: int, window: int, clock: Callable[[], float] = time.time):
        self.limit, self.window, self.clock = limit, window, clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, requests in it)

    def hit(self, key: str) -> Verdict:
        now = self.clock()
        with self._lock:
            start, used = self._windows.get(key, (now, 0))
            if now >= start + self.window:  # that window is over: a new one starts now
                start, used = now, 0
            allowed = used < self.limit
            if allowed:
                used += 1
            self._windows[key] = (start, used)
        end = start + self.window
        return Verdict(allowed, self.limit, max(self.limit - used, 0), math.ceil(end), max(1, math.ceil(end - now)))


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, store: Any, setting: str | None = None):
        self.app = app
        self.store = store
        text = os.environ.get(ENV_VAR) if setting is None else setting
        try:
            limit, window = parse_limit(text)
        except ValueError:
            log.warning("%s=%r is not N or N/SECONDS; using %d/%d", ENV_VAR, text, DEFAULT_LIMIT, DEFAULT_WINDOW)
            limit, window = DEFAULT_LIMIT, DEFAULT_WINDOW
        self.limiter = FixedWindow(limit, window) if limit > 0 else None
        self._known: dict[str, str] = {}  # sha256(secret) -> key id, for valid keys seen

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if self.limiter is None or scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        secret = _credentials(scope)
        if secret is None:
            await self.app(scope, receive, send)
            return
        digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
        key_id = self._known.get(digest)
        if key_id is None:
            key = await run_in_threadpool(self.store.verify_key, secret)
            if key is None:  # unknown or revoked: the route answers 401, nothing to count
                await self.app(scope, receive, send)
                return
            key_id = self._known[digest] = key.id
        verdict = self.limiter.hit(key_id)
        if not verdict.allowed:
            retry = verdict.retry_after
            response = error_response(
                429, "tooManyRequests",
                [ErrorItem(f"This key may make {verdict.limit} requests per {self.limiter.window} seconds; "
                           f"retry in {retry} seconds", "tooManyRequests", params=[str(verdict.limit), str(retry)])],
                {**verdict.headers(), "retry-after": str(retry)},
            )
            await response(scope, receive, send)
            return
        extra = [(k.encode(), v.encode()) for k, v in verdict.headers().items()]

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 401:  # revoked since we learnt it
                    self._known.pop(digest, None)
                else:
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _credentials(scope: Scope) -> str | None:
    """The key as `admin.auth.credentials` reads it (Bearer first, else X-API-Key)."""
    auth = key = None
    for name, value in scope["headers"]:
        lowered = name.lower()
        if lowered == b"authorization" and auth is None:
            auth = value.decode("latin-1")
        elif lowered == b"x-api-key" and key is None:
            key = value.decode("latin-1")
    if auth:
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return key.strip() if key and key.strip() else None
