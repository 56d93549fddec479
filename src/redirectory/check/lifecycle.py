"""The lifecycle header fields an API sends on a deprecated endpoint, read exactly as their RFCs
write them. Pure: no I/O, no clock (the caller says what "now" is).

- `Deprecation` (RFC 9745 §2.1): a Structured Field Date, `@` and the seconds since the epoch
  (`Deprecation: @1767225600`); the drafts' `true` and HTTP-date forms are malformed now;
- `Sunset` (RFC 8594 §3): an HTTP-date, which senders generate as an IMF-fixdate
  (`Sunset: Thu, 01 Jan 2026 00:00:00 GMT`, RFC 9110 §5.6.7);
- `Link` (RFC 8288 §3): `<URI-reference>; rel="successor-version"`, a comma-separated list whose
  targets may hold commas inside their angle brackets.

Each parser returns the value and, when it is malformed, why and the value to send instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

from redirectory.validators import format_http_date, parse_http_date

#: Relations that tell a client where to go or what to read about the end of an endpoint:
#: RFC 5829 (successor-version, latest-version), RFC 9745 §3 (deprecation), RFC 8594 §6 (sunset).
LIFECYCLE_RELS = frozenset({"successor-version", "latest-version", "deprecation", "sunset"})

_SF_DATE = re.compile(r"@(-?\d{1,15})((?:;[ ]*[a-z*][a-z0-9_.*-]*(?:=(?:\"(?:[^\"\\]|\\.)*\"|[^;\s]+))?)*)")
_SF_DECIMAL = re.compile(r"@-?\d{1,12}\.\d{1,3}")
_DIGITS = re.compile(r"-?\d{1,15}")
_IMF_SHAPE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")
_TRUE = frozenset({"true", "?1", "yes"})
_FALSE = frozenset({"false", "?0", "no"})


@dataclass(frozen=True, slots=True)
class Parsed:
    """A lifecycle field's value: `when` (None when malformed), or `problem` and the `fix`."""

    when: datetime | None
    problem: str | None = None
    fix: str | None = None


def deprecation_value(when: datetime) -> str:
    return f"@{int(when.timestamp())}"


def _from_epoch(seconds: int) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _other_date(text: str) -> datetime | None:
    """A date written some other way (ISO 8601, an RFC 5322 date with a zone): for the fix only."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def parse_deprecation(lines: list[str]) -> Parsed:
    """RFC 9745 §2.1: `Deprecation = sf-date` (one Item; parameters are allowed and ignored)."""
    example = "`Deprecation: @1767225600` (the seconds since the epoch of the deprecation date)"
    if len(lines) > 1:
        return Parsed(None, f"{len(lines)} Deprecation field lines ({', '.join(map(repr, lines))}): it is one "
                      "Structured Field Date", "send one `Deprecation: @<seconds since the epoch>` field line")
    text = lines[0].strip(" ") if lines else ""
    if m := _SF_DATE.fullmatch(text):
        when = _from_epoch(int(m.group(1)))
        if when is None:
            return Parsed(None, f"Deprecation {text!r} is out of range", f"send {example}")
        return Parsed(when)
    if text.lower() in _TRUE | _FALSE:
        return Parsed(None, f"Deprecation {text!r} is the form of the early drafts; RFC 9745 sends the date as a "
                      "Structured Field Date", f"send {example}")
    if (when := parse_http_date(text)) is not None:
        return Parsed(None, f"Deprecation {text!r} is an HTTP-date (the form of the early drafts); RFC 9745 sends "
                      "a Structured Field Date", f"send `Deprecation: {deprecation_value(when)}`")
    if _DIGITS.fullmatch(text) and (when := _from_epoch(int(text))) is not None:
        return Parsed(None, f"Deprecation {text!r} lacks the `@` of a Structured Field Date",
                      f"send `Deprecation: @{text}`")
    if _SF_DECIMAL.fullmatch(text):
        seconds = int(float(text[1:]))
        return Parsed(None, f"Deprecation {text!r} is not a whole number of seconds",
                      f"send `Deprecation: @{seconds}`")
    if (when := _other_date(text)) is not None:
        return Parsed(None, f"Deprecation {text!r} is not a Structured Field Date",
                      f"send `Deprecation: {deprecation_value(when)}`")
    return Parsed(None, f"Deprecation {text!r} is not a Structured Field Date", f"send {example}")


def parse_sunset(lines: list[str]) -> Parsed:
    """RFC 8594 §3: `Sunset = HTTP-date`, sent as an IMF-fixdate (RFC 9110 §5.6.7)."""
    example = "`Sunset: Thu, 01 Jan 2026 00:00:00 GMT` (an IMF-fixdate)"
    if len(lines) > 1:
        return Parsed(None, f"{len(lines)} Sunset field lines ({', '.join(map(repr, lines))}): it is one HTTP-date",
                      "send one Sunset field line")
    text = lines[0].strip(" \t") if lines else ""
    when = parse_http_date(text)
    if when is not None:
        right = format_http_date(when)
        if text == right:
            return Parsed(when)
        if _IMF_SHAPE.fullmatch(text):
            return Parsed(None, f"Sunset {text!r} names the wrong weekday ({when.date()} is a "
                          f"{when.strftime('%A')})", f"send `Sunset: {right}`")
        return Parsed(None, f"Sunset {text!r} is an obsolete HTTP-date form, which senders must not generate "
                      "(RFC 9110 §5.6.7)", f"send `Sunset: {right}`")
    m = _SF_DATE.fullmatch(text)
    if m and (when := _from_epoch(int(m.group(1)))) is not None:
        return Parsed(None, f"Sunset {text!r} is a Structured Field Date (Deprecation's form); Sunset is an "
                      "HTTP-date", f"send `Sunset: {format_http_date(when)}`")
    if _DIGITS.fullmatch(text) and (when := _from_epoch(int(text))) is not None:
        return Parsed(None, f"Sunset {text!r} is not an HTTP-date", f"send `Sunset: {format_http_date(when)}`")
    if (when := _other_date(text)) is not None:
        return Parsed(None, f"Sunset {text!r} is not an HTTP-date", f"send `Sunset: {format_http_date(when)}`")
    return Parsed(None, f"Sunset {text!r} is not an HTTP-date", f"send {example}")


def example_text(value: object) -> str | None:
    """An OpenAPI example as the header's text: YAML reads `2026-01-01` as a date, `true` as a bool."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, (int, float, date)):
        return str(value) if not isinstance(value, date) else value.isoformat()
    return None


@dataclass(frozen=True, slots=True)
class Link:
    target: str  # the URI-reference between the angle brackets, as written
    rels: frozenset[str]  # lower-case relation types


def _split(value: str) -> list[str]:
    """A Link field value's link-values: commas inside `<...>` or a quoted string do not split."""
    out, start, angle, quoted, escaped = [], 0, False, False, False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            escaped, quoted = ch == "\\", ch != '"'
        elif ch == '"':
            quoted = True
        elif ch == "<":
            angle = True
        elif ch == ">":
            angle = False
        elif ch == "," and not angle:
            out.append(value[start:i])
            start = i + 1
    out.append(value[start:])
    return [v.strip() for v in out if v.strip()]


_PARAM = re.compile(r";\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*(?:=\s*(\"(?:[^\"\\]|\\.)*\"|[^;\s]*))?")


def parse_links(lines: list[str]) -> list[Link]:
    """Every link-value of the Link field lines whose target is in angle brackets (RFC 8288 §3)."""
    links = []
    for line in lines:
        for item in _split(line):
            if not item.startswith("<") or ">" not in item:
                continue
            target, _, params = item[1:].partition(">")
            rels: set[str] = set()
            for m in _PARAM.finditer(params):
                if m.group(1).lower() == "rel" and m.group(2) is not None:
                    text = m.group(2)[1:-1] if m.group(2).startswith('"') else m.group(2)
                    rels |= {r.lower() for r in text.split()}
                    break  # RFC 8288 §3.3: only the first rel parameter counts
            links.append(Link(target.strip(), frozenset(rels)))
    return links


def successor_targets(base: str, lines: list[str]) -> list[str]:
    """The `successor-version` targets of the Link field lines, resolved against `base`, in order."""
    out: list[str] = []
    for link in parse_links(lines):
        if "successor-version" in link.rels:
            try:
                url = urljoin(base, link.target)
            except ValueError:
                continue
            if url not in out:
                out.append(url)
    return out
