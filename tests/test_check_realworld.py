"""`redirectory check` on input as others write it (issue 19): OpenAPI documents split over files
(`$ref`s at every level, cycles, refused URLs and escapes), 3.2, `servers` base paths, documents
that yield nothing to check; HARs with a byte-order mark and browser conventions; fingerprints
that do not depend on the working directory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from differential import find_corpus
from gateway_process import BIN
from redirectory.check.engine import run
from redirectory.check.har import read_har
from redirectory.check.openapi import load_openapi
from redirectory.check.profiles import Profile
from redirectory.cli import app

DATA = Path(__file__).resolve().parent / "data"
CORPUS = find_corpus()

ROOT = """openapi: 3.1.0
info: {title: split, version: "1"}
servers: [{url: "https://api.example.com/{base}", variables: {base: {default: "2.0"}}}]
paths:
  /users/{id}:
    $ref: paths/users.yaml
  /items/{id}:
    get:
      $ref: ops/get-item.yaml
  /results/{id}:
    get:
      responses:
        "200": {description: the result}
  /outside:
    get:
      responses:
        "301":
          $ref: ../outside.yaml#/Moved
  /remote:
    get:
      responses:
        "301":
          $ref: https://example.com/responses.yaml#/Moved
  /loop:
    $ref: paths/loop.yaml
"""
USERS = """post:
  responses:
    "303":
      $ref: ../responses.yaml#/SeeOther
get:
  responses:
    "200": {description: a user}
"""
GET_ITEM = """responses:
  "302":
    description: found
    headers:
      Location:
        $ref: ../responses.yaml#/LocationHeader
"""
RESPONSES = """SeeOther:
  description: the result
  headers:
    Location:
      $ref: "#/LocationHeader"
LocationHeader:
  required: true
  schema: {type: string, format: uri}
  example: https://api.example.com/2.0/results/7
"""


def _split(tmp: Path) -> Path:
    doc = tmp / "api"
    (doc / "paths").mkdir(parents=True)
    (doc / "ops").mkdir()
    (doc / "openapi.yaml").write_text(ROOT)
    (doc / "paths" / "users.yaml").write_text(USERS)
    (doc / "paths" / "loop.yaml").write_text("$ref: loop.yaml\n")
    (doc / "ops" / "get-item.yaml").write_text(GET_ITEM)
    (doc / "responses.yaml").write_text(RESPONSES)
    (tmp / "outside.yaml").write_text("Moved: {description: moved}\n")
    return doc / "openapi.yaml"


def test_multi_file_refs_at_every_level(tmp_path: Path) -> None:
    exchanges = load_openapi(_split(tmp_path))
    checked = {(e.request.method, e.location.uri, e.status) for e in exchanges if e.doc is not None}
    assert checked == {("POST", "/users/{id}", 303), ("GET", "/users/{id}", 200), ("GET", "/items/{id}", 302),
                       ("GET", "/results/{id}", 200)}
    findings = run(exchanges, Profile())
    by_id = {(f.id, f.location.uri or f.location.pointer): f for f in findings}
    # the operation-level $ref: its 302 is found, located in the file that writes it
    found = by_id[("S302-FORBIDDEN", "/items/{id}")]
    assert found.location.file is not None and found.location.file.endswith("ops/get-item.yaml")
    assert found.location.line == 3 and found.location.name == "ops/get-item.yaml"
    # the 303's Location example names GET /results/{id} once the servers base path (/2.0) is stripped
    assert not any(f.id == "S303-TARGET-DOCUMENTED" for f in findings), findings
    problems = sorted(f.message for f in findings if f.id == "OAS-REF-UNRESOLVED")
    assert len(problems) == 3, problems
    assert any("is a URL: redirectory check reads local files only" in p for p in problems)
    assert any("points outside the document's directory" in p for p in problems)
    assert any("circular $ref 'loop.yaml'" in p and "loop.yaml:1" in p for p in problems)


def test_base_path_is_needed_to_match(tmp_path: Path) -> None:
    doc = _split(tmp_path)
    doc.write_text(ROOT.replace('{url: "https://api.example.com/{base}", variables: {base: {default: "2.0"}}}',
                                '{url: "https://api.example.com"}'))
    findings = run(load_openapi(doc), Profile())
    assert [f.message for f in findings if f.id == "S303-TARGET-DOCUMENTED"] == [
        "303 target /2.0/results/7 is not a documented GET operation"]


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["check", *args])
    return result.exit_code, result.stdout, result.stderr


def test_zero_checked_responses_is_an_error(tmp_path: Path) -> None:
    doc = tmp_path / "openapi.yaml"
    doc.write_text("openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    $ref: https://example.com/a.yaml\n"
                   "  /b:\n    get:\n      $ref: ops/missing.yaml\n")
    code, _, err = _invoke("--openapi", str(doc))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"error: {doc}:4: `paths` documents 2 path(s) but no response could be checked" in err.replace("\n", "")


def test_openapi_3_2_query_and_additional_operations(tmp_path: Path) -> None:
    doc = tmp_path / "openapi.json"
    doc.write_text(json.dumps({"openapi": "3.2.0", "info": {"title": "t", "version": "1"}, "paths": {"/search": {
        "query": {"responses": {"302": {"description": "found"}}},
        "additionalOperations": {"LINK": {"responses": {"200": {"description": "linked"}}}}}}}, indent=1))
    exchanges = load_openapi(doc)
    assert {(e.request.method, e.status) for e in exchanges} == {("QUERY", 302), ("LINK", 200)}
    assert [(f.id, f.location.line) for f in run(exchanges, Profile()) if f.id == "S302-FORBIDDEN"] == [
        ("S302-FORBIDDEN", 11)]


def test_fingerprints_do_not_depend_on_the_working_directory(tmp_path: Path) -> None:
    doc = _split(tmp_path)
    baseline = tmp_path / "baseline.json"
    first = subprocess.run([str(BIN), "check", "--openapi", "api/openapi.yaml", "--write-baseline", str(baseline)],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([str(BIN), "check", "--openapi", "openapi.yaml", "--baseline", str(baseline),
                            "--format", "json"], cwd=doc.parent, capture_output=True, text=True, timeout=60)
    report = json.loads(again.stdout)
    assert again.returncode == 0 and report["findings"] == [] and report["summary"]["baselined"] > 0, again.stdout


def test_cookie_of_the_target_site_is_not_a_leak(tmp_path: Path) -> None:
    har = DATA / "check_har" / "mitmproxy-duplicate-date.har"
    found = {(f.id, f.severity.value) for f in run(read_har(har).exchanges, Profile())}
    assert found == {("HTTPLINT-BAD", "warning"), ("RDR-CROSS-ORIGIN", "warning")}
    other = tmp_path / "other-site.har"
    other.write_text(har.read_text().replace("https://id.example.com", "https://id.example.net")
                     .replace('"Host", "value": "id.example.com"', '"Host", "value": "id.example.net"'))
    leaks = [f.message for f in run(read_har(other).exchanges, Profile()) if f.severity.value == "error"]
    assert leaks == ["the follow-up to https://id.example.net/v2/users/42 still carried cookie to another origin"]


def test_bom_and_browser_conventions(tmp_path: Path) -> None:
    bom = tmp_path / "bom.har"
    bom.write_bytes(b"\xef\xbb\xbf" + (DATA / "check_har" / "mitmproxy-duplicate-date.har").read_bytes())
    assert len(read_har(bom).exchanges) == 2
    if CORPUS is None:
        return  # the browser recordings are in the shared corpus
    chrome = read_har(CORPUS / "har" / "harviewer-issue-61-chrome51.har")
    assert len(chrome.exchanges) == 14  # 13 answers from the memory cache are not exchanges
    assert any("answered from the browser's cache (`_transferSize: 0`)" in n for n in chrome.notes)
    revalidated = [e for e in chrome.exchanges if e.status == 304]
    assert revalidated and all(e.response is not None and e.response.content_size is None for e in revalidated)
    code, _, err = _invoke("--har", str(CORPUS / "har" / "harviewer-issue-61-ie11.har"))
    assert code == 0 and "note: " in err and "rewrites header values for display" in err.replace("\n", " ")
