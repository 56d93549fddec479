"""Differential test: our conditional engine against Django's `get_conditional_response`.

Hypothesis feeds the same request headers, validators and unconditional status to both and
requires the same status code, except in the cases below, where RFC 9110 and Django disagree
(or the RFC leaves the choice open); each is checked against the RFC instead:

D1. RFC 9110 §13.2.1: "a server MUST ignore the conditional request header fields ... when
    received with a request method that does not involve the selection or modification of a
    selected representation, such as CONNECT, OPTIONS, or TRACE". Django evaluates them.
D2. RFC 9110 §13.2.1: preconditions are evaluated when the unconditional response "would have
    been a 2xx (Successful) or 412 (Precondition Failed)". Django returns any non-2xx as is, 412
    included.
D3. RFC 9110 §13.1.1: If-Match `*` is true when "the origin server has a current representation
    for the target resource". Django fails it when the resource has no ETag.
D4. RFC 9110 §13.1.2: If-None-Match `*` is false when "the origin server has a current
    representation". Django lets it pass when the resource has no ETag.
D5. RFC 9110 §13.1.4: "A recipient MUST ignore the If-Unmodified-Since header field ... if the
    resource does not have a modification date available". Django answers 412.
D6. RFC 9110 §13.1.3: "A recipient MUST ignore If-Modified-Since if the request contains an
    If-None-Match header field". Django evaluates If-Modified-Since when If-None-Match holds no
    valid entity-tag (it treats an unparsable If-None-Match as absent).
D7. A field value that is not `*` / #entity-tag (§13.1.1, §13.1.2 grammar): the RFC defines no
    outcome. Django keeps the valid members and ignores the rest; we treat an invalid If-Match
    as failed (412: a guarded write we cannot verify) and ignore an invalid If-None-Match.
D8. RFC 9110 §8.8.3: an opaque-tag may contain a comma. Django splits the list at every comma,
    so `"a,b"` never matches; we parse the quoted string (see test_d8_comma_inside_an_etag).
"""

from __future__ import annotations

from datetime import UTC, datetime

import django
import pytest
from django.conf import settings
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

if not settings.configured:
    settings.configure(DEBUG=False, USE_TZ=True, DEFAULT_CHARSET="utf-8")
    django.setup()

from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.utils.cache import get_conditional_response  # noqa: E402

from redirectory.conditional import (  # noqa: E402
    UNCONDITIONAL_METHODS,
    Preconditions,
    Validators,
    evaluate,
)
from redirectory.validators import EntityTag, format_http_date, parse_etag_list  # noqa: E402

BASE = 1_770_000_000  # seconds since the epoch
opaque = st.sampled_from(["a", "b", "v1", "W", "x/y"])
tag = st.builds(EntityTag, opaque, st.booleans())
tag_list = st.lists(tag, min_size=1, max_size=3).map(lambda ts: ", ".join(map(str, ts)))
garbage = st.sampled_from(["junk", '"a', 'a"', '"a" "b"', "W/a", '"a", junk'])
etag_field = st.none() | st.just("*") | tag_list | garbage
offset = st.integers(-3, 3)


def _date(seconds: int) -> str:
    return format_http_date(datetime.fromtimestamp(seconds, UTC))


date_field = st.none() | offset.map(lambda o: _date(BASE + o)) | st.sampled_from(["yesterday", "Sun, 99 Nov 2026"])


def ours(method: str, headers: dict[str, str | None], etag: EntityTag | None, last_modified: int | None,
         unconditional: int) -> int:
    validators = Validators(etag, None if last_modified is None else datetime.fromtimestamp(last_modified, UTC))
    outcome = evaluate(method, Preconditions(**headers), validators, unconditional_status=unconditional)
    return unconditional if outcome.proceed else int(outcome.status or 0)


def djangos(method: str, headers: dict[str, str | None], etag: EntityTag | None, last_modified: int | None,
            unconditional: int) -> int:
    request = HttpRequest()
    request.method = method
    for name, value in headers.items():
        if value is not None:
            request.META["HTTP_" + name.upper()] = value
    response = HttpResponse(status=unconditional)
    result = get_conditional_response(request, etag=str(etag) if etag else None,
                                      last_modified=last_modified, response=response)
    return int(result.status_code)


def difference(method: str, h: dict[str, str | None], etag: EntityTag | None, last_modified: int | None,
               unconditional: int) -> str | None:
    """The documented difference (module docstring) that applies, if any."""
    if method in UNCONDITIONAL_METHODS:
        return "D1"
    if unconditional == 412:
        return "D2"
    im, inm = h["if_match"], h["if_none_match"]
    for value in (im, inm):
        if value is not None and value.strip() != "*" and parse_etag_list(value) is None:
            return "D7"
    if im == "*" and etag is None:
        return "D3"
    if inm == "*" and etag is None:
        return "D4"
    if im is None and h["if_unmodified_since"] is not None and last_modified is None:
        return "D5"
    return None


@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    if_match=etag_field, if_unmodified_since=date_field, if_none_match=etag_field, if_modified_since=date_field,
    etag=st.none() | tag, last_modified=st.none() | offset.map(lambda o: BASE + o),
    unconditional=st.sampled_from([200, 200, 201, 204, 301, 404, 412]),
)
@example(method="OPTIONS", if_match='"zz"', if_unmodified_since=None, if_none_match=None, if_modified_since=None,
         etag=EntityTag("a"), last_modified=None, unconditional=200)
@hsettings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_same_status_as_django(method: str, if_match: str | None, if_unmodified_since: str | None,
                               if_none_match: str | None, if_modified_since: str | None,
                               etag: EntityTag | None, last_modified: int | None, unconditional: int) -> None:
    headers = {"if_match": if_match, "if_unmodified_since": if_unmodified_since,
               "if_none_match": if_none_match, "if_modified_since": if_modified_since}
    mine = ours(method, headers, etag, last_modified, unconditional)
    theirs = djangos(method, headers, etag, last_modified, unconditional)
    why = difference(method, headers, etag, last_modified, unconditional)
    if why is None:
        assert mine == theirs, (headers, etag, last_modified)
    elif why in ("D1",):
        assert mine == unconditional
    elif why == "D2":
        assert theirs == 412


def test_d1_options_ignores_preconditions() -> None:
    h = {"if_match": '"nope"', "if_unmodified_since": None, "if_none_match": None, "if_modified_since": None}
    assert ours("OPTIONS", h, EntityTag("a"), None, 200) == 200
    assert djangos("OPTIONS", h, EntityTag("a"), None, 200) == 412


def test_d3_d4_star_without_etag() -> None:
    h = {"if_match": "*", "if_unmodified_since": None, "if_none_match": None, "if_modified_since": None}
    assert (ours("PUT", h, None, BASE, 200), djangos("PUT", h, None, BASE, 200)) == (200, 412)
    h = {"if_match": None, "if_unmodified_since": None, "if_none_match": "*", "if_modified_since": None}
    assert (ours("GET", h, None, BASE, 200), djangos("GET", h, None, BASE, 200)) == (304, 200)


def test_d5_if_unmodified_since_without_a_date() -> None:
    h = {"if_match": None, "if_unmodified_since": _date(BASE), "if_none_match": None, "if_modified_since": None}
    assert (ours("PUT", h, EntityTag("a"), None, 200), djangos("PUT", h, EntityTag("a"), None, 200)) == (200, 412)


def test_d6_invalid_if_none_match_still_hides_if_modified_since() -> None:
    h = {"if_match": None, "if_unmodified_since": None, "if_none_match": "junk", "if_modified_since": _date(BASE)}
    assert (ours("GET", h, EntityTag("a"), BASE, 200), djangos("GET", h, EntityTag("a"), BASE, 200)) == (200, 304)


def test_d7_invalid_if_match_fails_closed() -> None:
    h = {"if_match": "junk", "if_unmodified_since": None, "if_none_match": None, "if_modified_since": None}
    assert (ours("PUT", h, EntityTag("a"), None, 200), djangos("PUT", h, EntityTag("a"), None, 200)) == (412, 200)


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_d8_comma_inside_an_etag(method: str) -> None:
    h = {"if_match": None, "if_unmodified_since": None, "if_none_match": '"a,b"', "if_modified_since": None}
    expected = 304 if method == "GET" else 412
    assert ours(method, h, EntityTag("a,b"), None, 200) == expected
    assert djangos(method, h, EntityTag("a,b"), None, 200) == 200
