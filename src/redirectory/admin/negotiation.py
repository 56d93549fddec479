"""Media types and credentials checked before any route runs (guide: 406, 415; keys never in URLs).

- `Accept` that admits no JSON -> 406 (the interactive docs page is HTML and exempt);
- a request body whose `Content-Type` is not JSON (or JSON Merge Patch for PATCH) -> 415;
- `Accept-Language` that admits no English (the language of every message) -> 406;
- an API key or a control character in the URL -> 400 (`url_guard`).
A method no route takes is left to the router (405 + Allow), whatever its body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.routing import Match

from redirectory.admin.errors import ErrorItem, error_response
from redirectory.admin.url_guard import url_problem

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

API_PREFIX = "/api/"
HTML_PATHS = frozenset({"/api/v1/docs"})
JSON_TYPES = ("application/json", "application/*", "*/*", "application/problem+json")
BODY_TYPES = {"POST": ("application/json",), "PUT": ("application/json",),
              "PATCH": ("application/merge-patch+json", "application/json")}
#: Paths whose POST body is a file rather than JSON.
FILE_UPLOADS: dict[str, tuple[str, ...]] = {"/api/v1/rule-imports": (
    "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "application/json", "text/csv",
    "text/plain", "application/octet-stream",
)}


def accepts_json(accept: str) -> bool:
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (media in JSON_TYPES or media.endswith("+json")):
            return True
    return False


#: The language of every message (errors, warnings), sent as Content-Language.
LANGUAGE = "en"


def accepts_language(header: str) -> bool:
    """Whether an Accept-Language field admits English (RFC 9110 §12.5.4, RFC 4647 ranges).

    A range admits it when it is `*` or its primary subtag is `en` (lookup falls back from
    `en-GB` to `en`), unless its weight is 0.
    """
    if not header.strip():
        return True
    for part in header.split(","):
        lang, _, params = part.strip().partition(";")
        lang = lang.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (lang == "*" or lang.split("-")[0] == LANGUAGE):
            return True
    return False


def _with_language(send: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """`send` that adds `Content-Language` to every response that lacks it (messages, notes)."""

    async def wrapped(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if not any(name.lower() == b"content-language" for name, _ in headers):
                headers.append((b"content-language", LANGUAGE.encode()))
                message = {**message, "headers": headers}
        await send(message)

    return wrapped


def _routed(scope: Scope) -> bool:
    """Whether some route takes this method on this path (else the router answers 404 or 405)."""
    app = scope.get("app")
    routes = getattr(getattr(app, "router", None), "routes", None)
    if routes is None:
        return True
    return any(route.matches(scope)[0] == Match.FULL for route in routes)


class NegotiationMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        problem = self._check(scope, headers)
        if problem is None:
            await self.app(scope, receive, _with_language(send))
            return
        status, key, detail, fields = problem
        response = error_response(status, key, [ErrorItem(detail, key, fields=fields)])
        await response(scope, receive, send)

    @staticmethod
    def _check(scope: Scope, headers: dict[str, str]) -> tuple[int, str, str, list[str] | None] | None:
        refused = url_problem(scope)
        if refused is not None:
            return refused
        accept = headers.get("accept")
        if accept and scope["path"] not in HTML_PATHS and not accepts_json(accept):
            return (406, "notAcceptable", f"This API produces application/json; Accept was '{accept[:100]}'",
                    ["Accept"])
        language = headers.get("accept-language")
        if language is not None and scope["path"] not in HTML_PATHS and not accepts_language(language):
            return (406, "languageNotAcceptable",
                    f"This API answers in English (Content-Language: {LANGUAGE}); Accept-Language was "
                    f"'{language[:100]}'", ["Accept-Language"])
        method = scope["method"]
        allowed: tuple[str, ...] | None = FILE_UPLOADS.get(scope["path"]) if method == "POST" else None
        allowed = allowed or BODY_TYPES.get(method)
        has_body = headers.get("content-length", "0") not in ("0", "") or "transfer-encoding" in headers
        if allowed and has_body and _routed(scope):
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype not in allowed:
                return (415, "unsupportedMediaType",
                        f"{method} takes {' or '.join(allowed)}; Content-Type was '{ctype or 'missing'}'",
                        ["Content-Type"])
        return None
