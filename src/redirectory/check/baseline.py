"""A baseline file: the fingerprints of legacy findings to leave out of a run (and of its exit code).

Format (JSON): {"schemaVersion": 1, "findings": [{"id", "fingerprint", "location", "message"}]}.
Fingerprints hash the check id, method and URL (or file and JSON pointer), not the line, so
edits elsewhere in a file keep the baseline valid.
"""

from __future__ import annotations

import json
from pathlib import Path

from redirectory.check.model import Finding

SCHEMA_VERSION = 1


class BaselineError(ValueError):
    """The baseline file is missing, not a baseline, or cannot be written."""


def write(path: Path, findings: list[Finding]) -> None:
    """Write `findings` as the baseline at `path`; BaselineError if the file cannot be written."""
    data = {"schemaVersion": SCHEMA_VERSION,
            "findings": [{"id": f.id, "fingerprint": f.fingerprint, "location": str(f.location),
                          "message": f.message} for f in findings]}
    try:
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BaselineError(f"{path}: cannot write the baseline: {exc.strerror or exc}") from None


def load(path: Path) -> frozenset[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such baseline file (write one with --write-baseline)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or data.get("schemaVersion") != SCHEMA_VERSION \
            or not isinstance(data.get("findings"), list):
        raise BaselineError(f"{path}: not a redirectory baseline (expected schemaVersion {SCHEMA_VERSION} "
                            "and a findings list)")
    prints = [f.get("fingerprint") for f in data["findings"] if isinstance(f, dict)]
    if not all(isinstance(p, str) for p in prints):
        raise BaselineError(f"{path}: every finding needs a string fingerprint")
    return frozenset(p for p in prints if isinstance(p, str))


def split(findings: list[Finding], known: frozenset[str]) -> tuple[list[Finding], list[Finding]]:
    """(new findings, baselined ones)."""
    new = [f for f in findings if f.fingerprint not in known]
    old = [f for f in findings if f.fingerprint in known]
    return new, old
