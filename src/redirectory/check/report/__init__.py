"""Writers for a check run: text (rich), JSON (versioned), SARIF 2.1.0, JUnit XML."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from redirectory.check.model import Finding, Severity

FORMATS: tuple[str, ...] = ("text", "json", "sarif", "junit")


@dataclass(slots=True)
class RunResult:
    findings: list[Finding]  # after ignores and baseline
    targets: list[str]  # URLs or files checked
    profile: str
    exchanges: int = 0
    baselined: int = 0
    ignored: list[str] = field(default_factory=list)

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    def failed(self, fail_on: Severity) -> bool:
        return any(f.severity.rank >= fail_on.rank for f in self.findings)


def writer(fmt: str) -> Callable[[RunResult], str]:
    from redirectory.check.report import jsonout, junit, sarif

    return {"json": jsonout.render, "sarif": sarif.render, "junit": junit.render}[fmt]
