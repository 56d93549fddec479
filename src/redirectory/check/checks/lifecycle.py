"""E. Deprecation and sunset: RFC 9745 `Deprecation`, RFC 8594 `Sunset`, RFC 8288 `Link`
(`successor-version`, `deprecation`, `sunset`), on any response, recorded, probed or documented.

The conditional re-requests of a live run repeat their base response's fields: they are judged once,
on the base response (`ex.probe` is skipped)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from redirectory.check.checks._util import is_redirect, status
from redirectory.check.lifecycle import (
    LIFECYCLE_RELS,
    Parsed,
    deprecation_value,
    parse_deprecation,
    parse_links,
    parse_sunset,
)
from redirectory.check.model import Exchange
from redirectory.check.profiles import Profile
from redirectory.check.registry import E, Hit, I, W, check
from redirectory.validators import format_http_date, parse_http_date


def _declared(ex: Exchange, name: str) -> list[str] | None:
    """The field's lines (live, HAR) or its documented example (OpenAPI: [] when it has none);
    None when the response has no such field."""
    if ex.source == "openapi":
        header = ex.response_doc.headers.get(name) if ex.response_doc else None
        if header is None:
            return None
        return [header.example] if header.example is not None else []
    if ex.response is None or ex.probe:
        return None
    lines = ex.response.header_lines(name)
    return lines or None


def _parsed(ex: Exchange, name: str) -> Parsed | None:
    lines = _declared(ex, name)
    if not lines:
        return None
    return parse_deprecation(lines) if name == "deprecation" else parse_sunset(lines)


def _where(ex: Exchange) -> str:
    return " (documented example)" if ex.source == "openapi" else ""


@check("DEP-DEPRECATION-MALFORMED", "Deprecation is not a Structured Field Date", E,
       source="RFC 9745 §2.1 (Deprecation = sf-date)")
def deprecation_malformed(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    parsed = _parsed(ex, "deprecation")
    if parsed is not None and parsed.problem:
        yield Hit(parsed.problem + _where(ex), parsed.fix or "send `Deprecation: @<seconds since the epoch>`")


@check("DEP-SUNSET-MALFORMED", "Sunset is not an IMF-fixdate", E,
       source="RFC 8594 §3 (Sunset = HTTP-date); RFC 9110 §5.6.7 (senders MUST generate IMF-fixdate)")
def sunset_malformed(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    parsed = _parsed(ex, "sunset")
    if parsed is not None and parsed.problem:
        yield Hit(parsed.problem + _where(ex), parsed.fix or "send `Sunset: <IMF-fixdate>`")
    elif ex.source == "openapi" and ex.response_doc is not None:
        header = ex.response_doc.headers.get("sunset")
        if header is not None and header.example is None and header.format in ("date-time", "date"):
            yield Hit(f"Sunset is documented as `format: {header.format}` (RFC 3339); Sunset is an HTTP-date",
                      "document `type: string` with an IMF-fixdate example: `Thu, 01 Jan 2026 00:00:00 GMT`")


@check("DEP-SUNSET-BEFORE-DEPRECATION", "Sunset earlier than Deprecation", W, rfc=E,
       source="RFC 9745 §4 (Sunset MUST NOT be earlier than Deprecation)")
def sunset_before(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    dep, sun = _parsed(ex, "deprecation"), _parsed(ex, "sunset")
    if dep is None or sun is None or dep.when is None or sun.when is None or sun.when >= dep.when:
        return
    yield Hit(f"Sunset {format_http_date(sun.when)} comes before Deprecation {deprecation_value(dep.when)} "
              f"({dep.when:%Y-%m-%d %H:%M:%S} UTC)"
              f"{_where(ex)}: the endpoint would end before it is deprecated",
              "deprecate first: a Sunset no earlier than the Deprecation date")


def _now(ex: Exchange, profile: Profile) -> tuple[datetime, str]:
    """What "now" is for this response: its Date, else when the HAR entry started, else the clock."""
    date = ex.response.header("date") if ex.response is not None else None
    when = parse_http_date(date) if date else None
    if when is not None:
        return when, "the response's Date"
    if ex.started is not None:
        return ex.started, "the time it was recorded"
    return (profile.now or datetime.now(UTC)), "the checker's clock"


@check("DEP-SUNSET-PASSED", "2xx after the announced Sunset", W, rfc=I, inputs="PH",
       source="RFC 8594 §3 (past Sunset: the resource may become unresponsive at any time)")
def sunset_passed(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    code = status(ex)
    if not 200 <= code < 300:
        return
    sun = _parsed(ex, "sunset")
    if sun is None or sun.when is None:
        return
    now, what = _now(ex, profile)
    if sun.when < now:
        yield Hit(f"{code} answers after its Sunset {format_http_date(sun.when)} ({what} is "
                  f"{format_http_date(now)}): the endpoint outlived its announced end",
                  "retire the endpoint (410 Gone, or a redirect to its successor), or announce a later Sunset",
                  evidence={"sunset": format_http_date(sun.when), "now": format_http_date(now), "now_from": what})


@check("DEP-NO-LINK", "Deprecation or Sunset without a Link to docs or a successor", I,
       source="RFC 9745 §3 (deprecation link); RFC 8594 §6 (sunset link); RFC 5829 (successor-version)")
def no_link(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    fields = [name for name in ("Deprecation", "Sunset") if _declared(ex, name.lower()) is not None]
    if not fields:
        return
    said = " and ".join(fields)
    if ex.source == "openapi":
        if ex.response_doc is not None and "link" not in ex.response_doc.headers:
            yield Hit(f"{said} {'are' if len(fields) > 1 else 'is'} documented without a Link header",
                      'document `Link` too: `<https://api.example.com/v2/users>; rel="successor-version"` or a '
                      '`rel="deprecation"` link to the migration notes')
        return
    assert ex.response is not None
    if status(ex) == 304:
        return  # a 304 need not repeat Link (RFC 9110 §15.4.5): the 200 it revalidates is judged
    rels = set().union(*(link.rels for link in parse_links(ex.response.header_lines("link"))))
    if not rels & LIFECYCLE_RELS:
        yield Hit(f"{said} without a Link to a successor or to documentation (rel {', '.join(sorted(LIFECYCLE_RELS))})",
                  'add `Link: </api/v2/users>; rel="successor-version"` and/or a `rel="deprecation"` link to the '
                  "migration notes")


def _successor_outcome(ex: Exchange) -> Iterator[tuple[str, Exchange, list[Exchange]]]:
    """(link target, the last hop probed, every hop) for each successor-version link probed."""
    for head in ex.successors:
        hops = list(head.chain())
        yield head.request.url, hops[-1], hops


def _trail(hops: list[Exchange]) -> str:
    return " ; ".join(f"{h.request.method} {h.request.url} -> {h.status or h.error}" for h in hops)


@check("DEP-SUCCESSOR-BROKEN", "successor-version link fails", E, inputs="P",
       source="RFC 5829 (successor-version); the guide: move clients to a live version")
def successor_broken(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    for target, last, hops in _successor_outcome(ex):
        if last.error:
            yield Hit(f"the successor-version link {target} cannot be reached: {last.error}",
                      "point the successor-version link at the live new version", evidence={"hops": _trail(hops)})
        elif status(last) >= 400:
            via = f" (after {len(hops) - 1} redirect{'s' if len(hops) > 2 else ''})" if len(hops) > 1 else ""
            yield Hit(f"the successor-version link {target} answers {status(last)}{via}",
                      "point the successor-version link at the live new version", evidence={"hops": _trail(hops)})
        elif is_redirect(last):
            yield Hit(f"the successor-version link {target} never reaches a response (a loop, or more redirects "
                      f"than --max-hops): {_trail(hops)}", "point the successor-version link at the final URL",
                      evidence={"hops": _trail(hops)})


@check("DEP-SUCCESSOR-MOVED", "successor-version link redirects", W, inputs="P",
       source="RFC 5829 (successor-version); RFC 9110 §15.4")
def successor_moved(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    for target, last, hops in _successor_outcome(ex):
        if len(hops) > 1 and not last.error and 200 <= status(last) < 400 and not is_redirect(last):
            yield Hit(f"the successor-version link {target} redirects ({status(hops[0])}) to {last.request.url}",
                      f"point the successor-version link at the final URL {last.request.url}",
                      evidence={"hops": _trail(hops), "final": last.request.url})


@check("OAS-DEPRECATED-UNANNOUNCED", "Deprecated operation sends no Deprecation or Sunset", I, inputs="O",
       source="RFC 9745 §2; RFC 8594 §3; OpenAPI `deprecated`")
def deprecated_unannounced(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    doc, rdoc = ex.doc, ex.response_doc
    if doc is None or rdoc is None or not doc.deprecated or next(iter(doc.responses.values()), None) is not rdoc:
        return  # judged once per operation, on its first response
    if any({"deprecation", "sunset"} & set(r.headers) for r in doc.responses.values()):
        return
    yield Hit(f"{doc.method} {doc.path} is `deprecated: true`, but no response documents a Deprecation or Sunset "
              "header: clients learn of it only from the contract",
              "send and document `Deprecation: @<seconds since the epoch>` (and `Sunset: <IMF-fixdate>` once the "
              'end is set, with a `Link: <...>; rel="successor-version"`) on its responses',
              location=doc.deprecated_at)
