"""HAR 1.2 input: every entry that crossed the wire becomes an exchange; a 3xx is linked to the
entry that followed it (its `redirectURL` or Location, the first later entry for that URL), so
what the *client* did is checked too (method and body kept on 307/308, GET after 303,
credentials across origins). A 304 is paired with the latest earlier 200 for the same URL; a
200 with the previous 200.

A HAR says what its recorder saw, which is not always what crossed the wire. The reader knows
the recorders' conventions and, where it cannot tell, checks less and says so (`HarFile.notes`)
instead of guessing:

- answers from the browser's cache are not exchanges: `_fromCache` or `_transferSize: 0` (Chrome,
  Edge, Playwright), Internet Explorer's 304s to requests without a validator, Firefox's entries with
  neither header fields nor timings; failed requests (status 0) neither;
- the body that crossed the wire is `bodySize` (or Chrome's `_transferSize` less `headersSize`);
  `content.size` is the decoded or *cached* body (browsers write a revalidated 304 with the
  size of the body they kept) and is never read as wire data. No recorder can see content
  after a 304 (an HTTP parser ends a 304 at its header section), so a HAR's 304 has no body;
- Internet Explorer rewrites header values for display (`Content-Length: 6,219`) and writes a
  304 with the cached 200's header fields merged in: HTTPLINT-BAD and the checks on a 304's
  header fields are skipped there;
- a body is given to httplint only when it is the wire's (no Content-Encoding to undo).

Proxies (mitmproxy, Fiddler, Charles), Playwright, curl-based and our own recorders write what
they saw on the wire, and are read as such. A UTF-8 byte-order mark is accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from redirectory.check.checks._util import REDIRECTS
from redirectory.check.lint import notes
from redirectory.check.model import Exchange, Location, Request, Response, without_fragment
from redirectory.check.srcmap import SourceError, read_text

#: The checks that read a 304's header fields (skipped where the recorder rewrote them).
HEADER_CHECKS_304 = frozenset({"C304-MISSING-HEADERS", "C304-EXTRA-METADATA", "C304-CONTENT-LENGTH",
                               "C304-ETAG-MISMATCH", "COND-PRECEDENCE", "RDR-3XX-DATE", "HTTPLINT-BAD"})


class HARError(ValueError):
    """Not a HAR file; the message names the file (and line or entry)."""


@dataclass(slots=True)
class HarFile:
    exchanges: list[Exchange]
    recorder: str  # log.creator.name (and version) as written
    notes: list[str] = field(default_factory=list)  # what the reader could not tell, and skipped


def _headers(obj: dict[str, Any], where: str) -> list[tuple[str, str]]:
    raw = obj.get("headers", [])
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise HARError(f"{where}.headers: expected a list of {{name, value}}")
    out = []
    for h in raw:
        if not isinstance(h, dict) or not isinstance(h.get("name"), str):
            raise HARError(f"{where}.headers: expected {{name, value}} objects")
        if h["name"].startswith(":"):
            continue  # HTTP/2 pseudo-header fields
        out.append((h["name"], str(h.get("value", ""))))
    return out


def _text(content: dict[str, Any]) -> bytes | None:
    text = content.get("text")
    if not isinstance(text, str):
        return None
    if content.get("encoding") == "base64":
        try:
            return base64.b64decode(text)
        except (binascii.Error, ValueError):
            return None
    return text.encode("utf-8")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _kind(creator: str) -> str:
    """chrome, firefox, ie or wire (proxies, Playwright, curl, our recorder, anything else)."""
    name = creator.lower()
    if "webinspector" in name or "chrome" in name or "edge" in name:
        return "chrome"
    if "firefox" in name or "firebug" in name:
        return "firefox"
    if "internet explorer" in name:
        return "ie"
    return "wire"


def _conditional(req: dict[str, Any]) -> bool:
    names = {str(h.get("name", "")).lower() for h in req.get("headers") or [] if isinstance(h, dict)}
    return bool(names & {"if-none-match", "if-modified-since"})


def _cached(kind: str, entry: dict[str, Any], res: dict[str, Any]) -> str | None:
    """Why this entry is an answer from the browser's cache (never on the wire), or None."""
    # Chrome, Edge and Playwright (whatever its browser) write what reached the network layer
    if entry.get("_fromCache") or res.get("_fromCache"):
        return "`_fromCache`"
    if res.get("_transferSize") == 0:
        return "`_transferSize: 0`"
    if kind == "ie" and res.get("status") == 304 and not _conditional(entry["request"]):
        return "Internet Explorer's 304 to a request without a validator"
    if kind == "firefox" and not res.get("headers") and not entry.get("timings") and not entry.get("time"):
        return "Firefox's entry with neither header fields nor timings"
    return None


def _wire_body_size(res: dict[str, Any]) -> int | None:
    """The body bytes that crossed the wire, when the recorder says (never `content.size`)."""
    size = _int(res.get("bodySize"))
    if size is not None:
        return size
    transfer, headers = _int(res.get("_transferSize")), _int(res.get("headersSize"))
    if transfer is not None and headers is not None and transfer >= headers:
        return transfer - headers
    return None


def _started(value: Any) -> datetime | None:
    """The entry's startedDateTime (ISO 8601), as an aware UTC datetime, or None."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _entry(path: Path, i: int, entry: dict[str, Any], kind: str) -> Exchange:
    where = f"{path}: log.entries[{i}]"
    req, res = entry["request"], entry["response"]
    method, url = req.get("method"), req.get("url")
    if not isinstance(method, str) or not isinstance(url, str) or not url:
        raise HARError(f"{where}.request: `method` and `url` are required strings")
    status = res["status"]
    post = req.get("postData")
    text = post.get("text") if isinstance(post, dict) else None
    body = text.encode("utf-8") if isinstance(text, str) else None
    if body is None and req.get("bodySize") == 0:
        body = b""
    content = res.get("content") if isinstance(res.get("content"), dict) else {}
    request = Request(method.upper(), url, _headers(req, f"{where}.request"), body)
    headers = _headers(res, f"{where}.response")
    if status == 304:  # nothing after a 304's header section is read by any recorder
        response = Response(status, headers, None, None)
    else:
        response = Response(status, headers, _text(content), _wire_body_size(res))
    redirect = res.get("redirectURL")
    if isinstance(redirect, str) and redirect and not response.has("location"):
        response.headers.append(("Location", redirect))
    ex = Exchange(request, response, "har", Location(uri=url, method=request.method, file=str(path),
                                                     pointer=f"/log/entries/{i}", name=path.name),
                  started=_started(entry.get("startedDateTime")))
    wire_body = response.body is not None and not response.has("content-encoding") and kind == "wire"
    ex.httplint_notes, ex.cache_control, ex.httplint_bad = notes(request, response, feed_body=wire_body)
    if kind == "ie":  # header values rewritten for display ("Content-Length: 6,219"), 304s merged
        ex.ignore = ex.ignore | (HEADER_CHECKS_304 if status == 304 else {"HTTPLINT-BAD"})
    return ex


def read_har(path: Path) -> HarFile:
    """The exchanges of the HAR at `path` and the notes on what could not be told."""
    try:
        data = json.loads(read_text(path, "HAR file"))
    except SourceError as exc:
        raise HARError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise HARError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise HARError(f"{path}: invalid JSON: {exc}") from None
    log: Any = data.get("log") if isinstance(data, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(log, dict) or not isinstance(entries, list):
        raise HARError(f"{path}: not a HAR file (expected an object with log.entries, a list)")
    creator: Any = log.get("creator") if isinstance(log.get("creator"), dict) else {}
    recorder = " ".join(str(creator[k]) for k in ("name", "version") if creator.get(k)) or "unknown recorder"
    kind = _kind(recorder)
    exchanges: list[Exchange] = []
    cached: dict[str, int] = {}
    failed = unknown_size = ie_304 = 0
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict) \
                or not isinstance(entry.get("response"), dict):
            raise HARError(f"{path}: log.entries[{i}]: expected an object with `request` and `response`")
        status = entry["response"].get("status")
        if not isinstance(status, int) or isinstance(status, bool):
            raise HARError(f"{path}: log.entries[{i}].response.status: expected an integer, got {status!r}")
        if status <= 0:
            failed += 1
            continue
        why = _cached(kind, entry, entry["response"])
        if why is not None:
            cached[why] = cached.get(why, 0) + 1
            continue
        ex = _entry(path, i, entry, kind)
        if kind == "ie" and status == 304:
            ie_304 += 1
        if status != 304 and ex.response is not None and ex.response.body_size is None:
            unknown_size += 1
        exchanges.append(ex)
    notes_: list[str] = []
    for why, n in cached.items():
        notes_.append(f"{path}: {n} entr{'y' if n == 1 else 'ies'} answered from the browser's cache ({why}) "
                      "did not cross the wire: not checked")
    if failed:
        notes_.append(f"{path}: {failed} entr{'y' if failed == 1 else 'ies'} with no response (status 0 or -1: "
                      "the request failed): not checked")
    if kind == "ie":
        notes_.append(f"{path}: {recorder} rewrites header values for display and writes a 304 with the cached "
                      f"200's header fields: HTTPLINT-BAD is skipped, and so are the checks on the header fields "
                      f"of its {ie_304} 304(s) ({', '.join(sorted(HEADER_CHECKS_304 - {'HTTPLINT-BAD'}))})")
    if unknown_size:
        notes_.append(f"{path}: {unknown_size} entr{'y' if unknown_size == 1 else 'ies'} without the size of the "
                      "body on the wire (bodySize -1): a body is reported only when the recorder kept its text")
    _link(exchanges)
    return HarFile(exchanges, recorder, notes_)


def load_har(path: Path) -> list[Exchange]:
    return read_har(path).exchanges


def _link(exchanges: list[Exchange]) -> None:
    """Link each 3xx to the first later, unclaimed entry for its target; pair each 304 (and each
    200) with the latest earlier 200 for the same URL and method. Linear in the entries."""
    waiting: dict[str, list[Exchange]] = {}  # target URL -> redirects not yet followed, in order
    last_200: dict[tuple[str, str], Exchange] = {}
    for ex in exchanges:
        url = without_fragment(ex.request.url)
        pending = waiting.get(url)
        if pending:
            source = pending.pop(0)
            source.next, ex.previous = ex, source
        if ex.status in (200, 304) and ex.request.method in ("GET", "HEAD"):
            earlier = last_200.get((ex.request.method, url))
            if earlier is not None and ex.status == 304:
                ex.paired = earlier
            elif earlier is not None:
                ex.probes["refetch"] = earlier
            if ex.status == 200:
                last_200[(ex.request.method, url)] = ex
        if ex.status in REDIRECTS:
            target = ex.resolved_location()
            if target is not None:
                waiting.setdefault(without_fragment(urljoin(ex.request.url, target)), []).append(ex)
