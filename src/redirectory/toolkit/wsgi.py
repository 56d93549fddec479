"""WSGI middlewares (Flask, Django or any WSGI app): redirect rules, 302 guard, conditional
requests. No framework import: plain environ, start_response and iterables (PEP 3333)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

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

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def _headers(environ: Environ) -> tuple[tuple[str, str], ...]:
    out = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            out.append((key[5:].replace("_", "-").lower(), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            out.append((key.replace("_", "-").lower(), value))
    return tuple(out)


def request_info(environ: Environ) -> RequestInfo:
    """A RequestInfo from a WSGI environ (the raw request target when the server gives it)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        path, _, query = raw.partition("?")
    else:
        decoded = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1")
        path, query = quote(decoded, safe="/:@!$&'()*+,;=-._~%") or "/", environ.get("QUERY_STRING", "")
    return RequestInfo(environ["REQUEST_METHOD"], path, query, environ.get("HTTP_HOST"),
                       environ.get("REMOTE_ADDR"), _headers(environ),
                       "https" if environ.get("wsgi.url_scheme") == "https" else "http")


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def send_response(start_response: StartResponse, response: Response, method: str = "GET") -> list[bytes]:
    """Start an engine/toolkit Response; the body iterable (empty for HEAD, 303 and 304)."""
    start_response(status_line(response.status), list(response.headers))
    return [] if method == "HEAD" or response.status in (303, 304) else [response.body]


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


class RedirectMiddleware:
    """Answers requests a redirect rule matches exactly as the gateway does; the rest go to `app`.

    `table` is a RuleTable, or the path of a rule file."""

    def __init__(self, app: WSGIApp, table: RuleTable | str | Path):
        self.app = app
        self.table = table if isinstance(table, RuleTable) else RuleTable(table)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        response, extra = self.table.decide(request_info(environ))
        if response is not None:
            return send_response(start_response, response, environ["REQUEST_METHOD"])
        if extra:  # the lifecycle headers of the path, on the application's response
            def adding(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                present = {k.lower() for k, _v in headers}
                return start_response(status, [*headers, *(h for h in extra if h[0] not in present)], exc_info)
            return self.app(environ, adding)
        return self.app(environ, start_response)


class GuardMiddleware:
    """The 302 guard (see `redirectory.toolkit.guard`) around a WSGI app."""

    def __init__(self, app: WSGIApp, mode: GuardMode | str = GuardMode.REWRITE, debug: bool | None = None,
                 guard: Guard | None = None):
        self.app = app
        self.guard = guard or Guard(mode, debug)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        guard, method, path = self.guard, environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")
        state: dict[str, Any] = {"drop": False, "refused": False, "status": 0}

        def guarded(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            verdict = guard.check(method, int(status.split()[0]), list(headers))
            state.update(status=verdict.status, drop=verdict.drop_body or verdict.refused, refused=verdict.refused)
            guard.record(method, path, verdict.findings, verdict.refused)
            if verdict.refused:
                refusal = refusal_response()
                state["body"] = refusal.body
                return start_response(status_line(500), list(refusal.headers), exc_info)  # type: ignore[no-any-return]
            return start_response(status_line(verdict.status), verdict.headers, exc_info)  # type: ignore[no-any-return]

        return self._body(self.app(environ, guarded), state, method, path)

    def _body(self, result: Iterable[bytes], state: dict[str, Any], method: str, path: str) -> Iterator[bytes]:
        seen = False
        try:
            for chunk in result:
                if chunk and state["status"] in (303, 304) and not seen and not state["refused"]:
                    seen = True
                    finding = self.guard.body_seen(state["status"])
                    if finding is not None:
                        self.guard.record(method, path, [finding], False)
                if not state["drop"]:
                    yield chunk
            if state["refused"] and method != "HEAD":
                yield state.get("body", b"")
        finally:
            _close(result)


class ConditionalMiddleware:
    """Conditional requests after the handler (GET/HEAD), and the If-Match requirement before it.
    Same behaviour as `redirectory.toolkit.asgi.ConditionalMiddleware`."""

    def __init__(self, app: WSGIApp, require_if_match: bool = False, max_buffer: int = 1 << 20,
                 weak_etags: bool = False):
        self.app = app
        self.weak_etags = weak_etags
        self.require_if_match = require_if_match
        self.max_buffer = max_buffer

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        pre = Preconditions.from_headers(_headers(environ))
        if self.require_if_match and method not in SAFE_METHODS and pre.if_match is None:
            outcome = evaluate(method, pre, response_validators(()), require_if_match=True)
            return send_response(start_response, outcome_response(outcome), method)
        if method not in ("GET", "HEAD"):
            return self.app(environ, start_response)
        captured: dict[str, Any] = {}
        written: list[bytes] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            captured.update(status=status, headers=list(headers), exc_info=exc_info)
            return written.append

        result = self.app(environ, capture)
        it = iter(result)
        chunks: list[bytes] = []
        try:
            while "status" not in captured:  # generator apps call start_response on first iteration
                chunks.append(next(it))
        except StopIteration:
            pass
        chunks = written + chunks
        status, headers = int(captured["status"].split()[0]), captured["headers"]
        names = {k.lower(): v for k, v in headers}

        def passthrough(extra: list[tuple[str, str]] | None = None) -> Iterator[bytes]:
            start_response(captured["status"], headers + (extra or []), captured["exc_info"])
            return self._chain(chunks, it, result)

        if not 200 <= status < 300:
            return passthrough()
        if "etag" in names or "last-modified" in names:
            outcome = evaluate(method, pre, response_validators(headers), unconditional_status=status)
            if outcome.proceed:
                return passthrough()
            _close(result)
            return send_response(start_response, outcome_response(outcome, headers), method)
        if method != "GET" or status != 200 or "no-store" in names.get("cache-control", ""):
            return passthrough()
        size = sum(map(len, chunks))
        for chunk in it:
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_buffer:
                return passthrough()
        _close(result)
        body = b"".join(chunks)
        etag = ("ETag", str(etag_of_bytes(body, weak=self.weak_etags)))
        outcome = evaluate(method, pre, response_validators([*headers, etag]))
        if outcome.proceed:
            start_response(captured["status"], [*headers, etag], captured["exc_info"])
            return [body]
        return send_response(start_response, outcome_response(outcome, [*headers, etag]), method)

    @staticmethod
    def _chain(first: list[bytes], rest: Iterator[bytes], result: Iterable[bytes]) -> Iterator[bytes]:
        try:
            yield from first
            yield from rest
        finally:
            _close(result)
