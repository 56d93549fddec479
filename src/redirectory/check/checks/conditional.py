"""C. 304 and conditional requests (guide: caching and conditional requests; RFC 9110 §8.8.3,
§13, §15.4.5; RFC 9111 §3.2, §4.3.4; RFC 9112 §6.3)."""

from __future__ import annotations

from collections.abc import Iterator

from redirectory.check.checks._util import status
from redirectory.check.model import Exchange, Response
from redirectory.check.profiles import Profile
from redirectory.check.registry import E, Hit, I, W, check
from redirectory.conditional import KEPT_ON_304
from redirectory.validators import ANY, EntityTag, parse_etag_list, parse_http_date, weak_match

#: Header fields a 304 must repeat from the 200 (RFC 9110 §15.4.5).
MUST_REPEAT = tuple(sorted(KEPT_ON_304 - {"set-cookie"}))
#: Representation metadata a 304 should not carry (RFC 9110 §15.4.5; RFC 9111 §3.2).
EXTRA = ("content-type", "content-encoding", "content-language", "content-disposition", "content-range")


def _etag(response: Response | None) -> EntityTag | None:
    value = response.header("etag") if response else None
    if not value:
        return None
    try:
        return EntityTag.parse(value)
    except ValueError:
        return None


def _same_body(a: Exchange, b: Exchange) -> bool:
    return (a.response is not None and b.response is not None and a.response.body is not None
            and a.response.body == b.response.body)


@check("C304-HAS-CONTENT", "304 with content", E, source="Guide: 3xx page (304 empty body); RFC 9110 §15.4.5; "
       "RFC 9112 §6.3")
def has_content(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if status(ex) != 304 or ex.response is None:
        return
    if ex.source == "openapi":
        if ex.response.declares_content:
            yield Hit("304 documents `content`", "remove `content` from the 304 response")
        return
    size = ex.response.content_size or 0
    if size > 0 or ex.response.trailers:
        yield Hit(f"304 carries {size} bytes of content{' and trailers' if ex.response.trailers else ''}: "
                  "HTTP/1.1 framing breaks (the next response is misparsed)", "end a 304 at its header section")


@check("C304-CONTENT-LENGTH", "304 Content-Length differs from the 200's", E, inputs="PH", source="RFC 9110 §8.6")
def content_length(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if status(ex) != 304 or ex.response is None or ex.paired is None or ex.paired.response is None:
        return
    value = ex.response.header("content-length")
    if value is None or not value.strip().isdigit():
        return
    base = ex.paired.response
    expected = base.header("content-length")
    full = int(expected) if expected and expected.strip().isdigit() else base.content_size
    if full is not None and int(value) != full:
        yield Hit(f"304 says Content-Length: {value} but the 200 has {full} bytes",
                  "omit Content-Length on 304 (or send the 200's exact length)")


@check("C304-MISSING-HEADERS", "304 lacks the 200's validator/caching headers", E, source="RFC 9110 §15.4.5 (MUST)")
def missing_headers(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if status(ex) != 304 or ex.response is None:
        return
    if ex.source == "openapi":
        base = ex.doc.responses.get("200") if ex.doc else None
        if base is None or ex.response_doc is None:
            return
        names: tuple[str, ...] = ("etag", "cache-control", "vary", "expires", "content-location")
        gone = [h for h in names if h in base.headers and h not in ex.response_doc.headers]
        if gone:
            yield Hit(f"304 does not declare {', '.join(gone)} declared on 200", "declare them on the 304 too", W)
        return
    if ex.paired is None or ex.paired.response is None:
        return
    gone = [h for h in MUST_REPEAT if ex.paired.response.has(h) and not ex.response.has(h)]
    if gone:
        via = "If-None-Match" if ex.request.has("if-none-match") else "If-Modified-Since"
        yield Hit(f"304 (from {via}) lacks {', '.join(gone)} sent on the 200", "repeat them on every 304",
                  evidence={"missing": gone, "validator": via})


@check("C304-EXTRA-METADATA", "304 with representation metadata", W, source="RFC 9110 §15.4.5 (SHOULD NOT); "
       "RFC 9111 §3.2")
def extra_metadata(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if status(ex) != 304 or ex.response is None:
        return
    if ex.source == "openapi":
        present = [h for h in EXTRA if ex.response_doc and h in ex.response_doc.headers]
    else:
        present = [h for h in EXTRA if ex.response.has(h)]
    if present:
        yield Hit(f"304 carries {', '.join(present)}: it would overwrite the cached representation's metadata",
                  "send only Date, ETag, Cache-Control, Expires, Vary and Content-Location on a 304")


@check("C304-NO-PRECONDITION", "304 without a precondition", E, inputs="PH", source="RFC 9110 §15.4.5")
def no_precondition(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if status(ex) == 304 and not (ex.request.has("if-none-match") or ex.request.has("if-modified-since")):
        yield Hit(f"304 answers {ex.request.method} without If-None-Match or If-Modified-Since",
                  "answer an unconditional request with 200")


@check("C304-UNSAFE-METHOD", "304 for a method other than GET/HEAD", E, source="RFC 9110 §13.1.2, §15.4.5")
def unsafe_304(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if status(ex) == 304 and ex.request.method not in ("GET", "HEAD"):
        yield Hit(f"304 answers {ex.request.method}", "answer a failed precondition on other methods with 412")


@check("C304-ETAG-MISMATCH", "304 ETag matches none of the request's tags", W, inputs="PH",
       source="RFC 9110 §13.1.2; RFC 9111 §4.3.4")
def etag_mismatch(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    tag = _etag(ex.response)
    inm = ex.request.header("if-none-match")
    if status(ex) != 304 or tag is None or inm is None:
        return
    tags = parse_etag_list(inm)
    if tags is None or tags == ANY or isinstance(tags, str):
        return
    if not any(weak_match(tag, t) for t in tags):
        yield Hit(f"304 ETag {tag} matches none of the request's If-None-Match tags; caches will not update",
                  "send 304 only when a tag matches, with the matching ETag", evidence={"if-none-match": inm})


def _probe_200(ex: Exchange, name: str) -> Exchange | None:
    probe = ex.probes.get(name)
    return probe if probe is not None and status(probe) == 200 else None


@check("COND-INM-IGNORED", "If-None-Match ignored", E, rfc=W,
       source="Guide: caching and conditional requests (304 for conditional requests); RFC 9110 §13.1.2")
def inm_ignored(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if ex.source == "openapi":
        doc = ex.doc
        if doc and doc.method == "GET" and status(ex) == 200 and ex.response_doc \
                and "etag" in ex.response_doc.headers and "304" not in doc.responses:
            yield Hit("GET declares ETag on 200 but documents no 304", "document the 304 answer", W)
        return
    if ex.source == "har":
        tag, inm = _etag(ex.response), ex.request.header("if-none-match")
        tags = parse_etag_list(inm) if inm else None
        if status(ex) == 200 and tag and isinstance(tags, tuple) and any(weak_match(tag, t) for t in tags):
            yield Hit(f"200 answers If-None-Match: {inm} although its ETag {tag} matches", "answer 304")
        return
    probe = _probe_200(ex, "inm")
    if probe is not None and _same_body(ex, probe):
        yield Hit(f"GET with If-None-Match: {probe.request.header('if-none-match')} got a full 200 (same body)",
                  "evaluate If-None-Match and answer 304", evidence={"probe": "inm"})


@check("COND-IMS-IGNORED", "If-Modified-Since ignored", W, inputs="PH", source="RFC 9110 §13.1.3 (SHOULD)")
def ims_ignored(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if ex.source == "har":
        ims, lm = ex.request.header("if-modified-since"), ex.response.header("last-modified") if ex.response else None
        if status(ex) == 200 and ims and lm and not ex.request.has("if-none-match") and ex.request.method == "GET":
            since, modified = parse_http_date(ims), parse_http_date(lm)
            if since and modified and modified <= since:
                yield Hit(f"200 answers If-Modified-Since: {ims} although Last-Modified is {lm}", "answer 304")
        return
    probe = _probe_200(ex, "ims")
    if probe is not None and _same_body(ex, probe):
        yield Hit(f"GET with If-Modified-Since: {probe.request.header('if-modified-since')} got a full 200",
                  "evaluate If-Modified-Since when there is no If-None-Match and answer 304")


@check("COND-WEAK-COMPARISON", "If-None-Match not compared weakly", W, inputs="PH",
       source="RFC 9110 §13.1.2 (MUST weak compare), §8.8.3.2")
def weak_comparison(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if ex.source == "har":
        tag, inm = _etag(ex.response), ex.request.header("if-none-match")
        tags = parse_etag_list(inm) if inm else None
        if status(ex) == 200 and tag and isinstance(tags, tuple) and any(
                weak_match(tag, t) and t.weak != tag.weak for t in tags):
            yield Hit(f"200 although If-None-Match: {inm} weakly matches {tag}", "compare If-None-Match weakly")
        return
    if ex.probes.get("inm") is None or status(ex.probes["inm"]) != 304:
        return  # plain If-None-Match already fails (COND-INM-IGNORED)
    for name in ("inm-twin", "inm-list"):
        probe = _probe_200(ex, name)
        if probe is not None:
            yield Hit(f"If-None-Match: {probe.request.header('if-none-match')} got 200, although "
                      f"{ex.response.header('etag') if ex.response else ''} weakly matches",
                      "use weak comparison (W/\"x\" matches \"x\") and accept lists of tags")


@check("COND-STAR", "If-None-Match: * not answered with 304", I, inputs="P", source="RFC 9110 §13.1.2")
def star(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    probe = ex.probes.get("star")
    if probe is not None and status(probe) != 304:
        yield Hit(f"GET with If-None-Match: * on an existing resource got {status(probe)}", "answer 304")


@check("COND-PRECEDENCE", "If-Modified-Since evaluated despite If-None-Match", W, inputs="PH",
       source="RFC 9110 §13.1.3, §13.2.2")
def precedence(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if ex.source == "har":
        tag, inm = _etag(ex.response), ex.request.header("if-none-match")
        tags = parse_etag_list(inm) if inm else None
        if status(ex) == 304 and ex.request.has("if-modified-since") and tag and isinstance(tags, tuple) \
                and not any(weak_match(tag, t) for t in tags):
            yield Hit("304 although If-None-Match does not match: If-Modified-Since was used instead",
                      "ignore If-Modified-Since when If-None-Match is present")
        return
    probe = ex.probes.get("precedence")
    if probe is not None and status(probe) == 304:
        yield Hit("a non-matching If-None-Match with a matching If-Modified-Since got 304",
                  "ignore If-Modified-Since when If-None-Match is present (answer 200)")


@check("COND-REDIRECT-PRECEDENCE", "Conditional request on a redirect answered 304/412", E, inputs="P",
       source="RFC 9110 §13.2.1 (MUST)")
def redirect_precedence(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    probe = ex.probes.get("redirect-conditional")
    if probe is not None and status(probe) in (304, 412):
        yield Hit(f"a conditional GET on this {status(ex)} got {status(probe)}",
                  "evaluate preconditions only when the response would be 2xx: keep sending the redirect")


@check("COND-STRONG-ETAG-REUSE", "Strong ETag for different bodies", E, inputs="PH", source="RFC 9110 §8.8.3")
def strong_reuse(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    tag = _etag(ex.response)
    other = ex.probes.get("refetch")
    if status(ex) != 200 or tag is None or tag.weak or other is None or status(other) != 200:
        return
    other_tag = _etag(other.response)
    if other_tag is not None and other_tag == tag and other.response and ex.response \
            and other.response.body is not None and ex.response.body is not None \
            and other.response.body != ex.response.body:
        ce = (ex.response.header("content-encoding"), other.response.header("content-encoding"))
        why = f" (Content-Encoding {ce[0] or 'none'} / {ce[1] or 'none'})" if ce[0] != ce[1] else ""
        yield Hit(f"strong ETag {tag} served for two different bodies{why}",
                  "change the strong ETag with every byte of the representation (or mark it W/)")


@check("OAS-CONDITIONAL-PARAMS", "304 documented without conditional parameters or validators", W, inputs="O",
       source="Guide: caching and conditional requests; RFC 9110 §13.1.2")
def oas_conditional(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    doc = ex.doc
    if status(ex) != 304 or doc is None or doc.method not in ("GET", "HEAD"):
        return  # a 304 on another method is C304-UNSAFE-METHOD's finding
    if not {"if-none-match", "if-modified-since"} & doc.parameters:
        yield Hit(f"{doc.method} {doc.path} documents 304 but no If-None-Match/If-Modified-Since parameter",
                  "declare the If-None-Match header parameter")
    base = doc.responses.get("200")
    if base is not None and not {"etag", "last-modified"} & set(base.headers):
        yield Hit("the 200 declares neither ETag nor Last-Modified", "declare the ETag header on the 200")
