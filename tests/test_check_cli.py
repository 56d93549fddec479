"""`redirectory check` options, profiles, ignores, the baseline, and bad input: one clear line
naming the file:line or option and what is valid, exit 2, never a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from gateway_process import cli, free_port
from redirectory.check.checks import CHECKS
from redirectory.check.engine import run
from redirectory.check.model import Exchange, Location, Request, Response
from redirectory.check.profiles import Profile
from redirectory.cli import app

DATA = Path(__file__).resolve().parent / "data"
OAS = DATA / "check" / "openapi-violations.yaml"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "checks.md"

#: The 40 ids of rfc-and-checks.md §6, plus ours for unresolvable $refs.
SECTION_6 = """RDR-LOC-MISSING RDR-LOC-EMPTY-INVALID RDR-LOC-MULTIPLE RDR-LOC-RELATIVE RDR-LOC-UNDEFINED-STATUS
RDR-LOC-FRAGMENT RDR-SELF-LOOP RDR-CHAIN RDR-TARGET-UNREACHABLE RDR-SCHEME-DOWNGRADE RDR-CROSS-ORIGIN
RDR-DEPRECATED-CODE RDR-3XX-DATE S302-FORBIDDEN S3XX-RANGE-HIDES-302 S301-UNSAFE-METHOD S301-308-UNCONTROLLED-CACHE
S308-POLICY S303-NO-BODY S303-AFTER-UNSAFE S303-FOLLOW-GET S303-TARGET-DOCUMENTED S307-METHOD-PRESERVED
S307-TARGET-ACCEPTS-METHOD S307-UNEXPECTED-CACHE C304-HAS-CONTENT C304-CONTENT-LENGTH C304-MISSING-HEADERS
C304-EXTRA-METADATA C304-NO-PRECONDITION C304-UNSAFE-METHOD C304-ETAG-MISMATCH COND-INM-IGNORED COND-IMS-IGNORED
COND-WEAK-COMPARISON COND-STAR COND-PRECEDENCE COND-REDIRECT-PRECEDENCE COND-STRONG-ETAG-REUSE
OAS-CONDITIONAL-PARAMS""".split()
#: Deprecation and sunset (issue 18): RFC 9745, RFC 8594, RFC 8288.
LIFECYCLE = """DEP-DEPRECATION-MALFORMED DEP-SUNSET-MALFORMED DEP-SUNSET-BEFORE-DEPRECATION DEP-SUNSET-PASSED
DEP-NO-LINK DEP-SUCCESSOR-MOVED DEP-SUCCESSOR-BROKEN OAS-DEPRECATED-UNANNOUNCED""".split()


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["check", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def ids_of(*args: str) -> set[str]:
    _, out, _ = invoke("--format", "json", *args)
    return {f["id"] for f in json.loads(out)["findings"]}


def test_all_section_6_ids_are_registered_and_documented() -> None:
    assert len(SECTION_6) == 40
    assert set(CHECKS) == {*SECTION_6, "OAS-REF-UNRESOLVED", "HTTPLINT-BAD", *LIFECYCLE}
    docs = DOCS.read_text()
    for cid in CHECKS:
        assert re.search(rf"^### {re.escape(cid)}$", docs, re.M), f"{cid} is not documented in docs/checks.md"


def redirect(status: int, location: str | None = "https://api.example.com/new", method: str = "GET",
             *headers: tuple[str, str]) -> Exchange:
    fields = [("Date", "Tue, 24 Nov 2026 10:00:00 GMT"), *headers]
    if location is not None:
        fields.append(("Location", location))
    return Exchange(Request(method, "https://api.example.com/old"), Response(status, fields, b""), "live",
                    Location(uri="https://api.example.com/old", method=method))


def test_profiles_and_switches() -> None:
    def found(ex: Exchange, profile: Profile) -> dict[str, str]:
        return {f.id: f.severity.value for f in run([ex], profile)}

    assert found(redirect(302), Profile())["S302-FORBIDDEN"] == "error"
    assert "S302-FORBIDDEN" not in found(redirect(302), Profile("rfc"))
    assert found(redirect(301, None), Profile())["RDR-LOC-MISSING"] == "error"
    assert found(redirect(301, None), Profile("rfc"))["RDR-LOC-MISSING"] == "warning"
    assert found(redirect(303, None, "POST"), Profile("rfc"))["RDR-LOC-MISSING"] == "error"
    cached = ("Cache-Control", "max-age=60")
    assert found(redirect(308, "https://api.example.com/new", "GET", cached), Profile()) == {"S308-POLICY": "info"}
    assert found(redirect(308, "https://api.example.com/new", "GET", cached), Profile(policy_308="allow")) == {}
    assert found(redirect(308, "https://api.example.com/new", "GET", cached),
                 Profile(policy_308="error"))["S308-POLICY"] == "error"
    assert found(redirect(307, "/new"), Profile()) == {"RDR-LOC-RELATIVE": "info"}
    assert found(redirect(307, "/new"), Profile(absolute_location=True)) == {"RDR-LOC-RELATIVE": "error"}
    assert found(redirect(307, "https://other.example.com/x"), Profile()) == {"RDR-CROSS-ORIGIN": "warning"}
    assert found(redirect(307, "https://other.example.com/x"),
                 Profile(allowed_origins=frozenset({"https://other.example.com"}))) == {}
    assert found(redirect(307, "http://api.example.com/new"), Profile())["RDR-SCHEME-DOWNGRADE"] == "error"


def test_ignore_option_and_x_redirectory_ignore(tmp_path: Path) -> None:
    assert "S302-FORBIDDEN" in ids_of("--openapi", str(OAS))
    assert "S302-FORBIDDEN" not in ids_of("--openapi", str(OAS), "--ignore", "s302-forbidden")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {
        "/a": {"get": {"x-redirectory-ignore": ["S302-FORBIDDEN"], "responses": {"302": {"description": "x"}}}},
        "/b": {"get": {"responses": {"302": {"description": "x", "x-redirectory-ignore": "RDR-LOC-MISSING"}}}},
    }}, indent=2))
    _, out, _ = invoke("--openapi", str(spec), "--format", "json")
    found = {(f["id"], f["location"]["pointer"], f["location"]["line"]) for f in json.loads(out)["findings"]}
    assert found == {("RDR-LOC-MISSING", "/paths/~1a/get/responses/302", 14),  # JSON keeps its line numbers
                     ("S302-FORBIDDEN", "/paths/~1b/get/responses/302", 23)}


def test_baseline_keeps_legacy_findings_out(tmp_path: Path) -> None:
    baseline, spec = tmp_path / "baseline.json", tmp_path / "spec.yaml"
    spec.write_text(OAS.read_text())
    code, _, err = invoke("--openapi", str(spec), "--write-baseline", str(baseline), "--format", "json")
    assert code == 0 and "wrote" in err
    code, out, _ = invoke("--openapi", str(spec), "--baseline", str(baseline), "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["findings"] == [] and report["summary"]["baselined"] > 20
    # a new violation in an edited spec is still reported; the shifted lines keep the old ones baselined
    spec.write_text(OAS.read_text().replace("paths:\n", "paths:\n  /new-302:\n    get:\n      responses:\n"
                                                         "        \"302\": {description: new}\n", 1))
    code, out, _ = invoke("--openapi", str(spec), "--baseline", str(baseline), "--format", "json")
    assert code == 1 and {f["location"]["uri"] for f in json.loads(out)["findings"]} == {"/new-302"}


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("openapi: 3.1.0\npaths:\n  /a: [unclosed\n")
    swagger = tmp_path / "swagger.yaml"
    swagger.write_text("swagger: '2.0'\npaths: {}\n")
    not_har = tmp_path / "x.har"
    not_har.write_text('{"log": {"entries": 3}}')
    broken_har = tmp_path / "broken.har"
    broken_har.write_text('{\n  "log": {\n    "entries": [,]\n  }\n}')
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("openapi: 3.0.0\npaths:\n  /a:\n    x-redirectory-ignore: [NOPE]\n")
    cases = [
        (["--openapi", str(tmp_path / "missing.yaml")], "missing.yaml: no such file"),
        (["--openapi", str(bad_yaml)], f"{bad_yaml}:4: invalid YAML"),
        (["--openapi", str(swagger)], f"{swagger}:1: not an OpenAPI 3.0/3.1/3.2 document"),
        (["--openapi", str(unknown)], f"{unknown}:4: unknown check id NOPE"),
        (["--har", str(not_har)], "not a HAR file (expected an object with log.entries"),
        (["--har", str(broken_har)], f"{broken_har}:3: invalid JSON"),
        (["ftp://example.com/x"], "bad URL 'ftp://example.com/x': expected an absolute http:// or https:// URL"),
        (["--ignore", "NOPE", "--openapi", str(OAS)], "--ignore: unknown check id NOPE"),
        (["--format", "xml", "--openapi", str(OAS)], "--format 'xml' is not valid: use one of text, json, sarif, junit"),
        (["--profile", "strict", "--openapi", str(OAS)], "--profile 'strict' is not valid: use one of house, rfc"),
        (["--method", "POST", "http://127.0.0.1:9/"], "--method POST is unsafe: add --allow-unsafe"),
        (["--baseline", str(tmp_path / "none.json"), "--openapi", str(OAS)], "no such baseline file"),
        (["--header", "nocolon", "http://127.0.0.1:9/"], "--header 'nocolon' is not valid: use 'Name: value'"),
        ([], "nothing to check"),
    ]
    for args, expected in cases:
        code, out, err = invoke(*args)
        assert code == 2, (args, out, err)
        assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)


def test_installed_command_exit_codes() -> None:
    """The real `redirectory` executable: 2 on bad input (no traceback), 1 on findings."""
    result = cli("check", "--har", str(OAS))
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert "not JSON" in result.stderr or "invalid JSON" in result.stderr
    result = cli("check", "--openapi", str(OAS))
    assert result.returncode == 1 and "S302-FORBIDDEN" in result.stdout


def test_write_baseline_exits_0_once_written(tmp_path: Path) -> None:
    """The real command: writing a baseline succeeds (exit 0) although the findings are errors; they are
    reported as baselined. A baseline that cannot be written, or would miss an unreachable URL, is exit 2."""
    baseline = tmp_path / "baseline.json"
    result = cli("check", "--openapi", str(OAS), "--write-baseline", str(baseline))
    written = json.loads(baseline.read_text())["findings"]
    assert result.returncode == 0, result.stderr
    assert any(f["id"] == "S302-FORBIDDEN" for f in written)
    assert f"wrote {len(written)} findings to baseline {baseline}" in result.stderr
    assert f"0 errors, 0 warnings, 0 infos, {len(written)} baselined" in result.stdout
    # the same findings without the baseline still fail the run: exit 0 came from writing it
    assert cli("check", "--openapi", str(OAS)).returncode == 1

    result = cli("check", "--openapi", str(OAS), "--write-baseline", str(tmp_path / "no" / "such" / "dir.json"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {tmp_path}/no/such/dir.json: cannot write the baseline: ")
    assert result.stdout == ""

    port = free_port()  # nothing listens there
    unreachable = tmp_path / "unreachable.json"
    result = cli("check", "--rate", "0", "--timeout", "2", "--write-baseline", str(unreachable),
                 f"http://127.0.0.1:{port}/x")
    assert result.returncode == 2 and not unreachable.exists()
    assert f"baseline {unreachable} not written" in result.stderr


def test_unreachable_url_is_not_a_clean_run() -> None:
    port = free_port()  # nothing listens there
    code, _, err = invoke("--rate", "0", "--timeout", "2", f"http://127.0.0.1:{port}/x")
    assert code == 2 and f"cannot check http://127.0.0.1:{port}/x: ConnectError" in err


def test_list_shows_every_id() -> None:
    code, out, _ = invoke("--list")
    assert code == 0 and all(cid in out for cid in CHECKS)
