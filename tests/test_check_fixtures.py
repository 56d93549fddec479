"""The coverage meta-test of `redirectory check`: every check id fires on its own fixture (a route
of tests/check_fixture_app.py probed live, an operation of openapi-violations.yaml, or an entry of
a HAR file recorded from a real client), and no id fires on a clean route, operation or recording."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from check_servers import Server, start_fixture
from redirectory.check.checks import CHECKS
from redirectory.check.engine import run
from redirectory.check.har import load_har
from redirectory.check.live import LiveOptions, Prober
from redirectory.check.model import Finding
from redirectory.check.openapi import load_openapi
from redirectory.check.profiles import Profile

DATA = Path(__file__).resolve().parent / "data"
OAS = DATA / "check" / "openapi-violations.yaml"
HAR = DATA / "har"

#: id -> where it must fire: ("live", path[, method]), ("openapi", JSON pointer prefix), ("har", file).
FIXTURES: dict[str, tuple[str, ...]] = {
    "RDR-LOC-MISSING": ("live", "/v/loc-missing"),
    "RDR-LOC-EMPTY-INVALID": ("live", "/v/loc-invalid"),
    "RDR-LOC-MULTIPLE": ("live", "/v/loc-multiple"),
    "RDR-LOC-RELATIVE": ("live", "/v/loc-relative"),
    "RDR-LOC-UNDEFINED-STATUS": ("live", "/v/loc-undefined"),
    "RDR-LOC-FRAGMENT": ("live", "/v/loc-fragment"),
    "RDR-SELF-LOOP": ("live", "/v/self-loop"),
    "RDR-CHAIN": ("live", "/v/loop-a"),
    "RDR-TARGET-UNREACHABLE": ("live", "/v/unreachable"),
    "RDR-SCHEME-DOWNGRADE": ("openapi", "/paths/~1downgrade"),
    "RDR-CROSS-ORIGIN": ("live", "/v/cross-origin"),
    "RDR-DEPRECATED-CODE": ("live", "/v/305"),
    "RDR-3XX-DATE": ("live", "/v/no-date"),
    "S302-FORBIDDEN": ("live", "/v/302"),
    "S3XX-RANGE-HIDES-302": ("openapi", "/paths/~1range"),
    "S301-UNSAFE-METHOD": ("live", "/v/301", "POST"),
    "S301-308-UNCONTROLLED-CACHE": ("live", "/v/301-no-cache"),
    "S308-POLICY": ("live", "/v/308"),
    "S303-NO-BODY": ("live", "/v/303-body"),
    "S303-AFTER-UNSAFE": ("live", "/v/303-get"),
    "S303-FOLLOW-GET": ("har", "curl.har"),
    "S303-TARGET-DOCUMENTED": ("openapi", "/paths/~1see-other-undocumented"),
    "S307-METHOD-PRESERVED": ("har", "naive-client.har"),
    "S307-TARGET-ACCEPTS-METHOD": ("live", "/v/307-to-get-only", "POST"),
    "S307-UNEXPECTED-CACHE": ("live", "/v/307-cached"),
    "C304-HAS-CONTENT": ("live", "/v/304-body"),
    "C304-CONTENT-LENGTH": ("live", "/v/304-length"),
    "C304-MISSING-HEADERS": ("live", "/v/304-missing"),
    "C304-EXTRA-METADATA": ("live", "/v/304-extra"),
    "C304-NO-PRECONDITION": ("live", "/v/304-always"),
    "C304-UNSAFE-METHOD": ("live", "/v/304-post", "POST"),
    "C304-ETAG-MISMATCH": ("live", "/v/304-wrong-etag"),
    "COND-INM-IGNORED": ("live", "/v/inm-ignored"),
    "COND-IMS-IGNORED": ("live", "/v/ims-ignored"),
    "COND-WEAK-COMPARISON": ("live", "/v/strong-compare"),
    "COND-STAR": ("live", "/v/no-star"),
    "COND-PRECEDENCE": ("live", "/v/ims-first"),
    "COND-REDIRECT-PRECEDENCE": ("live", "/v/redirect-304"),
    "COND-STRONG-ETAG-REUSE": ("live", "/v/strong-reuse"),
    "OAS-CONDITIONAL-PARAMS": ("openapi", "/paths/~1not-modified"),
    "OAS-REF-UNRESOLVED": ("openapi", "/paths/~1broken-ref"),
    "HTTPLINT-BAD": ("har", "check_har/mitmproxy-duplicate-date.har"),
    "DEP-DEPRECATION-MALFORMED": ("live", "/v/deprecation-malformed"),
    "DEP-SUNSET-MALFORMED": ("live", "/v/sunset-malformed"),
    "DEP-SUNSET-BEFORE-DEPRECATION": ("live", "/v/sunset-before-deprecation"),
    "DEP-SUNSET-PASSED": ("har", "check/lifecycle.har"),
    "DEP-NO-LINK": ("live", "/v/deprecation-no-link"),
    "DEP-SUCCESSOR-MOVED": ("live", "/v/successor-moved"),
    "DEP-SUCCESSOR-BROKEN": ("live", "/v/successor-broken"),
    "OAS-DEPRECATED-UNANNOUNCED": ("openapi", "/paths/~1v1~1deprecated-silently"),
}
CLEAN_ROUTES = ["/clean/ok", "/clean/weak", "/clean/moved", "/clean/temporary", "/clean/relay",
                "/clean/temporary-echo", "/clean/deprecated", "/clean/deprecated-moved"]
PROFILE = Profile()


@pytest.fixture(scope="module")
def fixture_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_fixture(tmp_path_factory.mktemp("check-fixture"))
    try:
        yield server
    finally:
        server.stop()


def _live(server: Server, path: str, method: str = "GET") -> list[Finding]:
    options = LiveOptions(method=method, rate=0, allow_unsafe=method != "GET", allow_hosts=frozenset({"127.0.0.1"}),
                          timeout=5)
    with Prober(options) as prober:
        return run([prober.check_url(server.base + path)], PROFILE)


@pytest.fixture(scope="module")
def openapi_findings() -> list[Finding]:
    return run(load_openapi(OAS), PROFILE)


def test_every_check_has_a_fixture() -> None:
    assert set(FIXTURES) == set(CHECKS)


@pytest.mark.parametrize("check_id", sorted(FIXTURES))
def test_check_fires_on_its_fixture(check_id: str, fixture_app: Server, openapi_findings: list[Finding]) -> None:
    kind, target, *method = FIXTURES[check_id]
    if kind == "live":
        findings = _live(fixture_app, target, *method)
        where = [f for f in findings if f.location.uri and f.location.uri.startswith(fixture_app.base + target)]
    elif kind == "openapi":
        where = [f for f in openapi_findings if (f.location.pointer or "").startswith(target)]
    else:
        where = run(load_har(HAR / target if "/" not in target else DATA / target), PROFILE)
    assert check_id in {f.id for f in where}, [(f.id, f.message) for f in where]


@pytest.mark.parametrize("path", CLEAN_ROUTES)
def test_clean_route_fires_nothing(path: str, fixture_app: Server) -> None:
    assert [(f.id, f.message) for f in _live(fixture_app, path)] == []


def test_clean_unsafe_flows_fire_nothing(fixture_app: Server) -> None:
    assert [(f.id, f.message) for f in _live(fixture_app, "/clean/controller", "POST")] == []
    assert [(f.id, f.message) for f in _live(fixture_app, "/clean/temporary-echo", "POST")] == []


def test_clean_openapi_fires_nothing() -> None:
    assert [(f.id, str(f.location)) for f in run(load_openapi(DATA / "check" / "openapi-clean.yaml"), PROFILE)] == []


def test_correct_client_recordings_of_clean_routes_fire_nothing() -> None:
    """curl following the 307 and 301 correctly, and the clean part of the httpx recording."""
    curl = run(load_har(HAR / "curl.har"), PROFILE)
    assert {f.location.pointer for f in curl} <= {"/log/entries/0", "/log/entries/1"}  # the `-X POST` run only
    httpx_clean = [f for f in run(load_har(HAR / "httpx.har"), PROFILE) if "/clean/" in (f.location.uri or "")]
    # httpx keeps Content-Type on the GET after a 303 (RFC 9110 §15.4 says drop it): a true finding
    assert {(f.id, f.location.uri) for f in httpx_clean} == {("S303-FOLLOW-GET",
                                                              "http://127.0.0.1:8765/clean/controller")}
