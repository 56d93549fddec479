"""httplint over one exchange: its parsed header fields, its WARN/BAD notes (kept as evidence)
and its BAD notes that our own ids do not cover (each reported by HTTPLINT-BAD)."""

from __future__ import annotations

from httplint import HttpRequestLinter, HttpResponseLinter, levels

from redirectory.check.model import Request, Response

#: httplint notes our checks already report under our ids (so they are not repeated).
OURS = frozenset({"REDIRECT_WITHOUT_LOCATION", "LOCATION_NOT_ABSOLUTE", "LOCATION_UNDEFINED", "STATUS_DEPRECATED",
                  "STATUS_RESERVED", "CONTENT_NOT_ALLOWED", "MISSING_HDRS_304", "NO_DATE_304", "DATE_CLOCKLESS",
                  "INM_FULL", "IMS_FULL", "INM_DUP_ETAG_STRONG", "DEPRECATION_BAD_TYPE"})
#: ...and those that are ours only for some fields (a repeated Location is RDR-LOC-MULTIPLE's; a
#: malformed or repeated Deprecation or Sunset is DEP-DEPRECATION-MALFORMED's or DEP-SUNSET-MALFORMED's).
OURS_FOR = {"SINGLE_HEADER_REPEAT": frozenset({"field-location", "field-deprecation", "field-sunset"}),
            "STRUCTURED_FIELD_PARSE_ERROR": frozenset({"field-deprecation"}),
            "BAD_DATE_SYNTAX": frozenset({"field-sunset"})}


#: BAD notes that name no harm: Access-Control-Allow-Methods/-Headers/-Max-Age on an actual (not
#: preflight) response are ignored by browsers (Fetch §3.2.3), not an error.
NOT_PROBLEMS = frozenset({"CORS_PREFLIGHT_ONLY"})
#: Notes about the content itself: meaningless when the linter did not see the wire's bytes.
_CONTENT_NOTES = frozenset({"CL_INCORRECT"})
_CONTENT_MODULES = ("httplint.content_encoding", "httplint.charset", "httplint.content_type")


def _about_content(note: object) -> bool:
    return type(note).__name__ in _CONTENT_NOTES or type(note).__module__.startswith(_CONTENT_MODULES)


def _latin1(text: str) -> bytes:
    return text.encode("latin-1", "replace")


def _ours(name: str, subject: str) -> bool:
    return name in OURS or subject in OURS_FOR.get(name, frozenset())


def notes(request: Request, response: Response, feed_body: bool = True
          ) -> tuple[list[str], dict[str, int | str | None], list[str]]:
    """(`NAME: summary` for every WARN or BAD httplint note on this exchange, the response's
    Cache-Control directives as httplint parsed them, `NAME: summary` of the BAD notes).

    `feed_body=False` lints the header section only (for bodies that are not the wire's)."""
    req = HttpRequestLinter()
    req.process_request_topline(_latin1(request.method), _latin1(request.url), b"HTTP/1.1")
    req.process_headers([(_latin1(k), _latin1(v)) for k, v in request.headers])
    req.finish_content(True)
    res = HttpResponseLinter(_related=req)
    res.is_head_response = request.method == "HEAD"
    res.process_response_topline(b"HTTP/1.1", str(response.status).encode(), b"")
    res.process_headers([(_latin1(k), _latin1(v)) for k, v in response.headers])
    exact = feed_body and response.body is not None  # the linter sees the content that crossed the wire
    if exact and response.body:
        res.feed_content(response.body)
    res.finish_content(True)
    kept = [n for n in res.notes if not _ours(n.__class__.__name__, str(getattr(n, "subject", "")))
            and (exact or not _about_content(n))]
    found = [f"{n.__class__.__name__}: {n.summary}" for n in kept if n.level in (levels.WARN, levels.BAD)]
    bad = [f"{n.__class__.__name__}: {n.summary}" for n in kept
           if n.level == levels.BAD and n.__class__.__name__ not in NOT_PROBLEMS]
    directives = res.headers.parsed.get("cache-control") or []
    return found, {str(k).lower(): v for k, v in directives if isinstance(k, str)}, bad
