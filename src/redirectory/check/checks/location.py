"""A. Location and redirect mechanics (RFC 9110 §10.2.2, §15.4; the guide's 3xx page)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from redirectory.check.checks._util import SAFE, is_redirect, is_relative, status, valid_uri_reference
from redirectory.check.model import Exchange, origin, without_fragment
from redirectory.check.profiles import Profile
from redirectory.check.registry import E, Hit, I, W, check

_LOCATION_CODES = frozenset({301, 302, 303, 307, 308})


@check("RDR-LOC-MISSING", "A redirect has no Location", E, rfc=W,
       source="Guide: 3xx page (301, 303, 307 SHOULD include Location); RFC 9110 §15.4.2–§15.4.9")
def loc_missing(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    code = status(ex)
    if code not in _LOCATION_CODES or ex.response is None:
        return
    level = E if code == 303 else None  # a 303 without Location has no meaning at all
    if ex.source == "openapi":
        doc = ex.response_doc
        header = doc.headers.get("location") if doc else None
        if header is None:
            yield Hit(f"{code} response declares no Location header",
                      f"declare a required Location header (schema: string, format: uri) on {code}",
                      level)
        elif not header.required:  # documented, only not promised: a gap in the contract, not a bug
            yield Hit(f"{code} response declares Location but not `required: true`",
                      "mark the Location header `required: true`", I)
    elif not ex.response.has("location"):
        yield Hit(f"{code} has no Location header", f"send `Location: <target URI>` with every {code}", level)


@check("RDR-LOC-EMPTY-INVALID", "Location is empty or not a URI-reference", E, inputs="PH",
       source="RFC 9110 §10.2.2 (Location = URI-reference)")
def loc_invalid(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if ex.response is None:
        return
    for value in ex.response.header_lines("location"):
        why = valid_uri_reference(value)
        if why:
            yield Hit(f"Location {value!r} is not a valid URI-reference: {why}",
                      "send an absolute URI (or a relative reference) with reserved characters percent-encoded")


@check("RDR-LOC-MULTIPLE", "More than one Location", E, inputs="PH", source="RFC 9110 §10.2.2 (Location is not a list)")
def loc_multiple(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if ex.response is None:
        return
    lines = ex.response.header_lines("location")
    if len(lines) > 1:
        yield Hit(f"{len(lines)} Location field lines: {lines}", "send exactly one Location field line",
                  evidence={"locations": lines})
    elif lines and re.search(r",\s*(?:[a-z][a-z0-9+.-]*://|/)", lines[0], re.I):
        yield Hit(f"Location {lines[0]!r} looks like several URIs joined with a comma",
                  "send exactly one URI in Location (encode a literal comma as %2C)")


@check("RDR-LOC-RELATIVE", "Location is a relative reference", I,
       source="RFC 9110 §10.2.2 (relative references are allowed); house switch --require-absolute-location")
def loc_relative(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    level = E if profile.absolute_location else None
    if ex.source == "openapi":
        header = ex.response_doc.headers.get("location") if ex.response_doc else None
        if header is None:
            return
        if header.format == "uri-reference" or (header.example and is_relative(header.example)):
            yield Hit(f"Location is documented as a relative reference (format {header.format!r}, "
                      f"example {header.example!r})",
                      "document `format: uri` and absolute examples if clients need absolute URIs", level)
        return
    value = ex.location_header
    if value is None or valid_uri_reference(value) or not is_relative(value):
        return
    target = ex.resolved_location()
    yield Hit(f"Location {value!r} is relative; it resolves to {target}",
              f"send the absolute URI {target} if some clients cannot resolve references", level,
              {"resolved": target})


@check("RDR-LOC-UNDEFINED-STATUS", "Location on a status other than 201 or 3xx", W,
       source="RFC 9110 §10.2.2; guide: long-running operations (202 + Location)")
def loc_undefined(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    code = status(ex)
    if code < 100 or code == 201 or 300 <= code < 400 or (code == 202 and profile.house):
        return
    if ex.source == "openapi":
        declared = ex.response_doc is not None and "location" in ex.response_doc.headers
    else:
        declared = ex.response is not None and ex.response.has("location")
    if declared:
        yield Hit(f"Location on a {code} has no defined meaning", "drop Location here, or use Content-Location "
                  "to identify the enclosed representation")


@check("RDR-LOC-FRAGMENT", "Fragment in Location", I, inputs="PH", source="RFC 9110 §10.2.2 (fragment inheritance)")
def loc_fragment(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    value = ex.location_header
    code = status(ex)
    if value is None or "#" not in value:
        return
    if code == 201:
        yield Hit(f"201 Location {value!r} has a fragment; it should identify the created resource itself",
                  "drop the fragment", W)
    elif 300 <= code < 400:
        yield Hit(f"Location {value!r} has a fragment, which replaces the client's own fragment",
                  "drop the fragment from API redirects (without one, the client's fragment is kept)")


@check("RDR-SELF-LOOP", "Redirect to itself", E, inputs="PH", source="RFC 9110 §15.4 (detect loops)")
def self_loop(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if not is_redirect(ex):
        return
    target = ex.resolved_location()
    if target is None or without_fragment(target) != without_fragment(ex.request.url):
        return
    if status(ex) == 303 and ex.request.method not in SAFE:
        return  # POST -> 303 back to the same URI is a GET of the result (HTTPolice 1085)
    yield Hit(f"{status(ex)} redirects {ex.request.url} to itself", "point Location at a different URI")


@check("RDR-CHAIN", "Redirect loop or long chain", E, inputs="PH",
       source="RFC 9110 §15.4 (detect and intervene in loops)")
def chain(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if ex.previous is not None or ex.next is None:
        return  # judged once, from the head of the chain
    hops = list(ex.chain())
    urls = [without_fragment(h.request.url) for h in hops]
    trail = [f"{h.request.method} {h.request.url} -> {h.status}" for h in hops]
    last = hops[-1]
    repeated = len(set(urls)) < len(urls)
    target = last.resolved_location() if is_redirect(last) else None
    loops_back = target is not None and without_fragment(target) in urls[:-1]
    if repeated or loops_back:
        yield Hit(f"redirect loop after {len(hops)} hops: " + " ; ".join(trail),
                  "break the cycle: the final target must answer 2xx", E, {"hops": trail})
        return
    redirects = sum(1 for h in hops if is_redirect(h))
    if redirects > profile.max_hops:
        yield Hit(f"{redirects} redirects in a row (more than {profile.max_hops}): " + " ; ".join(trail),
                  "redirect straight to the final target", W, {"hops": trail})


@check("RDR-TARGET-UNREACHABLE", "Redirect target fails", W, inputs="PH",
       source="Guide: 303 result must be retrievable; RFC 9110 §15.4")
def target_unreachable(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    nxt = ex.next
    if not is_redirect(ex) or nxt is None:
        return
    if nxt.error:
        yield Hit(f"{ex.resolved_location()} cannot be reached: {nxt.error}", "point Location at a live URI")
    elif status(nxt) >= 400 and not (status(nxt) == 405 and status(ex) in (307, 308)):
        yield Hit(f"{nxt.request.method} {nxt.request.url} answers {status(nxt)}",
                  "point Location at a URI that answers 2xx (or a further redirect)")


@check("RDR-SCHEME-DOWNGRADE", "https redirects to http", E, source="Security (inferred best practice)")
def scheme_downgrade(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if not is_redirect(ex):
        return
    if ex.source == "openapi":
        header = ex.response_doc.headers.get("location") if ex.response_doc else None
        https = any(s.startswith("https://") for s in (ex.doc.servers if ex.doc else []))
        if https and header and header.example and header.example.lower().startswith("http://"):
            yield Hit(f"servers are https but the Location example is {header.example}", "redirect to https")
        return
    target = ex.resolved_location()
    if target and ex.request.url.lower().startswith("https://") and target.lower().startswith("http://"):
        yield Hit(f"https request redirected to {target}", "redirect to the https URI")


def _cookies(value: str | None) -> set[str]:
    return {c.strip() for c in (value or "").split(";") if "=" in c}


def _site(url: str) -> str:
    """The last two labels of the host: hosts that share them may share a `Domain` cookie."""
    return ".".join((urlsplit(url).hostname or "").lower().split(".")[-2:])


def _carried(ex: Exchange, nxt: Exchange) -> list[str]:
    """The credentials of the request that the follow-up to another origin carried on: the same
    Authorization, or cookies the first request sent that cannot belong to the target host
    too (the target's own cookies, or a cookie of a domain both hosts are in, are its to get)."""
    out = []
    auth = ex.request.header("authorization")
    if auth is not None and nxt.request.header("authorization") == auth:
        out.append("authorization")
    same = _cookies(ex.request.header("cookie")) & _cookies(nxt.request.header("cookie"))
    if same and _site(ex.request.url) != _site(nxt.request.url):
        out.append("cookie")
    return out


@check("RDR-CROSS-ORIGIN", "Redirect to another origin", W, inputs="PH",
       source="RFC 9110 §15.4 (drop Authorization/Cookie); security (inferred)")
def cross_origin(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    target = ex.resolved_location()
    if not is_redirect(ex) or target is None or origin(target) == origin(ex.request.url):
        return
    scheme, host = origin(target)
    allowed = {origin(o) for o in profile.allowed_origins}
    nxt = ex.next
    leaked = _carried(ex, nxt) if nxt is not None else []
    if leaked and nxt is not None:
        yield Hit(f"the follow-up to {target} still carried {', '.join(leaked)} to another origin",
                  "the client must drop Authorization and Cookie when following to another origin", E)
    elif (scheme, host) not in allowed:
        yield Hit(f"redirect leaves {urlsplit(ex.request.url).netloc} for {scheme}://{host}; clients must strip "
                  "credentials", "keep redirects on the same origin, or allow this one with --allow-origin")


@check("RDR-DEPRECATED-CODE", "305 or 306 used", E, source="RFC 9110 §15.4.6–§15.4.7")
def deprecated(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    code = status(ex)
    if code in (305, 306):
        yield Hit(f"{code} is {'deprecated' if code == 305 else 'reserved'}",
                  "use 307 (temporary) or 308 (permanent) with a Location")


@check("RDR-3XX-DATE", "3xx without Date", W, rfc=E, inputs="PH", source="RFC 9110 §6.6.1 (origins with a clock MUST)")
def no_date(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if ex.response is not None and 300 <= status(ex) < 400 and not ex.response.has("date"):
        yield Hit(f"{status(ex)} has no Date header", "send Date on every 3xx (every origin with a clock must)")
