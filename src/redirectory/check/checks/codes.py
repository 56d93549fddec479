"""B. Per-code rules: 301, 302, 303, 307, 308 (the guide's 3xx page; RFC 9110 §15.4; RFC 7538)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

from redirectory.check.checks._util import SAFE, max_age, path_matches, status
from redirectory.check.model import Exchange, OperationDoc, Severity
from redirectory.check.profiles import Profile
from redirectory.check.registry import E, Hit, I, W, check
from redirectory.semantics import SAFE_FOR_301, alternatives_to_302


def _cache_headers(ex: Exchange) -> tuple[str | None, bool]:
    """(Cache-Control value, Expires present) — declared ones for OpenAPI."""
    if ex.source == "openapi":
        headers = ex.response_doc.headers if ex.response_doc else {}
        cc = "declared" if "cache-control" in headers else None
        return cc, "expires" in headers
    assert ex.response is not None
    return ex.response.header("cache-control"), ex.response.has("expires")


@check("S302-FORBIDDEN", "302 used", E, house_only=True, source="Guide: 3xx page (302 MUST NOT be used)")
def forbidden_302(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if status(ex) != 302:
        return
    unsafe = ex.request.method not in SAFE
    hint = "303 (the result of this unsafe request)" if unsafe else "307 (temporary, same method) or 301/308"
    yield Hit(f"302 answers {ex.request.method} {ex.request.url}: {alternatives_to_302()}", f"use {hint}")


@check("S3XX-RANGE-HIDES-302", "3XX range or default on a redirecting operation", W, house_only=True, inputs="O",
       source="Guide: 3xx page (explicit codes; 302 forbidden)")
def range_hides_302(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    doc, rdoc = ex.doc, ex.response_doc
    if doc is None or rdoc is None:
        return
    # `default` usually documents errors: only one that declares Location stands for redirects. A
    # 304 is not a redirect (it sends no one anywhere).
    if rdoc.key.upper() == "3XX" or (rdoc.key == "default" and "location" in rdoc.headers):
        yield Hit(f"{doc.method} {doc.path} documents `{rdoc.key}`, which allows 302",
                  "document each redirect code explicitly (301, 303, 307, 308)")


@check("S301-UNSAFE-METHOD", "301 answers an unsafe method", W, source="RFC 9110 §15.4.2 (POST -> GET MAY)")
def unsafe_301(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if status(ex) != 301 or ex.request.method in SAFE_FOR_301:
        return
    nxt = ex.next
    switched = nxt is not None and nxt.request.method != ex.request.method
    changed = f"; the client switched to {nxt.request.method}" if nxt is not None and switched else ""
    yield Hit(f"301 answers {ex.request.method}: clients may silently turn it into GET{changed}",
              "use 308 to keep the method (or 303 to send the client to a result)")


@check("S301-308-UNCONTROLLED-CACHE", "Permanent redirect without explicit freshness", I,
       source="RFC 9110 §15.1, §15.4.2, §15.4.9; RFC 9111 §4.2.2")
def uncontrolled_cache(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    code = status(ex)
    if code not in (301, 308):
        return
    cc, expires = _cache_headers(ex)
    if cc is None and not expires:
        yield Hit(f"{code} has no Cache-Control or Expires: caches may keep it heuristically for a long time",
                  "send an explicit `Cache-Control: max-age=<seconds>` sized to how sure the move is")
    elif cc and "no-store" in cc.lower():
        yield Hit(f"{code} is a permanent move but says `no-store`", "use a max-age, or a temporary code (307)")


@check("S308-POLICY", "308 used (deployment caveat)", I, source="RFC 7538 §4; house switch --policy-308")
def policy_308(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if status(ex) != 308 or profile.policy_308 == "allow":
        return
    yield Hit("308 is standard (RFC 9110 §15.4.9), but clients that do not know it treat it as 300",
              "keep 308 if your clients know it; otherwise 301 for GET/HEAD",
              Severity(profile.policy_308))


@check("S303-NO-BODY", "303 with a body", E, house_only=True, source="Guide: 3xx page (303 SHOULD not include body)")
def body_303(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if status(ex) != 303 or ex.response is None:
        return
    if ex.source == "openapi":
        if ex.response.declares_content:
            yield Hit("303 documents `content`", "remove `content` from the 303 response")
        return
    size = ex.response.content_size or 0
    length = ex.response.header("content-length")
    if size > 0 or (length and length.strip().isdigit() and int(length) > 0 and ex.request.method != "HEAD"):
        yield Hit(f"303 carries a body ({size or length} bytes)", "send the 303 with no content (Content-Length: 0)")


@check("S303-AFTER-UNSAFE", "303 answers GET or HEAD", W, rfc=I,
       source="Guide: 3xx page (303 after a controller's work); RFC 9110 §15.4.4")
def after_unsafe(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if status(ex) == 303 and ex.request.method in ("GET", "HEAD"):
        yield Hit(f"303 answers {ex.request.method}: the guide uses 303 after a controller (POST...) has done "
                  "its work", "use 307/308 to move a resource; keep 303 for the result of an unsafe request")


@check("S303-FOLLOW-GET", "Client did not GET after 303", E, inputs="H", source="RFC 9110 §15.4.4")
def follow_get(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    nxt = ex.next
    if status(ex) != 303 or nxt is None:
        return
    body = nxt.request.body
    if nxt.request.method not in ("GET", "HEAD"):
        yield Hit(f"after 303 the client sent {nxt.request.method} to {nxt.request.url}",
                  "follow a 303 with GET (HEAD stays HEAD)")
    elif body or nxt.request.has("content-type"):
        yield Hit("after 303 the client's GET still carried a body or Content-Type",
                  "drop the content and its Content-* fields when switching to GET")


def _target_path(ex: Exchange) -> str | None:
    header = ex.response_doc.headers.get("location") if ex.response_doc else None
    if header is None or not header.example:
        return None
    return urlsplit(urljoin("http://spec.invalid" + (ex.doc.path if ex.doc else "/"), header.example)).path


def _candidates(doc: OperationDoc, path: str) -> list[str]:
    """`path`, then `path` without each `servers` base path it starts with (longest first)."""
    out = [path]
    bases = sorted({urlsplit(s).path.rstrip("/") for s in doc.servers}, key=len, reverse=True)
    for base in bases:
        if base and (path == base or path.startswith(base + "/")):
            out.append(path[len(base):] or "/")
    return out


def _documented(doc: OperationDoc, path: str) -> set[str] | None:
    """The methods documented for `path` (a Location example's path, `servers` base path stripped)."""
    for candidate in _candidates(doc, path):
        found = next((m for template, m in doc.spec_paths.items() if path_matches(template, candidate)), None)
        if found is not None:
            return found
    return None


@check("S303-TARGET-DOCUMENTED", "303 target not documented", W, inputs="O", source="Guide: 3xx page; OpenAPI links")
def target_documented(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if status(ex) != 303 or ex.doc is None or ex.response_doc is None or ex.response_doc.links:
        return
    if "location" not in ex.response_doc.headers:
        return  # RDR-LOC-MISSING reports the missing Location: one finding per problem
    path = _target_path(ex)
    methods = _documented(ex.doc, path) if path else None
    if path is None:
        yield Hit("303 has no `links` and no Location example naming the target operation",
                  "add `links` to the GET operation of the result (or a Location example)")
    elif methods is None or "GET" not in methods:
        yield Hit(f"303 target {path} is not a documented GET operation", f"document GET {path}")


@check("S307-METHOD-PRESERVED", "Client changed method or body after 307/308", E, inputs="H",
       source="Guide: 3xx page (307: same verb); RFC 9110 §15.4.8 MUST NOT, §15.4.9")
def method_preserved(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    nxt = ex.next
    if status(ex) not in (307, 308) or nxt is None:
        return
    if nxt.request.method != ex.request.method:
        yield Hit(f"after {status(ex)} the client switched {ex.request.method} to {nxt.request.method}",
                  "re-send the same method to Location")
    elif ex.request.body_hash is not None and nxt.request.body_hash is not None \
            and ex.request.body_hash != nxt.request.body_hash:
        yield Hit(f"after {status(ex)} the client re-sent {ex.request.method} with a different body",
                  "re-send the same body to Location")


@check("S307-TARGET-ACCEPTS-METHOD", "307/308 target does not allow the method", W,
       source="Guide: 3xx page; RFC 9110 §15.4.8")
def target_accepts(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    code, method = status(ex), ex.request.method
    if code not in (307, 308):
        return
    if ex.source == "openapi":
        path = _target_path(ex)
        methods = _documented(ex.doc, path) if ex.doc and path else None
        if methods is not None and method not in methods:
            yield Hit(f"{code} target {path} does not document {method}", f"document {method} {path}")
        return
    nxt = ex.next
    if nxt is not None and nxt.request.method == method and status(nxt) == 405:
        yield Hit(f"{method} {nxt.request.url} answers 405", "redirect to a URI that accepts the same method")
    elif ex.options is not None and ex.options.response is not None:
        allow = ex.options.response.header("allow")
        if allow is not None and method not in {m.strip().upper() for m in allow.split(",")}:
            yield Hit(f"the target allows only {allow}, not {method}", "redirect to a URI that accepts the method")


@check("S307-UNEXPECTED-CACHE", "Temporary redirect cached for long", I, inputs="PH",
       source="RFC 9111 §3, §4.2.2 (inferred best practice)")
def temporary_cached(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    if status(ex) not in (302, 303, 307) or ex.response is None:
        return
    age = max_age(ex)
    if age is not None and age > profile.long_cache_seconds:
        yield Hit(f"temporary {status(ex)} is fresh for {age} s", "keep temporary redirects short-lived "
                  f"(max-age under {profile.long_cache_seconds} s) or use a permanent code")
