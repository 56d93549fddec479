"""Cache-Control / Expires / Age / Date parsing for the redirect memory (property-based)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from redirectory.client.freshness import (
    DELTA_SECONDS_MAX,
    format_http_date,
    parse_cache_control,
    parse_delta_seconds,
    parse_http_date,
    remaining_freshness,
)

NOW = 1_800_000_000.0
TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).filter(
    lambda t: t not in ("max-age", "no-store", "no-cache"))
WS = st.sampled_from(["", " ", "  ", "\t"])
DATES = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=0))


@given(age=st.integers(0, 10**12), before=st.lists(TOKEN, max_size=3), after=st.lists(TOKEN, max_size=3),
       ws=WS, upper=st.booleans(), quoted=st.booleans())
def test_max_age_is_found_among_other_directives(age: int, before: list[str], after: list[str], ws: str,
                                                 upper: bool, quoted: bool) -> None:
    name = "MAX-AGE" if upper else "max-age"
    value = f'"{age}"' if quoted else str(age)
    header = f",{ws}".join([*before, f"{name}{ws}={ws}{value}", *after])
    directives = parse_cache_control([header])
    assert directives["max-age"] == (str(age),)
    remaining, source = remaining_freshness({"cache-control": header}, response_time=NOW, default=5)
    assert remaining == min(age, DELTA_SECONDS_MAX)
    assert source.startswith("Cache-Control: max-age=")


@given(st.text(max_size=40))
def test_parser_never_crashes_and_names_are_lowercase(header: str) -> None:
    for name in parse_cache_control([header]):
        assert name == name.lower()


def test_quoted_commas_and_repeated_lines() -> None:
    directives = parse_cache_control(['private="a, b", max-age=5', "no-transform"])
    assert directives == {"private": ("a, b",), "max-age": ("5",), "no-transform": (None,)}


@given(st.sampled_from(["no-store", "no-cache", "No-Store", 'no-cache="set-cookie"']), st.integers(0, 10**6))
def test_no_store_and_no_cache_are_never_remembered(directive: str, age: int) -> None:
    remaining, _ = remaining_freshness([("cache-control", f"max-age={age}, {directive}")], response_time=NOW,
                                       default=3600)
    assert remaining == 0


@given(st.sampled_from(["-1", "1.5", "ten", "", "0x10", "١٢"]))
def test_malformed_max_age_is_stale(value: str) -> None:
    assert parse_delta_seconds(value) is None
    assert remaining_freshness({"cache-control": f"max-age={value}"}, response_time=NOW, default=3600)[0] == 0


def test_conflicting_max_age_is_stale_and_agreeing_ones_count() -> None:
    assert remaining_freshness([("cache-control", "max-age=5"), ("cache-control", "max-age=9")],
                               response_time=NOW, default=3600)[0] == 0
    assert remaining_freshness([("cache-control", "max-age=5, max-age=5")], response_time=NOW, default=3600)[0] == 5


@given(DATES)
def test_http_date_round_trips_in_all_three_forms(moment: datetime) -> None:
    imf = format_http_date(moment)
    assert parse_http_date(imf) == moment
    asctime = moment.strftime("%a %b ") + f"{moment.day:>2}" + moment.strftime(" %H:%M:%S %Y")
    assert parse_http_date(asctime) == moment
    rfc850 = moment.strftime("%A, %d-%b-%y %H:%M:%S GMT")
    parsed = parse_http_date(rfc850, now=moment)
    assert parsed is not None and parsed.replace(year=moment.year) == moment


@given(st.text(max_size=40))
def test_bad_dates_are_none(text: str) -> None:
    parsed = parse_http_date(text)
    assert parsed is None or format_http_date(parsed) == text.strip() or parsed.tzinfo is UTC


def test_wrong_weekday_is_invalid() -> None:
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") is not None
    assert parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT") is None


@given(lifetime=st.integers(-10**6, 10**7), skew=st.integers(-3600, 3600))
def test_expires_is_measured_against_date(lifetime: int, skew: int) -> None:
    server_now = datetime.fromtimestamp(NOW + skew, UTC).replace(microsecond=0)
    headers = {"date": format_http_date(server_now),
               "expires": format_http_date(server_now + timedelta(seconds=lifetime))}
    remaining, _ = remaining_freshness(headers, response_time=NOW, default=3600)
    apparent_age = max(0.0, NOW - server_now.timestamp())
    assert remaining == max(0.0, lifetime - apparent_age)


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_age_is_subtracted(max_age: int, age: int) -> None:
    remaining, _ = remaining_freshness({"cache-control": f"max-age={max_age}", "age": str(age)},
                                       response_time=NOW, default=3600)
    assert remaining == max(0, max_age - age)


def test_invalid_expires_is_already_expired_and_default_applies_without_either() -> None:
    assert remaining_freshness({"expires": "0"}, response_time=NOW, default=3600)[0] == 0
    remaining, source = remaining_freshness({}, response_time=NOW, default=3600)
    assert remaining == 3600 and source.startswith("default")
    assert remaining_freshness({"cache-control": "max-age=7", "expires": "0"}, response_time=NOW, default=1)[0] == 7
