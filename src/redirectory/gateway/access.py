"""The gateway's access log (`serve --access-log`): one line per request, the same on every server.

Lines go to the logger `redirectory.access`, which `enable()` gives its own stderr handler in each
worker process, whatever logging the HTTP server (httptools, uvicorn, granian) set up; the servers'
own access logs stay off. A line is `key=value` pairs:

    access method=GET path=/api/v1/users/42 status=301 rule=5f0c... duration_ms=0.042

- `path` is the request path as sent, never its query string; bytes outside printable ASCII (and
  spaces) are percent-encoded, so a line is always one line of space-separated fields;
- `rule` is the id of the rule that answered, `-` when none did (404, 400, ...);
- `duration_ms`: from the request's arrival to its response being handed to the connection.
No header (Authorization, Cookie, ...) and no client address is logged.
"""

from __future__ import annotations

import logging
import re
import time

logger = logging.getLogger("redirectory.access")

_UNSAFE = re.compile(rb"[\x00-\x20\x7f-\xff]")


def enable() -> None:
    """Send access lines to stderr in this process (called once per worker, when the log is on)."""
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("access %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def shown_path(path: bytes) -> str:
    """The path as one log field: non-printable bytes and spaces percent-encoded."""
    if _UNSAFE.search(path):
        path = _UNSAFE.sub(lambda m: b"%%%02X" % m[0][0], path)
    return path.decode("ascii")


def log_request(method: str, path: bytes, status: int, rule_id: str | None, started: float) -> None:
    """One access line; `path` without its query string, `started` a `time.monotonic()` value."""
    logger.info("method=%s path=%s status=%d rule=%s duration_ms=%.3f", method, shown_path(path), status,
                rule_id or "-", (time.monotonic() - started) * 1000)
