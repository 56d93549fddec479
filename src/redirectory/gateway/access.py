"""The gateway's access log (`serve --access-log`): one line per request, the same on every server.

Each worker process writes its lines to stderr itself, whatever the HTTP server (httptools,
uvicorn, granian) does with logging; the servers' own access logs stay off. A line is
`key=value` fields:

    access method=GET path=/api/v1/users/42 status=301 rule=5f0c... duration_ms=0.042

- `path` is the request path as sent, never its query string; bytes outside printable ASCII (and
  spaces) are percent-encoded, so a line is always one line of space-separated fields;
- `rule` is the id of the rule that answered, `-` when none did (404, 400, ...);
- `duration_ms`: from the request's arrival to its response being handed to the connection.
No header (Authorization, Cookie, ...) and no client address is logged.

Lines are buffered and written in one write per BATCH lines and at every `flush()` (the gateway's
one-second flush, and shutdown): a line through `logging` costs ~15 µs, about as much as answering
the request; a buffered one ~2 µs.
"""

from __future__ import annotations

import re
import sys
import time

BATCH = 256

_UNSAFE = re.compile(rb"[\x00-\x20\x7f-\xff]")
_lines: list[str] = []


def shown_path(path: bytes) -> str:
    """The path as one log field: non-printable bytes and spaces percent-encoded."""
    if _UNSAFE.search(path):
        path = _UNSAFE.sub(lambda m: b"%%%02X" % m[0][0], path)
    return path.decode("ascii")


def log_request(method: str, path: bytes, status: int, rule_id: str | None, started: float) -> None:
    """One access line; `path` without its query string, `started` a `time.monotonic()` value."""
    _lines.append(f"access method={method} path={shown_path(path)} status={status} rule={rule_id or '-'} "
                  f"duration_ms={(time.monotonic() - started) * 1000:.3f}\n")
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
