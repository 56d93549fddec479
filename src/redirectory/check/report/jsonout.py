"""`--format json`: a stable document, versioned by `schemaVersion` (bumped on breaking changes).

{"schemaVersion": "1.0", "tool": {"name", "version"}, "profile", "targets": [...],
 "summary": {"error", "warning", "info", "baselined", "exchanges"}, "findings": [Finding.to_dict()]}
"""

from __future__ import annotations

import json

from redirectory.check import VERSION
from redirectory.check.model import Severity
from redirectory.check.report import RunResult

SCHEMA_VERSION = "1.0"


def render(result: RunResult) -> str:
    doc = {
        "schemaVersion": SCHEMA_VERSION,
        "tool": {"name": "redirectory check", "version": VERSION},
        "profile": result.profile,
        "targets": result.targets,
        "summary": {**{s.value: result.count(s) for s in Severity}, "baselined": result.baselined,
                    "exchanges": result.exchanges},
        "ignored": result.ignored,
        "findings": [f.to_dict() for f in result.findings],
    }
    return json.dumps(doc, indent=2, default=str) + "\n"
