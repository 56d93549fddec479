"""The conditional-request engine (RFC 9110 §13) and its parsers: examples and properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redirectory.conditional import (
    Outcome,
    Preconditions,
    Validators,
    evaluate,
    not_modified_headers,
    outcome_response,
    response_validators,
)
from redirectory.validators import (
    ANY,
    EntityTag,
    etag_of_bytes,
    etag_of_version,
    format_http_date,
    parse_etag_list,
    parse_http_date,
    strong_match,
    weak_match,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
D0 = format_http_date(T0)
BEFORE = format_http_date(T0 - timedelta(seconds=1))
AFTER = format_http_date(T0 + timedelta(seconds=1))
V = Validators(EntityTag("v1"), T0)
VW = Validators(EntityTag("v1", weak=True), T0)


def status(method: str, validators: Validators = V, unconditional: int = 200, require: bool = False, **hdrs: str) -> int:
    outcome = evaluate(method, Preconditions(**hdrs), validators, unconditional_status=unconditional,
                       require_if_match=require)
    return unconditional if outcome.proceed else int(outcome.status or 0)


# -- §13.2.2 step by step ---------------------------------------------------------------------
@pytest.mark.parametrize(("method", "headers", "expected"), [
    ("GET", {}, 200),
    # Step 1: If-Match, strong comparison
    ("PUT", {"if_match": '"v1"'}, 200),
    ("PUT", {"if_match": '"v0", "v1"'}, 200),
    ("PUT", {"if_match": '"v0"'}, 412),
    ("PUT", {"if_match": 'W/"v1"'}, 412),  # a weak tag never matches strongly
    ("PUT", {"if_match": "*"}, 200),
    ("PUT", {"if_match": "garbage"}, 412),  # cannot verify: fail closed
    ("GET", {"if_match": '"v0"'}, 412),
    # Step 2: If-Unmodified-Since (ignored when If-Match is present)
    ("PUT", {"if_unmodified_since": D0}, 200),
    ("PUT", {"if_unmodified_since": BEFORE}, 412),
    ("PUT", {"if_unmodified_since": "yesterday"}, 200),  # invalid date: ignored
    ("PUT", {"if_match": '"v1"', "if_unmodified_since": BEFORE}, 200),
    # Step 3: If-None-Match, weak comparison; 304 for GET/HEAD, 412 otherwise
    ("GET", {"if_none_match": '"v1"'}, 304),
    ("GET", {"if_none_match": 'W/"v1"'}, 304),
    ("HEAD", {"if_none_match": '"x", "v1"'}, 304),
    ("GET", {"if_none_match": '"v0"'}, 200),
    ("GET", {"if_none_match": "*"}, 304),
    ("POST", {"if_none_match": "*"}, 412),
    ("DELETE", {"if_none_match": '"v1"'}, 412),
    # Step 4: If-Modified-Since, GET/HEAD only, ignored with If-None-Match
    ("GET", {"if_modified_since": D0}, 304),
    ("GET", {"if_modified_since": AFTER}, 304),
    ("GET", {"if_modified_since": BEFORE}, 200),
    ("POST", {"if_modified_since": D0}, 200),
    ("GET", {"if_none_match": '"v0"', "if_modified_since": D0}, 200),  # COND-PRECEDENCE
    ("GET", {"if_none_match": "garbage", "if_modified_since": D0}, 200),
    # Order: If-Match failure beats If-None-Match
    ("GET", {"if_match": '"v0"', "if_none_match": '"v1"'}, 412),
])
def test_rfc9110_order(method: str, headers: dict[str, str], expected: int) -> None:
    assert status(method, **headers) == expected


def test_weak_etag_compares_weakly_for_if_none_match_only() -> None:
    assert status("GET", VW, if_none_match='"v1"') == 304
    assert status("PUT", VW, if_match='"v1"') == 412
    assert status("PUT", VW, if_match='W/"v1"') == 412
    assert status("PUT", VW, if_match="*") == 200


def test_preconditions_ignored_for_non_2xx_and_for_options() -> None:
    for unconditional in (301, 303, 307, 404, 500):
        assert status("GET", unconditional=unconditional, if_none_match='"v1"') == unconditional
    assert status("GET", unconditional=412, if_none_match='"v1"') == 304  # 412 still evaluates (§13.2.1)
    assert status("OPTIONS", if_match='"nope"') == 200
    assert status("TRACE", if_none_match="*") == 200


def test_missing_resource_and_missing_validators() -> None:
    gone = Validators(None, None, exists=False)
    assert status("PUT", gone, if_match="*") == 412
    assert status("PUT", gone, if_none_match="*") == 200  # create only if absent
    bare = Validators()
    assert status("PUT", bare, if_unmodified_since=BEFORE) == 200  # no date: ignored (§13.1.4)
    assert status("GET", bare, if_modified_since=D0) == 200
    assert status("PUT", bare, if_match='"v1"') == 412


def test_require_if_match_gives_428_for_unsafe_methods_only() -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        outcome = evaluate(method, Preconditions(), V, require_if_match=True)
        assert outcome.status == 428 and "If-Match" in outcome.detail
    assert evaluate("GET", Preconditions(), V, require_if_match=True).proceed
    assert evaluate("PUT", Preconditions(if_match='"v1"'), V, require_if_match=True).proceed
    assert evaluate("PUT", Preconditions(), V, require_if_match=True, unconditional_status=404).proceed


def test_dates_compare_at_one_second_resolution() -> None:
    fine = Validators(EntityTag("v1"), T0 + timedelta(microseconds=999_999))
    assert status("GET", fine, if_modified_since=D0) == 304


def test_304_keeps_only_the_rfc_set_and_cookies() -> None:
    headers = [("Content-Type", "application/json"), ("Content-Length", "10"), ("ETag", '"a"'),
               ("Cache-Control", "max-age=60"), ("Vary", "Accept"), ("Date", D0), ("Expires", D0),
               ("Content-Location", "/a"), ("Set-Cookie", "s=1"), ("Last-Modified", D0), ("X-Trace", "1"),
               ("Content-Encoding", "gzip")]
    kept = dict(not_modified_headers(headers))
    assert set(kept) == {"etag", "cache-control", "vary", "date", "expires", "content-location", "set-cookie"}
    # Nothing else, not even Last-Modified without an ETag
    assert not_modified_headers([("Last-Modified", D0), ("Content-Type", "x")]) == []
    response = outcome_response(Outcome(304), headers)
    assert response.status == 304 and response.body == b""


def test_412_and_428_bodies_use_the_guide_error_format() -> None:
    response = outcome_response(Outcome(412, "If-Match", "the resource's current ETag does not match"))
    assert response.status == 412 and b'"errors"' in response.body and b"preconditionFailed" in response.body
    with pytest.raises(ValueError, match="only 304, 412 and 428"):
        outcome_response(Outcome(None))


def test_preconditions_from_headers_joins_repeated_fields() -> None:
    pre = Preconditions.from_headers([("If-None-Match", '"a"'), ("if-none-match", '"b"'), ("X", "y")])
    assert pre.if_none_match == '"a", "b"' and pre.if_match is None
    assert not Preconditions() and pre


def test_validators_of_and_bad_input() -> None:
    v = Validators.of(version=7, updated_at=T0)
    assert v.headers() == [("etag", '"7"'), ("last-modified", D0)]
    assert str(Validators.of(etag='W/"x"').etag) == 'W/"x"'
    with pytest.raises(ValueError, match="either etag or version"):
        Validators.of(etag='"x"', version=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        Validators.of(updated_at=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="invalid entity-tag"):
        EntityTag.parse("x")
    with pytest.raises(ValueError, match="invalid entity-tag value"):
        EntityTag('a"b')
    assert response_validators([("ETag", "broken"), ("Last-Modified", D0)]) == Validators(None, T0)


def test_etag_helpers() -> None:
    assert etag_of_bytes(b"a") == etag_of_bytes(b"a") != etag_of_bytes(b"b")
    assert etag_of_bytes(b"a", weak=True).weak
    assert str(etag_of_version('a "b"')) == '"a%20%22b%22"'
    assert strong_match(EntityTag("a"), EntityTag("a")) and not strong_match(EntityTag("a", True), EntityTag("a"))
    assert weak_match(EntityTag("a", True), EntityTag("a"))


# -- parsers: properties -------------------------------------------------------------------------
etagc = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"'), max_size=12)
tags = st.builds(EntityTag, etagc, st.booleans())


@given(st.lists(tags, min_size=1, max_size=6), st.sampled_from([",", ", ", " ,\t", ",,"]))
def test_etag_lists_round_trip(values: list[EntityTag], sep: str) -> None:
    assert parse_etag_list(sep.join(map(str, values))) == tuple(values)


@given(st.text(max_size=30))
def test_etag_list_parser_never_raises(text: str) -> None:
    result = parse_etag_list(text)
    assert result is None or result == ANY or all(isinstance(t, EntityTag) for t in result)


@pytest.mark.parametrize("text", ['"a" "b"', '"a', "W/a", 'w/"a"', "", " , ", '"a" x', "**"])
def test_invalid_etag_lists(text: str) -> None:
    assert parse_etag_list(text) is None


dates = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC))


@given(dates)
def test_http_date_round_trip_and_three_formats(when: datetime) -> None:
    assert parse_http_date(format_http_date(when)) == when
    asctime = when.strftime("%a %b ") + f"{when.day:2d}" + when.strftime(" %H:%M:%S %Y")
    assert parse_http_date(asctime) == when


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2060, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)))
@settings(max_examples=50)
def test_rfc850_dates_use_the_50_year_rule(when: datetime) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    text = when.strftime("%A, %d-%b-%y %H:%M:%S GMT")
    expected = when if when.year <= 2076 else when.replace(year=when.year - 100)
    assert parse_http_date(text, now=now) == expected


@given(st.text(max_size=40))
def test_http_date_parser_never_raises(text: str) -> None:
    result = parse_http_date(text)
    assert result is None or result.tzinfo is UTC


@pytest.mark.parametrize("text", ["Sun, 31 Feb 2026 00:00:00 GMT", "Sun, 06 Nov 1994 08:49:37 UTC",
                                  "Sun, 6 Nov 1994 08:49:37 GMT", "1994-11-06T08:49:37Z",
                                  "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT"])
def test_invalid_http_dates(text: str) -> None:
    assert parse_http_date(text) is None


# -- engine properties ---------------------------------------------------------------------------
methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
opt_header = st.none() | st.sampled_from(['"v1"', 'W/"v1"', '"v0"', "*", '"v0", W/"v1"', "junk", D0, BEFORE, AFTER])


@given(methods, opt_header, opt_header, opt_header, opt_header)
def test_engine_invariants(method: str, im: str | None, ius: str | None, inm: str | None, ims: str | None) -> None:
    outcome = evaluate(method, Preconditions(im, ius, inm, ims), V)
    assert outcome.status in (None, 304, 412)
    if outcome.status == 304:
        assert method in ("GET", "HEAD") and (inm is not None or ims is not None)
    if im is None and ius is None and inm is None and ims is None:
        assert outcome.proceed
    if inm is not None:  # If-Modified-Since never decides when If-None-Match is present
        assert outcome.decided_by != "If-Modified-Since"
    # any unconditional response that is not 2xx or 412 is left alone
    assert evaluate(method, Preconditions(im, ius, inm, ims), V, unconditional_status=404).proceed
