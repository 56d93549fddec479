"""How much a request to the admin listener may send: body size per route, JSON nesting depth.

Body sizes are enforced while the body is read, before any route sees it: a `Content-Length`
over the route's limit is answered `413` at once (nothing read); a body without one (chunked) is
counted as it arrives and refused with `413` as soon as it passes the limit. So a body costs at
most its route's limit in memory, whoever sends it. Both answers close the connection (the rest
of the body is never read), as does any answer sent before the end of a chunked body.

- `/api/v1/rule-imports`: 64 MiB. A rule file of about 300,000 rules; `rules apply` has no limit
  for files on disk, so larger tables go that way.
- `/api/v1/rules-bulk`: 32 MiB. 1,000 items (`bulk.MAX_ITEMS`), each as large as a rule may be
  (`rules.model.FIELD_LIMITS`: about 17 KiB of text, more once escaped in JSON).
- anything else: 1 MiB. One rule (at most about 17 KiB), a resolution (its URL is at most 8 KiB),
  a key's name (200 characters).

A JSON body may nest arrays and objects at most `MAX_JSON_DEPTH` levels deep (the deepest of
ours has 4: bulk -> items -> rule -> tags); deeper is `400` before it is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from redirectory.admin.errors import ApiError, ErrorItem, error_response

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]

MIB = 1024 * 1024
#: Largest body, in bytes, per path; every other path takes `DEFAULT_BODY_LIMIT`.
BODY_LIMITS: dict[str, int] = {
    "/api/v1/rule-imports": 64 * MIB,
    "/api/v1/rules-bulk": 32 * MIB,
}
DEFAULT_BODY_LIMIT = 1 * MIB
#: Deepest nesting of arrays and objects a JSON body may have.
MAX_JSON_DEPTH = 32
#: Sent with every 413: the unread rest of the body is never read, so the connection ends.
CLOSE = {"connection": "close"}


def body_limit(path: str) -> int:
    return BODY_LIMITS.get(path, DEFAULT_BODY_LIMIT)


def size(limit: int) -> str:
    """A limit as people say it: `64 MiB`, `1 MiB`, `512 bytes`."""
    return f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit} bytes"


def too_large(path: str, limit: int, sent: str) -> ApiError:
    return ApiError.one(413, "contentTooLarge", f"{path} takes a body of at most {size(limit)} "
                        f"({limit} bytes); this one {sent}", fields=["body"], headers=CLOSE)


class BodyLimitMiddleware:
    """Refuses a body over its route's limit (`BODY_LIMITS`) with 413, before or while reading it.

    `Content-Length` over the limit: answered here, the app never runs. Otherwise the app's
    `receive` counts bytes and raises the 413 `ApiError` once they pass the limit, which the
    app's error handler answers (the route that was reading never sees the rest).
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = body_limit(path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            refusal = too_large(path, limit, f"declares {declared} (Content-Length)")
            await error_response(refusal.status, refusal.key, refusal.errors, refusal.headers)(scope, receive, send)
            return
        received = 0
        unread = declared is None and _header(scope, b"transfer-encoding") is not None

        async def counting_receive() -> Any:
            nonlocal received, unread
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(path, limit, f"passed it after {received} bytes")
                unread = unread and message.get("more_body", False)
            return message

        async def closing_send(message: Any) -> None:
            headers = message.get("headers", ())
            if message["type"] == "http.response.start" and unread and not any(
                    name.lower() == b"connection" for name, _ in headers):
                # an answer before the end of a chunked body: the server would read the rest,
                # without bound, to reuse the connection; end it instead
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, counting_receive, closing_send)


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    return next((value for name, value in scope["headers"] if name.lower() == wanted), None)


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return None if value is None else int(value)
    except ValueError:  # the HTTP server refuses it before we are called
        return None


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def nesting_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON document `text` nests arrays and objects more than `limit` deep.

    Cheap and without recursion: strings are dropped, then innermost bracket pairs are removed
    `limit` times; brackets still paired after that are deeper. Malformed text may answer
    False: the parser then says what is wrong with it.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).replace("{", "[").replace("}", "]")
    for _ in range(limit):
        shorter = brackets.replace("[]", "")
        if shorter == brackets:
            return False
        brackets = shorter
    return "[]" in brackets


def too_deep() -> ApiError:
    return ApiError.one(400, "jsonTooDeep", f"The body nests arrays and objects more than {MAX_JSON_DEPTH} "
                        "levels deep; no request of this API needs more than 4", fields=["body"])


def nul_fields(data: Any, path: str = "") -> list[str]:
    """The fields (dotted paths, array items by index) of a parsed JSON document whose text,
    or a key, holds U+0000 (no database text column can store it). Depth is bounded first."""
    found: list[str] = []
    if isinstance(data, str):
        if "\x00" in data:
            found.append(path or "body")
    elif isinstance(data, dict):
        for key, value in data.items():
            shown = key.replace("\x00", "\\u0000")
            name = f"{path}.{shown}" if path else shown
            if shown != key:
                found.append(name)
            found += nul_fields(value, name)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += nul_fields(value, f"{path}.{index}" if path else str(index))
    return found


def nul_error(fields: list[str]) -> ApiError:
    return ApiError(400, "invalidCharacter", [
        ErrorItem(f"'{name}' holds a NUL character (U+0000), which no text in this API may hold",
                  "invalidCharacter", fields=[name]) for name in fields])
