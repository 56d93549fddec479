"""The 302 guard's decisions, framework-neutral: what to do with a response the app produced.

`Guard.check(method, status, headers)` runs when the response starts (status and headers known)
and returns a `Verdict`: the status and headers to send, whether to drop the body, the findings,
and whether to refuse the response. The ASGI and WSGI middlewares apply it.

Modes:
- `refuse`: a 302 is refused: `RedirectGuardError` is raised when `debug` is on (tests, local
  runs), otherwise the client gets a 500 in the guide's error format and an error is logged;
- `rewrite`: a 302 becomes 307 for GET/HEAD and 303 for other methods (what clients did with 302);
- `report`: the response is sent unchanged; findings are logged and counted.

`debug=None` (the default) means: on when the environment has `REDIRECTORY_DEBUG=1` or pytest
is running a test (`PYTEST_CURRENT_TEST`), off otherwise.

In `refuse` and `rewrite` modes the guard also fixes what it can: a 303 or 304 loses its body
(303 keeps `Content-Length: 0`), a 304 loses its content headers (Content-Type, Content-Length,
Content-Encoding...). A 301/302/303/307/308 without Location cannot be fixed (no target is
known), so it is refused like a 302 in those modes. Every finding is counted in `counts` and in
the Prometheus counter `redirectory_guard_findings_total{finding, mode}` (`registry`: the
prometheus-client registry, the default one unless given; see `toolkit.metrics`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from redirectory.rules.engine import Response, error_body
from redirectory.semantics import TABLE, BodyPolicy, alternatives_to_302
from redirectory.toolkit.metrics import guard_findings

log = logging.getLogger("redirectory.toolkit.guard")

_NEEDS_LOCATION = frozenset(code for code, s in TABLE.items() if s.location_required)
_CONTENT_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "content-language",
                              "content-range", "content-disposition", "transfer-encoding"})


class GuardMode(StrEnum):
    REFUSE = "refuse"
    REWRITE = "rewrite"
    REPORT = "report"


class RedirectGuardError(RuntimeError):
    """Raised in `refuse` mode with `debug` on: the app produced a response the guide forbids."""


@dataclass(frozen=True, slots=True)
class Finding:
    code: str  # "302" | "3xx-without-location" | "303-with-body" | "304-with-body" | "304-content-headers"
    message: str


@dataclass(slots=True)
class Verdict:
    status: int
    headers: list[tuple[str, str]]
    drop_body: bool = False
    refused: bool = False
    findings: list[Finding] = field(default_factory=list)


@dataclass
class Guard:
    mode: GuardMode | str = GuardMode.REWRITE
    debug: bool | None = None
    counts: Counter[str] = field(default_factory=Counter)
    registry: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        try:
            self.mode = GuardMode(self.mode)
        except ValueError:
            valid = ", ".join(m.value for m in GuardMode)
            raise ValueError(f"unknown guard mode {self.mode!r}: use one of {valid}") from None
        if self.debug is None:
            self.debug = os.environ.get("REDIRECTORY_DEBUG") == "1" or "PYTEST_CURRENT_TEST" in os.environ

    def check(self, method: str, status: int, headers: list[tuple[str, str]]) -> Verdict:
        names = {k.lower() for k, _ in headers}
        verdict = Verdict(status, list(headers))
        fixing = self.mode is not GuardMode.REPORT
        if status in _NEEDS_LOCATION and "location" not in names:
            verdict.findings.append(Finding("3xx-without-location", f"{status} response without Location"))
            verdict.refused = fixing
        if status == 302:
            if self.mode is GuardMode.REWRITE and not verdict.refused:
                verdict.status = 307 if method in ("GET", "HEAD") else 303
                verdict.findings.append(Finding("302", f"302 for {method} rewritten to {verdict.status}"))
            else:
                verdict.findings.append(Finding("302", f"302 for {method}: {alternatives_to_302()}"))
                verdict.refused = verdict.refused or self.mode is GuardMode.REFUSE
        if fixing and not verdict.refused:
            if verdict.status == 304:
                dropped = [k for k, _ in verdict.headers if k.lower() in _CONTENT_HEADERS]
                if dropped:
                    verdict.findings.append(Finding("304-content-headers",
                                                    f"304 with content headers removed: {', '.join(dropped)}"))
                verdict.headers = [(k, v) for k, v in verdict.headers if k.lower() not in _CONTENT_HEADERS]
                verdict.drop_body = True
            elif TABLE.get(verdict.status) is not None and TABLE[verdict.status].body is BodyPolicy.NONE:
                verdict.headers = [(k, v) for k, v in verdict.headers if k.lower() not in _CONTENT_HEADERS]
                verdict.headers.append(("content-length", "0"))
                verdict.drop_body = True
        elif status == 304 and names & _CONTENT_HEADERS - {"content-length"}:
            verdict.findings.append(Finding("304-content-headers", "304 with content headers"))
        return verdict

    def body_seen(self, status: int) -> Finding | None:
        """The finding for body bytes an app produced for a 303 or 304 (call once per response)."""
        if status in (303, 304):
            return Finding(f"{status}-with-body", f"{status} response with a body"
                           + (" (dropped)" if self.mode is not GuardMode.REPORT else ""))
        return None

    def record(self, method: str, path: str, findings: list[Finding], refused: bool) -> None:
        """Count and log findings; raises RedirectGuardError for a refusal in debug mode."""
        if not findings:
            return
        metric = guard_findings(self.registry)
        mode = GuardMode(self.mode).value
        with self._lock:
            for f in findings:
                self.counts[f.code] += 1
                metric.labels(finding=f.code, mode=mode).inc()
        text = "; ".join(f.message for f in findings)
        if refused:
            log.error("redirect guard refused %s %s: %s", method, path, text)
            if self.debug:
                raise RedirectGuardError(f"{method} {path}: {text}")
        else:
            log.warning("redirect guard: %s %s: %s", method, path, text)


def refusal_response() -> Response:
    """The 500 sent instead of a refused response (no details, as the guide asks for 5xx)."""
    body = error_body("urn:redirectory:error:", 500, "Internal Server Error", "internalError",
                      "The server could not complete the request")
    return Response(500, (("content-type", "application/json"), ("content-length", str(len(body))),
                          ("cache-control", "no-store")), body)
