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

_STR = {"type": "string"}
#: JSON Schema (draft 2020-12) of what `render` writes for this SCHEMA_VERSION.
JSON_SCHEMA: dict[str, object] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"urn:redirectory:check-report:{SCHEMA_VERSION}",
    "type": "object",
    "required": ["schemaVersion", "tool", "profile", "targets", "summary", "ignored", "findings"],
    "additionalProperties": False,
    "properties": {
        "schemaVersion": {"const": SCHEMA_VERSION},
        "tool": {"type": "object", "required": ["name", "version"], "properties": {"name": _STR, "version": _STR}},
        "profile": {"enum": ["house", "rfc"]},
        "targets": {"type": "array", "items": _STR},
        "summary": {"type": "object", "required": ["error", "warning", "info", "baselined", "exchanges"],
                    "additionalProperties": {"type": "integer", "minimum": 0}},
        "ignored": {"type": "array", "items": _STR},
        "findings": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "severity", "message", "fix", "location", "source", "doc", "fingerprint", "evidence"],
            "properties": {
                "id": {"type": "string", "pattern": "^[A-Z0-9]+(-[A-Z0-9]+)+$"},
                "severity": {"enum": ["error", "warning", "info"]},
                "message": _STR, "fix": _STR, "source": _STR, "doc": _STR,
                "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
                "evidence": {"type": "object"},
                "location": {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": {
                    "uri": _STR, "method": _STR, "file": _STR, "line": {"type": "integer", "minimum": 1},
                    "pointer": _STR}},
            }}},
    },
}


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
