"""The four outputs of `redirectory check`: text, JSON (schemaVersion), SARIF 2.1.0 and JUnit, and
the --fail-on exit codes, over the OpenAPI violation fixture (no network, in process).

SARIF: the official OASIS schema is not vendored here, so the log is validated (jsonschema_rs)
against SARIF_REQUIRED, a schema written from the SARIF 2.1.0 specification's required
properties and value constraints for the objects we emit (sarifLog §3.13, run §3.14, tool §3.18,
toolComponent §3.19, reportingDescriptor §3.49, result §3.27, message §3.11, location §3.28,
physicalLocation §3.29, artifactLocation §3.4, region §3.30, logicalLocation §3.33)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema_rs
from typer.testing import CliRunner

from redirectory.check.checks import CHECKS
from redirectory.check.report.jsonout import JSON_SCHEMA
from redirectory.cli import app

OAS = Path(__file__).resolve().parent / "data" / "check" / "openapi-violations.yaml"
CLEAN = OAS.with_name("openapi-clean.yaml")

_MESSAGE = {"type": "object", "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
            "properties": {"text": {"type": "string"}, "id": {"type": "string"}}}
_ARTIFACT = {"type": "object", "properties": {"uri": {"type": "string", "format": "uri-reference"},
                                              "uriBaseId": {"type": "string"}, "index": {"type": "integer",
                                                                                         "minimum": -1}}}
SARIF_REQUIRED = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object", "required": ["version", "runs"], "additionalProperties": False,
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"enum": ["2.1.0"]},
        "runs": {"type": "array", "items": {"$ref": "#/definitions/run"}},
        "inlineExternalProperties": {"type": "array"},
        "properties": {"type": "object"},
    },
    "definitions": {
        "run": {"type": "object", "required": ["tool"], "properties": {
            "tool": {"type": "object", "required": ["driver"], "properties": {
                "driver": {"$ref": "#/definitions/toolComponent"},
                "extensions": {"type": "array", "items": {"$ref": "#/definitions/toolComponent"}}}},
            "results": {"type": "array", "items": {"$ref": "#/definitions/result"}},
            "invocations": {"type": "array", "items": {"type": "object", "required": ["executionSuccessful"],
                                                       "properties": {"executionSuccessful": {"type": "boolean"}}}},
            "properties": {"type": "object"}}},
        "toolComponent": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "version": {"type": "string"}, "semanticVersion": {"type": "string"},
            "informationUri": {"type": "string", "format": "uri"},
            "rules": {"type": "array", "uniqueItems": True, "items": {"$ref": "#/definitions/reportingDescriptor"}}}},
        "reportingDescriptor": {"type": "object", "required": ["id"], "properties": {
            "id": {"type": "string"}, "name": {"type": "string"},
            "shortDescription": {"$ref": "#/definitions/multiformat"},
            "fullDescription": {"$ref": "#/definitions/multiformat"},
            "help": {"$ref": "#/definitions/multiformat"},
            "helpUri": {"type": "string", "format": "uri"},
            "defaultConfiguration": {"type": "object", "properties": {
                "level": {"enum": ["none", "note", "warning", "error"]}, "enabled": {"type": "boolean"}}},
            "properties": {"type": "object"}}},
        "multiformat": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
        "result": {"type": "object", "required": ["message"], "properties": {
            "ruleId": {"type": "string"}, "ruleIndex": {"type": "integer", "minimum": -1},
            "level": {"enum": ["none", "note", "warning", "error"]},
            "kind": {"enum": ["notApplicable", "pass", "fail", "review", "open", "informational"]},
            "message": _MESSAGE,
            "locations": {"type": "array", "items": {"$ref": "#/definitions/location"}},
            "partialFingerprints": {"type": "object", "additionalProperties": {"type": "string"}},
            "properties": {"type": "object"}}},
        "location": {"type": "object", "properties": {
            "physicalLocation": {"type": "object", "anyOf": [{"required": ["address"]},
                                                             {"required": ["artifactLocation"]}],
                                 "properties": {"artifactLocation": _ARTIFACT, "region": {
                                     "type": "object", "properties": {"startLine": {"type": "integer", "minimum": 1},
                                                                      "startColumn": {"type": "integer",
                                                                                      "minimum": 1}}}}},
            "logicalLocations": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "fullyQualifiedName": {"type": "string"}, "kind": {"type": "string"}}}},
            "message": _MESSAGE}},
    },
}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout


def test_json_is_versioned_and_complete() -> None:
    code, out = invoke("--openapi", str(OAS), "--format", "json")
    report = json.loads(out)
    jsonschema_rs.validator_for(JSON_SCHEMA).validate(report)
    assert code == 1 and report["schemaVersion"] == "1.0" and report["profile"] == "house"
    assert report["summary"]["error"] == sum(1 for f in report["findings"] if f["severity"] == "error") > 0
    finding = next(f for f in report["findings"] if f["id"] == "S302-FORBIDDEN")
    assert finding["location"]["file"] == str(OAS) and finding["location"]["line"] == 50
    assert finding["location"]["pointer"] == "/paths/~1found/get/responses/302"
    assert finding["fix"] and finding["doc"].endswith("#s302-forbidden") and len(finding["fingerprint"]) == 24


def test_sarif_is_valid_2_1_0() -> None:
    code, out = invoke("--openapi", str(OAS), "--format", "sarif")
    log = json.loads(out)
    jsonschema_rs.validator_for(SARIF_REQUIRED).validate(log)
    run = log["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert sorted(rules) == sorted(CHECKS)
    for result in run["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1
    levels = {r["level"] for r in run["results"]}
    assert levels == {"error", "warning", "note"}


def test_junit_one_testcase_per_check() -> None:
    code, out = invoke("--openapi", str(OAS), "--format", "junit")
    root = ET.fromstring(out)  # noqa: S314 - our own output
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(CHECKS) == int(suite.get("tests", "0"))
    failed = {c.get("name", "").split(":")[0] for c in cases if c.find("failure") is not None}
    assert "S302-FORBIDDEN" in failed and "S308-POLICY" not in failed  # infos are not failures
    assert int(suite.get("failures", "0")) == len(failed)


def test_text_names_file_line_and_fix(tmp_path: Path) -> None:
    out_file = tmp_path / "report.txt"
    code, _ = invoke("--openapi", str(OAS), "--output", str(out_file))
    text = out_file.read_text()
    assert code == 1 and f"{OAS}:50" in text and "S302-FORBIDDEN" in text and "fix:" in text


def test_fail_on_sets_the_exit_code() -> None:
    assert invoke("--openapi", str(CLEAN))[0] == 0
    assert invoke("--openapi", str(OAS), "--ignore", ",".join(
        i for i in CHECKS if CHECKS[i].house.value == "error"))[0] == 0  # warnings remain: not failing on error
    assert invoke("--openapi", str(OAS), "--fail-on", "warning", "--ignore", ",".join(
        i for i in CHECKS if CHECKS[i].house.value == "error"))[0] == 1
    code, out = invoke("--openapi", str(OAS), "--fail-on", "info", "--format", "json", "--ignore",
                       ",".join(i for i in CHECKS if i not in ("S308-POLICY",)))
    assert code == 1 and {f["id"] for f in json.loads(out)["findings"]} == {"S308-POLICY"}
