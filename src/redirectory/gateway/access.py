"""The gateway's access log (`serve --access-log`): one line per request, the same on every server.

Each worker process writes its lines to stderr itself, whatever the HTTP server (httptools,
uvicorn, granian) does with logging; the servers' own access logs stay off. A line is in the
process's `--log-format` (`redirectory.logs`); `text` is `key=value` fields:

    access method=GET path=/api/v1/users/42 status=301 rule=5f0c... duration_ms=0.042 request_id=1f2e3d4c-2a

and `json` one object with the same fields (`rule` null when none answered; `duration_ms` a number):

    {"time": "...", "level": "info", "logger": "redirectory.access", "pid": 7, "event": "access", "method": "GET", ...}

- `path` is the request path as sent, never its query string (unless `--access-log-query`: then a
  `query` field); bytes outside printable ASCII, spaces, `"` and `\\` are percent-encoded, so a text
  line is always one line of space-separated fields and a JSON string needs no escape;
- `rule` is the id of the rule that answered, `-` when none did (404, 400, ...);
- `duration_ms`: from the request's arrival to its response being handed to the connection;
- `request_id`: the request's `X-Request-ID` when it is sane (1 to 128 characters among letters,
  digits and `-._~:/+=@`), else one made here (this worker's random prefix and a counter).
No other header (Authorization, Cookie, ...) and no client address is logged.

Lines are buffered and written in one write per BATCH lines and at every `flush()` (the gateway's
one-second flush, and shutdown): a line through `logging` costs ~15 µs, about as much as answering
the request; a buffered one ~2 µs.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import time

from redirectory.logs import stamp

BATCH = 256
#: The longest incoming X-Request-ID logged as it is (a longer one is replaced by one made here).
REQUEST_ID_MAX = 128

_UNSAFE = re.compile(rb'[\x00-\x20"\\\x7f-\xff]')
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._~:/+=@-]{1,%d}" % REQUEST_ID_MAX)
_lines: list[str] = []


# This worker's settings (module globals: read on every line, faster than attributes).
_json = False  # the line format: JSON objects (`--log-format json`) or key=value text
_query = False  # query strings shown (`--access-log-query`)
_prefix = os.urandom(4).hex()  # this worker's request id prefix, drawn again by configure()
_counter = itertools.count(1)
_pid = os.getpid()
_second = -1  # the UTC second `_second_text` is, for JSON lines' time
_second_text = ""


def configure(log_format: str = "text", query: bool = False) -> None:
    """Set this worker's line format (`text` or `json`) and whether query strings are shown."""
    global _json, _query, _prefix, _counter, _pid
    _json = log_format == "json"
    _query = query
    _prefix = os.urandom(4).hex()
    _counter = itertools.count(1)
    _pid = os.getpid()


def shown_path(path: bytes) -> str:
    """The path as one log field: non-printable bytes, spaces, `"` and `\\` percent-encoded."""
    if _UNSAFE.search(path):
        path = _UNSAFE.sub(lambda m: b"%%%02X" % m[0][0], path)
    return path.decode("ascii")


def request_id(incoming: bytes | None) -> str:
    """The incoming X-Request-ID when it is sane, else a new one (unique within this worker)."""
    if incoming is not None and _REQUEST_ID.fullmatch(incoming):
        return incoming.decode("ascii")
    return f"{_prefix}-{next(_counter):x}"


def log_request(method: str, path: bytes, status: int, rule_id: str | None, started: float,
                incoming_id: bytes | None = None, query: bytes = b"") -> None:
    """One access line; `path` without its query string, `started` a `time.monotonic()` value,
    `incoming_id` the request's X-Request-ID (None: none was sent)."""
    global _second, _second_text
    ms = (time.monotonic() - started) * 1000
    rid = f"{_prefix}-{next(_counter):x}" if incoming_id is None else request_id(incoming_id)
    if not method.isalpha():
        method = shown_path(method.encode("utf-8", "replace"))
    shown = shown_path(path)
    if _json:
        now = time.time()
        second = int(now)
        if second != _second:
            _second, _second_text = second, stamp(second)[:-5]  # without ".000Z"
        rule = f'"{rule_id}"' if rule_id else "null"
        shown_query = f',"query":"{shown_path(query)}"' if _query else ""
        _lines.append(
            f'{{"time":"{_second_text}.{int((now - second) * 1000):03d}Z","level":"info",'
            f'"logger":"redirectory.access","pid":{_pid},"message":"{method} {shown} {status}","event":"access",'
            f'"method":"{method}","path":"{shown}"{shown_query},"status":{status},"rule":{rule},'
            f'"duration_ms":{ms:.3f},"request_id":"{rid}"}}\n')
    else:
        shown_query = f" query={shown_path(query) or '-'}" if _query else ""
        _lines.append(f"access method={method} path={shown}{shown_query} status={status} "
                      f"rule={rule_id or '-'} duration_ms={ms:.3f} request_id={rid}\n")
    if len(_lines) >= BATCH:
        flush()


def flush() -> None:
    """Write the buffered lines to stderr."""
    count = len(_lines)
    if count:
        text = "".join(_lines[:count])
        del _lines[:count]  # lines appended meanwhile (another thread) stay for the next flush
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr is gone: the lines are lost, serving goes on
            pass
