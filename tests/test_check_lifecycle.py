"""`redirectory check` on Deprecation (RFC 9745), Sunset (RFC 8594) and Link (RFC 8288) (issue 18):
the parsers and checks on crafted responses, a HAR written for them, an OpenAPI document, and live
probes of the fixture app (tests/check_fixture_app.py), which sends these fields right and wrong."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from check_servers import Server, start_fixture
from redirectory.check.engine import run
from redirectory.check.har import load_har
from redirectory.check.lifecycle import parse_deprecation, parse_links, parse_sunset, successor_targets
from redirectory.check.lint import notes
from redirectory.check.live import LiveOptions, Prober
from redirectory.check.model import Exchange, Finding, Location, Request, Response
from redirectory.check.openapi import load_openapi
from redirectory.check.profiles import Profile

DATA = Path(__file__).resolve().parent / "data" / "check"
HOUSE, RFC = Profile(), Profile("rfc")
DATE = "Tue, 01 Dec 2026 10:00:00 GMT"
LINK = '</v2/users>; rel="successor-version"'


# -- the parsers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "fix"), [
    ("true", "@1767225600` (the seconds"),  # the early drafts' form: the fix shows the RFC's form
    ("?1", "@1767225600` (the seconds"),
    ("Thu, 01 Jan 2026 00:00:00 GMT", "`Deprecation: @1767225600`"),  # an HTTP-date: converted
    ("1767225600", "`Deprecation: @1767225600`"),
    ("@1767225600.5", "`Deprecation: @1767225600`"),
    ("2026-01-01T00:00:00Z", "`Deprecation: @1767225600`"),
    ("soon", "@1767225600"),
    ("@999999999999999", "@1767225600"),  # a 15-digit sf-integer no calendar holds
])
def test_malformed_deprecation(value: str, fix: str) -> None:
    parsed = parse_deprecation([value])
    assert parsed.when is None and parsed.problem and repr(value) in parsed.problem and fix in (parsed.fix or "")


def test_deprecation_forms_accepted_and_repeated() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_deprecation(["@1767225600"]).when == when
    assert parse_deprecation([" @1767225600;reason=\"moved\" "]).when == when  # SF parameters are ignored
    repeated = parse_deprecation(["@1767225600", "@1767225601"])
    assert repeated.when is None and "2 Deprecation field lines" in (repeated.problem or "")


@pytest.mark.parametrize(("value", "why"), [
    ("Wed, 01 Jan 2026 00:00:00 GMT", "wrong weekday"),  # 2026-01-01 is a Thursday
    ("Thursday, 01-Jan-26 00:00:00 GMT", "obsolete"),
    ("Thu Jan  1 00:00:00 2026", "obsolete"),
    ("@1767225600", "Structured Field Date"),
    ("2026-01-01T00:00:00Z", "not an HTTP-date"),
    ("Thu, 01 Jan 2026 00:00:00 +0000", "not an HTTP-date"),
])
def test_malformed_sunset(value: str, why: str) -> None:
    parsed = parse_sunset([value])
    assert parsed.when is None and why in (parsed.problem or "")
    assert parsed.fix == "send `Sunset: Thu, 01 Jan 2026 00:00:00 GMT`"
    assert parse_sunset(["Thu, 01 Jan 2026 00:00:00 GMT"]).when == datetime(2026, 1, 1, tzinfo=UTC)


def test_links() -> None:
    links = parse_links(['<https://a.example/x,y>; rel="successor-version deprecation", </d>;rel=sunset',
                         '<x>; title="a, b"; rel=latest-version; rel=other', "not-a-link"])
    assert [(link.target, sorted(link.rels)) for link in links] == [
        ("https://a.example/x,y", ["deprecation", "successor-version"]), ("/d", ["sunset"]),
        ("x", ["latest-version"])]  # a comma in <...> or quotes does not split; only the first rel counts
    assert successor_targets("http://h/api/v1/users?x", [LINK, LINK]) == ["http://h/v2/users"]


# -- the checks on crafted responses ---------------------------------------------------------------
def exchange(status: int, *fields: tuple[str, str], probe: str | None = None,
             started: datetime | None = None) -> Exchange:
    request = Request("GET", "https://api.example.com/v1/users")
    response = Response(status, list(fields), b"")
    ex = Exchange(request, response, "har", Location(uri=request.url, method="GET"), probe=probe, started=started)
    ex.httplint_notes, ex.cache_control, ex.httplint_bad = notes(request, response)
    return ex


def found(ex: Exchange, profile: Profile = HOUSE) -> dict[str, Finding]:
    return {f.id: f for f in run([ex], profile) if f.id.startswith(("DEP-", "HTTPLINT"))}


def test_malformed_fields_are_ours_not_httplints() -> None:
    ex = exchange(200, ("Date", DATE), ("Deprecation", "true"), ("Sunset", "2027-01-01"), ("Link", LINK))
    got = found(ex)
    assert set(got) == {"DEP-DEPRECATION-MALFORMED", "DEP-SUNSET-MALFORMED"}  # no HTTPLINT-BAD repeating them
    assert got["DEP-SUNSET-MALFORMED"].severity.value == "error"
    assert got["DEP-SUNSET-MALFORMED"].fix == "send `Sunset: Fri, 01 Jan 2027 00:00:00 GMT`"
    twice = exchange(200, ("Date", DATE), ("Sunset", "Fri, 01 Jan 2027 00:00:00 GMT"),
                     ("Sunset", "Sat, 02 Jan 2027 00:00:00 GMT"), ("Link", LINK))
    assert set(found(twice)) == {"DEP-SUNSET-MALFORMED"}


def test_sunset_before_deprecation_levels() -> None:
    ex = exchange(200, ("Date", DATE), ("Deprecation", "@1830297600"), ("Sunset", "Wed, 30 Jun 2027 00:00:00 GMT"),
                  ("Link", LINK))
    assert found(ex)["DEP-SUNSET-BEFORE-DEPRECATION"].severity.value == "warning"
    assert found(ex, RFC)["DEP-SUNSET-BEFORE-DEPRECATION"].severity.value == "error"  # RFC 9745 §4: MUST NOT
    same = exchange(200, ("Date", DATE), ("Deprecation", "@1830297600"), ("Sunset", "Sat, 01 Jan 2028 00:00:00 GMT"),
                    ("Link", LINK))
    assert found(same) == {}


def test_sunset_passed_uses_date_then_recorded_time_then_clock() -> None:
    sunset = ("Sunset", "Sun, 01 Nov 2026 00:00:00 GMT")
    by_date = found(exchange(200, ("Date", DATE), sunset, ("Link", LINK)))["DEP-SUNSET-PASSED"]
    assert "the response's Date is Tue, 01 Dec 2026" in by_date.message and by_date.severity.value == "warning"
    assert found(exchange(200, ("Date", "Sat, 31 Oct 2026 10:00:00 GMT"), sunset, ("Link", LINK))) == {}
    recorded = exchange(200, sunset, ("Link", LINK), started=datetime(2026, 11, 2, tzinfo=UTC))
    assert "the time it was recorded" in found(recorded)["DEP-SUNSET-PASSED"].message
    clock = exchange(200, sunset, ("Link", LINK))
    assert found(clock, Profile(now=datetime(2026, 10, 1, tzinfo=UTC))) == {}
    assert "checker's clock" in found(clock, Profile(now=datetime(2027, 1, 1, tzinfo=UTC)))["DEP-SUNSET-PASSED"].message
    assert found(exchange(200, ("Date", DATE), sunset, ("Link", LINK)), RFC)["DEP-SUNSET-PASSED"].severity.value == "info"
    # only a 2xx outlives its end: a redirect or a 410 after the Sunset is how an endpoint ends
    for code in (308, 410):
        assert found(exchange(code, ("Date", DATE), ("Location", "/v2/users"), sunset, ("Link", LINK))) == {}


def test_no_link_and_probes() -> None:
    bare = exchange(200, ("Date", DATE), ("Deprecation", "@1767225600"), ("Link", '</x>; rel="alternate"'))
    assert set(found(bare)) == {"DEP-NO-LINK"} and found(bare)["DEP-NO-LINK"].severity.value == "info"
    docs = exchange(200, ("Date", DATE), ("Deprecation", "@1767225600"), ("Link", '</notes>; rel="deprecation"'))
    assert found(docs) == {}
    not_modified = exchange(304, ("Date", DATE), ("ETag", '"v1"'), ("Deprecation", "@1767225600"))
    assert found(not_modified) == {}  # a 304 need not repeat Link: its 200 is judged
    # a conditional re-request repeats its base's fields: judged once, on the base
    assert found(exchange(200, ("Date", DATE), ("Deprecation", "true"), probe="refetch")) == {}


# -- a HAR and an OpenAPI document -----------------------------------------------------------------
def test_har_fixture() -> None:
    got = {(f.id, f.location.pointer, f.severity.value) for f in run(load_har(DATA / "lifecycle.har"), HOUSE)}
    assert got == {("DEP-SUNSET-PASSED", "/log/entries/0", "warning"),  # the recorded Date is after the Sunset
                   ("DEP-DEPRECATION-MALFORMED", "/log/entries/1", "error"),  # `true`
                   ("DEP-SUNSET-MALFORMED", "/log/entries/1", "error"),  # `2027-06-30`
                   ("DEP-NO-LINK", "/log/entries/1", "info"),
                   ("DEP-SUNSET-BEFORE-DEPRECATION", "/log/entries/4", "warning"),
                   ("DEP-SUNSET-PASSED", "/log/entries/5", "warning")}  # no Date: startedDateTime is "now"


def test_openapi_fixture() -> None:
    got = {(f.id, f.location.pointer, f.location.line) for f in run(load_openapi(DATA / "openapi-violations.yaml"),
                                                                     HOUSE) if "~1v1~1" in (f.location.pointer or "")}
    assert got == {
        ("OAS-DEPRECATED-UNANNOUNCED", "/paths/~1v1~1deprecated-silently/get/deprecated", 139),  # once, at `deprecated`
        ("DEP-DEPRECATION-MALFORMED", "/paths/~1v1~1deprecation-draft-forms/get/responses/200", 147),  # YAML `true`
        ("DEP-SUNSET-MALFORMED", "/paths/~1v1~1deprecation-draft-forms/get/responses/200", 147),  # a YAML timestamp
        ("DEP-SUNSET-BEFORE-DEPRECATION", "/paths/~1v1~1sunset-first/get/responses/200", 156),
        ("DEP-NO-LINK", "/paths/~1v1~1sunset-first/get/responses/200", 156),
        ("DEP-SUNSET-MALFORMED", "/paths/~1v1~1sunset-date-time/get/responses/200", 164),  # format: date-time
    }
    clean = [f for f in run(load_openapi(DATA / "openapi-clean.yaml"), HOUSE)]
    assert clean == []  # a deprecated operation documenting Deprecation, Sunset and a successor Link


# -- live ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fixture_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_fixture(tmp_path_factory.mktemp("check-lifecycle"))
    try:
        yield server
    finally:
        server.stop()


def probe(server: Server, *paths: str) -> tuple[list[Exchange], list[Finding], list[tuple[str, str]]]:
    sent: list[tuple[str, str]] = []
    with Prober(LiveOptions(rate=0, timeout=5), on_request=lambda m, u: sent.append((m, u))) as prober:
        heads = [prober.check_url(server.base + path) for path in paths]
    return heads, [f for f in run(heads, HOUSE) if f.id.startswith("DEP-")], sent


def test_live_wrong_headers(fixture_app: Server) -> None:
    base = fixture_app.base
    _, findings, _ = probe(fixture_app, "/v/deprecation-malformed", "/v/deprecation-http-date", "/v/sunset-malformed",
                           "/v/sunset-before-deprecation", "/v/sunset-passed", "/v/sunset-passed-redirect",
                           "/v/deprecation-no-link", "/v/successor-moved", "/v/successor-broken")
    got = {(f.id, (f.location.uri or "").removeprefix(base)) for f in findings}
    assert got == {("DEP-DEPRECATION-MALFORMED", "/v/deprecation-malformed"),
                   ("DEP-DEPRECATION-MALFORMED", "/v/deprecation-http-date"),
                   ("DEP-SUNSET-MALFORMED", "/v/sunset-malformed"),
                   ("DEP-SUNSET-BEFORE-DEPRECATION", "/v/sunset-before-deprecation"),
                   ("DEP-SUNSET-PASSED", "/v/sunset-passed"),  # the 308 with the same fields is not (a move ends it)
                   ("DEP-NO-LINK", "/v/deprecation-no-link"),
                   ("DEP-SUCCESSOR-MOVED", "/v/successor-moved"),
                   ("DEP-SUCCESSOR-BROKEN", "/v/successor-broken")}
    by_id = {f.id: f for f in findings}
    assert by_id["DEP-SUCCESSOR-MOVED"].fix == f"point the successor-version link at the final URL {base}/clean/ok"
    assert by_id["DEP-SUCCESSOR-MOVED"].severity.value == "warning"
    assert "answers 404" in by_id["DEP-SUCCESSOR-BROKEN"].message
    assert by_id["DEP-SUCCESSOR-BROKEN"].severity.value == "error"
    assert by_id["DEP-SUNSET-PASSED"].evidence["now_from"] == "the response's Date"


def test_live_successor_probe_is_polite(fixture_app: Server) -> None:
    base = fixture_app.base
    heads, findings, sent = probe(fixture_app, "/clean/deprecated", "/clean/deprecated-moved",
                                  "/v/successor-get-only")
    assert findings == []  # the headers sent right, on a 200 and on a 301
    # /clean/ok, the successor of both, is asked once in the run, with HEAD
    assert sent.count(("HEAD", f"{base}/clean/ok")) == 1
    # HEAD answered 405: the checker asked again with GET
    assert ("HEAD", f"{base}/v/get-only") in sent and ("GET", f"{base}/v/get-only") in sent
    (successor,) = heads[2].successors
    assert (successor.request.method, successor.status) == ("GET", 200)
    assert not any(method not in ("GET", "HEAD") for method, _ in sent)


def test_hostile_successor_links_are_findings_not_tracebacks() -> None:
    """Targets no request can reach (nothing listens on port 1) become findings; a long list is cut."""
    links = ", ".join(f'<http://127.0.0.1:1/v{n}>; rel="successor-version"' for n in range(50))
    weird = '<http://127.0.0.1:99999/>; rel="successor-version", <http://%00bad/>; rel="successor-version"'
    sent: list[tuple[str, str]] = []
    with Prober(LiveOptions(rate=0, timeout=2), on_request=lambda m, u: sent.append((m, u))) as prober:
        for link in (links, weird):
            ex = Exchange(Request("GET", "http://127.0.0.1:1/v1"), Response(200, [("Link", link)]), "live",
                          Location(uri="http://127.0.0.1:1/v1", method="GET"))
            prober._probe_successors(ex, ex.request.url)
            broken = [f for f in run([ex], HOUSE) if f.id == "DEP-SUCCESSOR-BROKEN"]
            assert len(broken) == len(ex.successors) and all("cannot be reached" in f.message for f in broken)
    assert len(sent) == 3 + 2  # the first three of fifty, then both weird ones (a HEAD each: no answer, no GET)
