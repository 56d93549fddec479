"""How long a permanent redirect may be remembered: Cache-Control, Expires, Age and Date.

Pure functions, no I/O (RFC 9111 §4.2 and §5, RFC 9110 §5.6.7). A client is a private cache,
so `s-maxage` (shared caches only) is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

__all__ = [
    "DELTA_SECONDS_MAX",
    "CacheControl",
    "format_http_date",
    "parse_cache_control",
    "parse_delta_seconds",
    "parse_http_date",
    "remaining_freshness",
]

#: RFC 9111 §1.2.2: a delta-seconds too large to represent is 2^31.
DELTA_SECONDS_MAX = 2**31

#: Directive name -> every value it was given (None for a bare directive), in order.
CacheControl = dict[str, tuple[str | None, ...]]

_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_DIRECTIVE = re.compile(
    rf"\s*(?P<name>{_TCHARS})\s*(?:=\s*(?:(?P<token>{_TCHARS})|\"(?P<quoted>(?:[^\"\\]|\\.)*)\"|(?P<raw>.*?)))?\s*"
)
_QUOTED_PAIR = re.compile(r"\\(.)")


def _split_list(value: str) -> list[str]:
    """Split a comma-separated header value, keeping commas inside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def parse_cache_control(values: Iterable[str]) -> CacheControl:
    """Parse every Cache-Control field line of a response.

    Names are lower-cased; quoted values are unquoted; members that are not a valid directive
    are ignored (RFC 9111 §5.2: unrecognised or malformed directives are ignored).
    """
    seen: dict[str, list[str | None]] = {}
    for line in values:
        for member in _split_list(line):
            if not member.strip():
                continue
            match = _DIRECTIVE.fullmatch(member)
            if match is None:
                continue
            name = match["name"].lower()
            if match["token"] is not None:
                value: str | None = match["token"]
            elif match["quoted"] is not None:
                value = _QUOTED_PAIR.sub(r"\1", match["quoted"])
            elif match["raw"] is not None:
                value = match["raw"]  # malformed value: kept, so that e.g. `max-age=` counts as invalid
            else:
                value = None
            seen.setdefault(name, []).append(value)
    return {name: tuple(vals) for name, vals in seen.items()}


def parse_delta_seconds(value: str | None) -> int | None:
    """`delta-seconds` (1*DIGIT) as an int, capped at 2^31; None when malformed."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return min(int(value), DELTA_SECONDS_MAX)


_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), start=1)}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_LONG_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_TIME = r"(?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)"
_IMF_FIXDATE = re.compile(rf"(?P<wd>[A-Za-z]{{3}}), (?P<d>\d\d) (?P<mo>[A-Za-z]{{3}}) (?P<y>\d{{4}}) {_TIME} GMT")
_RFC850 = re.compile(rf"(?P<wd>[A-Za-z]+), (?P<d>\d\d)-(?P<mo>[A-Za-z]{{3}})-(?P<y>\d\d) {_TIME} GMT")
_ASCTIME = re.compile(rf"(?P<wd>[A-Za-z]{{3}}) (?P<mo>[A-Za-z]{{3}}) (?P<d>[ \d]\d) {_TIME} (?P<y>\d{{4}})")


def parse_http_date(value: str, *, now: datetime | None = None) -> datetime | None:
    """An HTTP-date (IMF-fixdate, obsolete RFC 850 or asctime form) as an aware UTC datetime.

    None when the value is not a valid date. RFC 850's two-digit year is read as the most
    recent year ending in those digits that is not more than 50 years ahead (RFC 9110 §5.6.7).
    """
    text = value.strip()
    for pattern, days in ((_IMF_FIXDATE, _DAYS), (_RFC850, _LONG_DAYS), (_ASCTIME, _DAYS)):
        match = pattern.fullmatch(text)
        if match is None:
            continue
        month = _MONTHS.get(match["mo"])
        if month is None or match["wd"] not in days:
            return None
        year = int(match["y"])
        if pattern is _RFC850:
            current = (now or datetime.now(UTC)).year
            year += current - current % 100
            if year > current + 50:
                year -= 100
        try:
            parsed = datetime(year, month, int(match["d"]), int(match["h"]), int(match["mi"]), int(match["s"]),
                              tzinfo=UTC)
        except ValueError:
            return None
        if days[parsed.weekday()] != match["wd"]:
            return None
        return parsed
    return None


def format_http_date(moment: datetime) -> str:
    """The IMF-fixdate form of an aware datetime: `Sun, 06 Nov 1994 08:49:37 GMT`."""
    utc = moment.astimezone(UTC)
    month = next(name for name, number in _MONTHS.items() if number == utc.month)
    return f"{_DAYS[utc.weekday()]}, {utc.day:02d} {month} {utc.year:04d} {utc:%H:%M:%S} GMT"


def _single(values: tuple[str | None, ...]) -> str | None:
    """The directive's value if every occurrence agrees, else None (RFC 9111 §4.2.1: treat as stale)."""
    return values[0] if len(set(values)) == 1 else None


def remaining_freshness(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    response_time: float,
    default: float,
) -> tuple[float, str]:
    """How many seconds a redirect response may still be reused, and where that number came from.

    `headers` is a mapping or (name, value) pairs (repeated names allowed); `response_time` is
    the POSIX time the response arrived; `default` applies when the response has no explicit
    freshness (301 and 308 are heuristically cacheable, RFC 9110 §15.1). 0 means do not reuse.
    """
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)

    def every(name: str) -> list[str]:
        return [value for key, value in pairs if key.lower() == name]

    directives = parse_cache_control(every("cache-control"))
    if "no-store" in directives:
        return 0.0, "Cache-Control: no-store"
    if "no-cache" in directives:
        return 0.0, "Cache-Control: no-cache (must revalidate every time)"

    dates = every("date")
    date = parse_http_date(dates[0]) if len(dates) == 1 else None
    date_value = date.timestamp() if date is not None else response_time
    ages = [parse_delta_seconds(value.strip()) for value in every("age")]
    age_value = ages[0] if len(ages) == 1 and ages[0] is not None else 0
    current_age = max(0.0, response_time - date_value, float(age_value))

    if "max-age" in directives:
        max_age = parse_delta_seconds(_single(directives["max-age"]))
        if max_age is None:
            return 0.0, "Cache-Control: max-age is malformed or repeated with different values (stale)"
        lifetime, source = float(max_age), f"Cache-Control: max-age={max_age}"
    elif expires_values := every("expires"):
        expires = parse_http_date(expires_values[0]) if len(set(expires_values)) == 1 else None
        if expires is None:
            return 0.0, "Expires is not a valid date (already expired)"
        lifetime, source = expires.timestamp() - date_value, f"Expires: {expires_values[0]}"
    else:
        lifetime, source = float(default), f"default {default:g} s: no Cache-Control max-age or Expires"

    remaining = lifetime - current_age
    if current_age >= 1:
        source += f", already {current_age:.0f} s old"
    return max(0.0, remaining), source
