"""Validators on the wire: entity-tags (RFC 9110 §8.8.3) and HTTP dates (§5.6.7). Pure, no I/O.

- `parse_etag_list` reads an If-Match / If-None-Match value: `*` or a list of entity-tags;
  a value that is not exactly that grammar is `None` (invalid), never a partial list;
- `strong_match` / `weak_match` are the two comparison functions of §8.8.3.2;
- `parse_http_date` accepts the three formats a recipient MUST accept (IMF-fixdate, RFC 850 with
  the 50-year rule for two-digit years, asctime) and nothing else; `format_http_date` writes
  IMF-fixdate;
- `etag_of_bytes` and `etag_of_version` make validators from a body or from a version number.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

# etagc = %x21 / %x23-7E / obs-text
_ETAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
_OWS = " \t"


@dataclass(frozen=True, slots=True)
class EntityTag:
    """An entity-tag: its opaque value (without quotes) and whether it is weak."""

    opaque: str
    weak: bool = False

    def __post_init__(self) -> None:
        if not _ETAG.fullmatch(f'"{self.opaque}"'):
            raise ValueError(
                f"invalid entity-tag value {self.opaque!r}: use visible ASCII characters other than '\"'"
            )

    def __str__(self) -> str:
        return ('W/"' if self.weak else '"') + self.opaque + '"'

    @classmethod
    def parse(cls, text: str) -> EntityTag:
        """`"abc"` or `W/"abc"`; ValueError naming the value otherwise."""
        m = _ETAG.fullmatch(text.strip(_OWS))
        if not m:
            raise ValueError(f'invalid entity-tag {text!r}: expected "opaque" or W/"opaque"')
        return cls(m.group(2), weak=m.group(1) is not None)


#: The `*` member of If-Match / If-None-Match.
ANY = "*"


def parse_etag_list(value: str) -> tuple[EntityTag, ...] | str | None:
    """`*` -> ANY; `"a", W/"b"` -> tags; empty list members are allowed (RFC 9110 §5.6.1);
    anything else (a stray token, a missing quote, nothing at all) -> None."""
    text = value.strip(_OWS)
    if text == ANY:
        return ANY
    tags: list[EntityTag] = []
    pos, n = 0, len(text)
    while pos < n:
        if text[pos] in _OWS or text[pos] == ",":
            pos += 1
            continue
        m = _ETAG.match(text, pos)
        if not m:
            return None
        tags.append(EntityTag(m.group(2), weak=m.group(1) is not None))
        pos = m.end()
        while pos < n and text[pos] in _OWS:
            pos += 1
        if pos < n and text[pos] != ",":
            return None
    return tuple(tags) if tags else None


def strong_match(a: EntityTag, b: EntityTag) -> bool:
    """Both strong and the same opaque value (§8.8.3.2)."""
    return not a.weak and not b.weak and a.opaque == b.opaque


def weak_match(a: EntityTag, b: EntityTag) -> bool:
    """The same opaque value, weak or not (§8.8.3.2)."""
    return a.opaque == b.opaque


def etag_of_bytes(body: bytes, weak: bool = False) -> EntityTag:
    """A validator that changes whenever the bytes change (SHA-256, 128 bits shown)."""
    return EntityTag(hashlib.sha256(body).hexdigest()[:32], weak=weak)


def etag_of_version(version: int | str, weak: bool = False) -> EntityTag:
    """A validator from a version number or string (characters outside etagc are hex-escaped)."""
    text = str(version)
    safe = "".join(ch if ch != '"' and 0x21 <= ord(ch) <= 0x7E else f"%{ord(ch):02X}" for ch in text)
    return EntityTag(safe, weak=weak)


# -- HTTP dates ---------------------------------------------------------------------------------
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_LONG_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MON = "(" + "|".join(_MONTHS) + ")"
_TIME = r"(\d{2}):(\d{2}):(\d{2})"
_IMF = re.compile(r"(" + "|".join(_DAYS) + r"), (\d{2}) " + _MON + r" (\d{4}) " + _TIME + " GMT")
_RFC850 = re.compile(r"(" + "|".join(_LONG_DAYS) + r"), (\d{2})-" + _MON + r"-(\d{2}) " + _TIME + " GMT")
_ASCTIME = re.compile(r"(" + "|".join(_DAYS) + r") " + _MON + r" ([ \d]\d) " + _TIME + r" (\d{4})")


def parse_http_date(value: str, now: datetime | None = None) -> datetime | None:
    """An aware UTC datetime, or None when `value` is not one HTTP-date (§5.6.7).

    A two-digit RFC 850 year more than 50 years in the future is taken as the most recent past
    year with those digits. The weekday name is read but not checked against the date.
    """
    text = value.strip(_OWS)
    if m := _IMF.fullmatch(text):
        _, day, mon, year, hh, mm, ss = m.groups()
    elif m := _RFC850.fullmatch(text):
        _, day, mon, yy, hh, mm, ss = m.groups()
        current = (now or datetime.now(UTC)).year
        year_i = current - current % 100 + int(yy)
        if year_i > current + 50:
            year_i -= 100
        year = str(year_i)
    elif m := _ASCTIME.fullmatch(text):
        _, mon, day, hh, mm, ss, year = m.groups()
    else:
        return None
    try:
        return datetime(int(year), _MONTHS.index(mon) + 1, int(day), int(hh), int(mm), int(ss), tzinfo=UTC)
    except ValueError:  # 31 Feb, 25:00:00...
        return None


def format_http_date(when: datetime) -> str:
    """IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`); a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    return (f"{_DAYS[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} {when.year:04d} "
            f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} GMT")
