"""`--format sarif`: SARIF 2.1.0 (OASIS), for GitHub code scanning and other viewers.

OpenAPI findings carry a physical location (file, startLine); live and HAR findings carry the URL
as the artifact location (a URI-reference) and a logical location `METHOD URL`. Every result has
a partial fingerprint (our baseline fingerprint) so viewers track it across runs.
"""

from __future__ import annotations

import json
from typing import Any

from redirectory.check import VERSION
from redirectory.check.checks import CHECKS
from redirectory.check.model import Finding, Severity
from redirectory.check.report import RunResult

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _location(f: Finding) -> dict[str, Any]:
    loc = f.location
    out: dict[str, Any] = {}
    uri = loc.file or loc.uri
    if uri:
        physical: dict[str, Any] = {"artifactLocation": {"uri": uri.replace(" ", "%20")}}
        if loc.file and loc.line:
            physical["region"] = {"startLine": loc.line}
        out["physicalLocation"] = physical
    logical = " ".join(p for p in (loc.method, loc.uri) if p) or loc.pointer
    if logical:
        out["logicalLocations"] = [{"fullyQualifiedName": logical, "kind": "resource"}]
    return out


def render(result: RunResult) -> str:
    ids = sorted(CHECKS)
    rules = [{
        "id": c.id,
        "name": c.id.title().replace("-", ""),
        "shortDescription": {"text": c.title},
        "fullDescription": {"text": f"{c.title} ({c.source})"},
        "help": {"text": f"{c.title}. Why: {c.source}. What it checks, a bad example and the fix: {c.doc}"},
        "defaultConfiguration": {"level": LEVELS[c.house]},
        "properties": {"source": c.source, "tags": ["http", "redirect"]},
    } for c in (CHECKS[i] for i in ids)]
    results = [{
        "ruleId": f.id,
        "ruleIndex": ids.index(f.id),
        "level": LEVELS[f.severity],
        "message": {"text": f"{f.message}. Fix: {f.fix}"},
        "locations": [_location(f)],
        "partialFingerprints": {"redirectoryFingerprint/v1": f.fingerprint},
        "properties": {"severity": f.severity.value, "evidence": f.evidence},
    } for f in result.findings]
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "redirectory-check", "version": VERSION, "semanticVersion": VERSION,
                                "rules": rules}},
            "invocations": [{"executionSuccessful": True}],
            "properties": {"profile": result.profile, "targets": result.targets, "baselined": result.baselined},
            "results": results,
        }],
    }
    return json.dumps(log, indent=2, default=str) + "\n"
