"""HAR 1.2 input: every entry becomes an exchange; a 3xx is linked to the entry that followed
it (its `redirectURL` or Location, the first later entry for that URL), so what the *client* did
is checked too (method and body kept on 307/308, GET after 303, credentials across origins).
A 304 is paired with the latest earlier 200 for the same URL; a 200 with the previous 200."""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from redirectory.check.checks._util import REDIRECTS
from redirectory.check.lint import notes
from redirectory.check.model import Exchange, Location, Request, Response, without_fragment


class HARError(ValueError):
    """Not a HAR file; the message names the file (and line or entry)."""


def _headers(obj: dict[str, Any], where: str) -> list[tuple[str, str]]:
    raw = obj.get("headers", [])
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


def _entry(path: Path, i: int, entry: Any) -> Exchange:
    where = f"{path}: log.entries[{i}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict) \
            or not isinstance(entry.get("response"), dict):
        raise HARError(f"{where}: expected an object with `request` and `response`")
    req, res = entry["request"], entry["response"]
    method, url = req.get("method"), req.get("url")
    if not isinstance(method, str) or not isinstance(url, str) or not url:
        raise HARError(f"{where}.request: `method` and `url` are required strings")
    status = res.get("status")
    if not isinstance(status, int):
        raise HARError(f"{where}.response.status: expected an integer, got {status!r}")
    post = req.get("postData")
    text = post.get("text") if isinstance(post, dict) else None
    body = text.encode("utf-8") if isinstance(text, str) else None
    if body is None and req.get("bodySize") == 0:
        body = b""
    content = res.get("content") if isinstance(res.get("content"), dict) else {}
    size = max((s for s in (res.get("bodySize"), content.get("size")) if isinstance(s, int)), default=-1)
    request = Request(method.upper(), url, _headers(req, f"{where}.request"), body)
    response = Response(status, _headers(res, f"{where}.response"), _text(content), size if size >= 0 else None)
    redirect = res.get("redirectURL")
    if isinstance(redirect, str) and redirect and not response.has("location"):
        response.headers.append(("Location", redirect))
    ex = Exchange(request, response, "har", Location(uri=url, method=request.method, file=str(path),
                                                     pointer=f"/log/entries/{i}"))
    if status > 0:
        ex.httplint_notes, ex.cache_control = notes(request, response)
    return ex


def load_har(path: Path) -> list[Exchange]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HARError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HARError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise HARError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    entries = data.get("log", {}).get("entries") if isinstance(data, dict) and isinstance(data.get("log"), dict) \
        else None
    if not isinstance(entries, list):
        raise HARError(f"{path}: not a HAR file (expected an object with log.entries, a list)")
    exchanges = [_entry(path, i, e) for i, e in enumerate(entries)]
    _link(exchanges)
    return exchanges


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
