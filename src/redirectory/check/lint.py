"""httplint over one exchange: its parsed header fields and its WARN/BAD notes (generic notes
that our own ids do not cover are kept as evidence, never as findings of their own)."""

from __future__ import annotations

from httplint import HttpRequestLinter, HttpResponseLinter, levels

from redirectory.check.model import Request, Response

#: httplint notes our checks already report under our ids (so they are not repeated as evidence).
OURS = frozenset({"REDIRECT_WITHOUT_LOCATION", "LOCATION_NOT_ABSOLUTE", "LOCATION_UNDEFINED", "STATUS_DEPRECATED",
                  "STATUS_RESERVED", "CONTENT_NOT_ALLOWED", "MISSING_HDRS_304", "NO_DATE_304", "DATE_CLOCKLESS",
                  "SINGLE_HEADER_REPEAT", "INM_FULL", "IMS_FULL", "INM_DUP_ETAG_STRONG"})


def _latin1(text: str) -> bytes:
    return text.encode("latin-1", "replace")


def notes(request: Request, response: Response) -> tuple[list[str], dict[str, int | str | None]]:
    """(`NAME: summary` for every WARN or BAD httplint note on this exchange, the response's
    Cache-Control directives as httplint parsed them)."""
    req = HttpRequestLinter()
    req.process_request_topline(_latin1(request.method), _latin1(request.url), b"HTTP/1.1")
    req.process_headers([(_latin1(k), _latin1(v)) for k, v in request.headers])
    req.finish_content(True)
    res = HttpResponseLinter(_related=req)
    res.is_head_response = request.method == "HEAD"
    res.process_response_topline(b"HTTP/1.1", str(response.status).encode(), b"")
    res.process_headers([(_latin1(k), _latin1(v)) for k, v in response.headers])
    if response.body:
        res.feed_content(response.body)
    res.finish_content(True)
    found = [f"{n.__class__.__name__}: {n.summary}" for n in res.notes
             if n.level in (levels.WARN, levels.BAD) and n.__class__.__name__ not in OURS]
    directives = res.headers.parsed.get("cache-control") or []
    return found, {str(k).lower(): v for k, v in directives if isinstance(k, str)}
