"""The precision test of `redirectory check` (issue 19): every finding on every OpenAPI document
and HAR of the shared corpus (../shared/corpus/openapi, ../shared/corpus/har) is listed in the
reviewed tests/data/check_expectations.json, true or false with a one-line reason.

Recordings made for this repository (tests/data/check_har) and real documents found for it
(tests/data/check_openapi) are held to the same file.

The test fails on a finding nobody reviewed, on one reviewed as false, on a changed level, and on
a true finding that is no longer found. The precision (true findings / findings) is printed per
source; docs/checks.md quotes it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from differential import find_corpus
from redirectory.check.engine import run
from redirectory.check.har import load_har
from redirectory.check.model import Finding
from redirectory.check.openapi import load_openapi
from redirectory.check.profiles import Profile

EXPECTATIONS = Path(__file__).resolve().parent / "data" / "check_expectations.json"
#: recordings made for this repository (Playwright + Chromium against `redirectory serve`; a proxy's view)
OURS = Path(__file__).resolve().parent / "data" / "check_har"
#: real documents found for this repository (APIs.guru; provenance in its README.md)
FOUND = Path(__file__).resolve().parent / "data" / "check_openapi"
CORPUS = find_corpus()
pytestmark = pytest.mark.skipif(CORPUS is None, reason="../shared/corpus is absent (the shared real-world corpus)")

Key = tuple[str, str, str | None, str | None, str | None]


def _key(name: str, f: Finding) -> Key:
    return (name, f.id, f.location.method, f.location.uri, f.location.pointer)


def _reviewed() -> dict[Key, dict[str, object]]:
    data = json.loads(EXPECTATIONS.read_text(encoding="utf-8"))
    out: dict[Key, dict[str, object]] = {}
    for item in data["findings"]:
        assert isinstance(item["true"], bool) and str(item["reason"]).strip(), item
        out[(item["file"], item["id"], item["method"], item["uri"], item["pointer"])] = item
    return out


@pytest.fixture(scope="module")
def found() -> dict[Key, Finding]:
    assert CORPUS is not None
    out: dict[Key, Finding] = {}
    for sub, loader in (("openapi", load_openapi), ("har", load_har)):
        for path in sorted((CORPUS / sub).iterdir()):
            for finding in run(loader(path), Profile()):
                out[_key(f"{sub}/{path.name}", finding)] = finding
    for path in sorted(FOUND.glob("*.json")):
        for finding in run(load_openapi(path), Profile()):
            out[_key(f"check_openapi/{path.name}", finding)] = finding
    for path in sorted(OURS.glob("*.har")):
        for finding in run(load_har(path), Profile()):
            out[_key(f"check_har/{path.name}", finding)] = finding
    return out


def test_every_finding_is_reviewed_and_true(found: dict[Key, Finding]) -> None:
    reviewed = _reviewed()
    unreviewed = [f"{k}: {f.severity.value} {f.message}" for k, f in found.items() if k not in reviewed]
    assert not unreviewed, "findings not in tests/data/check_expectations.json:\n" + "\n".join(unreviewed)
    false = [f"{k}: {reviewed[k]['reason']}" for k in found if reviewed[k]["true"] is not True]
    assert not false, "findings reviewed as false:\n" + "\n".join(false)
    levels = [f"{k}: {f.severity.value}, reviewed at {reviewed[k]['severity']}" for k, f in found.items()
              if f.severity.value != reviewed[k]["severity"]]
    assert not levels, "levels changed since the review:\n" + "\n".join(levels)


def test_no_true_finding_is_lost(found: dict[Key, Finding]) -> None:
    lost = [str(k) for k, item in _reviewed().items() if item["true"] is True and k not in found]
    assert not lost, "true findings no longer found:\n" + "\n".join(lost)


def test_precision(found: dict[Key, Finding], capsys: pytest.CaptureFixture[str]) -> None:
    reviewed = _reviewed()
    per: Counter[str] = Counter()
    true: Counter[str] = Counter()
    for key, finding in found.items():
        source = {"check_har": "har", "check_openapi": "openapi"}.get(key[0].split("/")[0], key[0].split("/")[0])
        per[source] += 1
        true[source] += reviewed[key]["true"] is True
        assert not (finding.severity.value == "error" and reviewed[key]["true"] is not True), key  # 0 false errors
    with capsys.disabled():
        for source in sorted(per):
            print(f"\ncheck precision on the corpus ({source}): {true[source]}/{per[source]}")
    assert sum(true.values()) >= 0.95 * sum(per.values())
