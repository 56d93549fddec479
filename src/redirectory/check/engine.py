"""Run the registered checks over exchanges: profile levels, ignores, baseline. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from redirectory.check.checks import CHECKS
from redirectory.check.model import Exchange, Finding
from redirectory.check.profiles import Profile


class UnknownCheck(ValueError):
    """An id given to --ignore (or a baseline) that no check has."""


def validate_ids(ids: Iterable[str]) -> frozenset[str]:
    known = frozenset(CHECKS)
    wanted = frozenset(i.strip().upper() for i in ids if i.strip())
    unknown = sorted(wanted - known)
    if unknown:
        raise UnknownCheck(f"unknown check id {', '.join(unknown)} (valid ids: see `redirectory check --list`)")
    return wanted


def walk(exchanges: Iterable[Exchange]) -> Iterator[Exchange]:
    """Every exchange reachable through next hops, probes and OPTIONS requests, once each."""
    seen: set[int] = set()
    stack = list(exchanges)[::-1]
    while stack:
        ex = stack.pop()
        if id(ex) in seen:
            continue
        seen.add(id(ex))
        yield ex
        more = [ex.next, ex.options, *ex.probes.values()]
        stack.extend(m for m in reversed(more) if m is not None)


def run(exchanges: Iterable[Exchange], profile: Profile, ignore: frozenset[str] = frozenset()) -> list[Finding]:
    findings: list[Finding] = []
    keys: set[tuple[str, str, str]] = set()
    for ex in walk(exchanges):
        for chk in CHECKS.values():
            level = chk.severity(profile)
            if level is None or ex.source not in chk.inputs or chk.id in ignore or chk.id in ex.ignore:
                continue
            for hit in chk.fn(ex, profile):
                evidence = dict(hit.evidence or {})
                if ex.response is not None and ex.source != "openapi":
                    evidence.setdefault("status", ex.response.status)
                if ex.probe:
                    evidence.setdefault("probe", ex.probe)
                if ex.httplint_notes:
                    evidence.setdefault("httplint", ex.httplint_notes)
                finding = Finding(chk.id, hit.severity or level, hit.message, hit.fix, hit.location or ex.location,
                                  chk.source, chk.doc, evidence)
                key = (finding.id, finding.fingerprint, finding.message)
                if key not in keys:  # the same hop reached twice (a probe equal to a hop) reports once
                    keys.add(key)
                    findings.append(finding)
    return findings
