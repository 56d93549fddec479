"""`Date` on every admin response, and a `Last-Modified` never later than it (RFC 9110 §6.6.1, §8.8.2.1).

The admin API stamps `Date` itself, from the clock at the moment the response's head is sent
(the listener's server sends none: uvicorn's own `Date` is refreshed once a second, so it lags
the clock by up to a second, and a rule written just now carried a `Last-Modified` one second
after it). A `Last-Modified` still later than that `Date` (a row written by a process whose
clock runs ahead) is replaced by the `Date`, as the RFC says an origin server must.
"""

from __future__ import annotations

import time
from email.utils import formatdate, parsedate_to_datetime
from typing import Any


class DateMiddleware:
    """Wrap the whole admin app (outside the error handlers, so a 500 has a `Date` too)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": dated(list(message.get("headers", [])), time.time())}
            await send(message)

        await self.app(scope, receive, stamped)


def dated(headers: list[tuple[bytes, bytes]], now: float) -> list[tuple[bytes, bytes]]:
    """`headers` with `Date: now` (replacing any) and `Last-Modified` no later than it."""
    date = formatdate(int(now), usegmt=True).encode("latin-1")
    out = [(b"date", date)]
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"date":
            continue
        if lowered == b"last-modified" and _later(value, int(now)):
            value = date
        out.append((name, value))
    return out


def _later(http_date: bytes, now: int) -> bool:
    try:
        return parsedate_to_datetime(http_date.decode("latin-1")).timestamp() > now
    except (TypeError, ValueError):
        return False
