"""`from` path patterns and `to` target templates: parsing and safe substitution.

A `from` pattern is an absolute path, optionally prefixed by `//host` to match one host only.
Each segment is either literal text or a whole-segment placeholder: `{name}` matches exactly one
non-empty segment; `{name:path}` matches the rest of the path (zero or more segments) and may
only come last.

A `to` template is an absolute http(s) URI or an absolute path. Placeholders may stand in its
path, query or fragment, never in its scheme or host, and their values are percent-encoded for
the place they stand in, so that no value can change the target's scheme or host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from redirectory.rules.normalise import (
    PATH_VALUE_SAFE,
    QUERY_VALUE_SAFE,
    SEGMENT_SAFE,
    InvalidPath,
    encode_component,
    normalise_path,
)

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PLACEHOLDER = re.compile(r"\{(" + NAME + r")(?::(path))?\}")
_ANY_BRACE = re.compile(r"[{}]")
#: A DNS name: labels of letters, digits, `-` inside, and `_` (RFC 3986 reg-name allows it, browsers
#: follow it, and real configurations redirect to such names: `taxandchancery_ut.decisions...`).
_HOST = re.compile(r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$")
_TARGET_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")


class PatternError(ValueError):
    """A `from` or `to` value is malformed; the message says what would be valid."""


@dataclass(frozen=True, slots=True)
class Param:
    name: str


Segment = str | Param


@dataclass(frozen=True, slots=True)
class PathPattern:
    """A parsed `from` pattern. Literal segments are normalised (see `normalise`)."""

    text: str
    host: str | None
    segments: tuple[Segment, ...]
    tail: str | None  # name of the trailing `{name:path}` placeholder, if any
    # Derived once (the hot paths read them often):
    is_exact: bool = field(init=False)
    literal_count: int = field(init=False)
    names: tuple[str, ...] = field(init=False)
    #: The normalised path of an exact pattern (only meaningful when `is_exact`).
    exact_path: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        params = [s.name for s in self.segments if isinstance(s, Param)]
        literals = [s for s in self.segments if isinstance(s, str)]
        object.__setattr__(self, "is_exact", self.tail is None and not params)
        # A trailing slash's empty segment is not a literal: `/{x}/` is no more specific than `/{x}`.
        object.__setattr__(self, "literal_count", sum(1 for s in literals if s))
        object.__setattr__(self, "names", tuple(params + ([self.tail] if self.tail else [])))
        object.__setattr__(self, "exact_path", "/" + "/".join(literals))

    def shape(self) -> tuple[tuple[str | None, ...], bool]:
        """The pattern with placeholder names erased: equal shapes match the same paths."""
        return (tuple(s if isinstance(s, str) else None for s in self.segments), self.tail is not None)


def normalise_host(host: str) -> str:
    """Lower-case, without port and trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host.rstrip(".")


def valid_host(host: str) -> bool:
    return bool(_HOST.match(host)) or bool(re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", host))


#: A `from_regex` that starts with this is host-specific: matched against `//host/path` (the host
#: lower-case, without its port), where any other is matched against the path alone. A normalised
#: path never starts with `//` (runs of slashes collapse), so no other regex is taken for one.
HOST_REGEX_PREFIX = "^//"
_LITERAL_HOST_REGEX = re.compile(r"\^//((?:[a-z0-9_-]|\\[.-])+)([/(.].*)?$", re.S)


def is_host_regex(regex: str) -> bool:
    """Whether `regex` is a host-specific `from_regex` (see `HOST_REGEX_PREFIX`)."""
    return regex.startswith(HOST_REGEX_PREFIX)


def split_host_regex(regex: str) -> tuple[str, str] | None:
    r"""(host, path regex) of a host-specific `from_regex` whose host is written literally
    (`^//docs\.example\.org/(.*)$` -> `docs.example.org`, `^/(.*)$`); None for another."""
    m = _LITERAL_HOST_REGEX.match(regex)
    if m is None or not m.group(2):
        return None
    host = m.group(1).replace("\\", "")
    return (host, "^" + m.group(2)) if valid_host(host) else None


#: Parsed patterns and targets are memoised: the validator, the matcher and the exporters all
#: parse the same texts.
_CACHE_SIZE = 1 << 18

#: An exact path that is already normal (see `normalise`) and has no host, placeholder, empty or
#: dot segment: its pattern is its segments as written, built without the cache.
_SIMPLE_EXACT = re.compile(r"(?:/[A-Za-z0-9\-_~!$&'()*+,;=:@][A-Za-z0-9\-._~!$&'()*+,;=:@]*)*/?")


class _PatternBuilder:
    """PathPattern's slot layout without the frozen `__setattr__` (see `model.new_rule`)."""

    __slots__ = PathPattern.__slots__


def simple_exact_pattern(text: str) -> PathPattern | None:
    """The pattern of `text` when it is a plain exact path already in normal form (the common
    case: no host, placeholder, escape, dot or empty segment), else None. Equal to
    `parse_source(text)`, several times cheaper, and kept out of its cache."""
    if not _SIMPLE_EXACT.fullmatch(text) or not text:
        return None
    segments = tuple(text[1:].split("/"))
    p: Any = _new(_PatternBuilder)
    p.text = text
    p.host = None
    p.segments = segments
    p.tail = None
    p.is_exact = True
    p.literal_count = len(segments) - (segments[-1] == "")
    p.names = ()
    p.exact_path = text
    p.__class__ = PathPattern
    return p  # type: ignore[no-any-return]


_new = object.__new__


def parse_source(text: str) -> PathPattern:
    """Parse a `from` pattern; raises PatternError naming what is wrong."""
    if type(text) is str:
        simple = simple_exact_pattern(text)
        if simple is not None:
            return simple
    return _parse_source_cached(text)


def _parse_source(text: str) -> PathPattern:
    if type(text) is str:
        simple = simple_exact_pattern(text)
        if simple is not None:
            return simple
    return _parse_source_full(text)


def _parse_source_full(text: str) -> PathPattern:
    if not isinstance(text, str) or not text:
        raise PatternError("must be a non-empty path such as /api/v1/users or //host/path")
    if _TARGET_FORBIDDEN.search(text):
        raise PatternError("must not contain spaces or control characters (percent-encode them)")
    host: str | None = None
    path = text
    if text.startswith("//"):
        rest = text[2:]
        slash = rest.find("/")
        host_part, path = (rest, "/") if slash == -1 else (rest[:slash], rest[slash:])
        host = normalise_host(host_part)
        if not valid_host(host):
            raise PatternError(f"'{host_part}' is not a valid host name in //host/path")
    if not path.startswith("/"):
        raise PatternError("must start with '/' (or '//host/')")
    if "?" in path or "#" in path:
        raise PatternError("matches the path only: remove the query ('?') or fragment ('#')")
    raw_segments = path.split("/")[1:]
    segments: list[Segment] = []
    tail: str | None = None
    seen: set[str] = set()
    for i, raw in enumerate(raw_segments):
        m = _PLACEHOLDER.fullmatch(raw)
        if m:
            name, kind = m.group(1), m.group(2)
            if name in seen:
                raise PatternError(f"placeholder '{{{name}}}' appears twice")
            seen.add(name)
            if kind == "path":
                if i != len(raw_segments) - 1:
                    raise PatternError(f"'{{{name}:path}}' matches the rest of the path and may only come last")
                tail = name
            else:
                segments.append(Param(name))
            continue
        if _ANY_BRACE.search(raw):
            raise PatternError(
                f"segment '{raw}': a placeholder must be a whole segment, "
                "'{name}' (one segment) or '{name:path}' (the rest, last only)"
            )
        if raw in (".", ".."):
            raise PatternError("must not contain '.' or '..' segments (paths are normalised before matching)")
        segments.append(raw)
    # Normalise literal text the same way request paths are (skipped when already normal).
    normalised: list[Segment] = list(segments)
    literal_probe = "/" + "/".join(s if isinstance(s, str) else "x" for s in segments)
    try:
        already_normal = normalise_path(literal_probe) == literal_probe
        if not already_normal:
            normalised = [
                (normalise_path("/" + seg)[1:] if seg else "") if isinstance(seg, str) else seg
                for seg in segments
            ]
    except InvalidPath as exc:
        raise PatternError(str(exc)) from None
    # Empty segments (duplicate slashes) disappear under normalisation, except a trailing one.
    compact: list[Segment] = [
        s for j, s in enumerate(normalised) if s != "" or (j == len(normalised) - 1 and tail is None)
    ]
    if not compact and tail is None:
        compact = [""]
    return PathPattern(text=text, host=host, segments=tuple(compact), tail=tail)


_parse_source_cached = lru_cache(maxsize=_CACHE_SIZE)(_parse_source_full)
#: The uncached parser (as `functools.lru_cache` names it), for callers that parse each text once.
parse_source.__wrapped__ = _parse_source  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Hole:
    name: str
    context: str  # "path" | "query" | "fragment"


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed `to` template: static prefix (scheme://host) plus parts with holes."""

    text: str
    origin: str | None  # "https://host[:port]" for absolute targets, None for absolute paths
    parts: tuple[str | Hole, ...]  # everything after the origin
    #: the host is `{host}` (`origin` is "https://{host}"): the request's own host, filled in by
    #: `render`; a client is only ever sent back to the host it asked for
    own_host: bool = False
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(p.name for p in self.parts if isinstance(p, Hole)))

    @property
    def is_static(self) -> bool:
        return not self.names

    @property
    def host(self) -> str | None:
        """The target's host; None for a path, and for `{host}` (the request's, not known here)."""
        return urlsplit(self.origin).hostname if self.origin and not self.own_host else None

    def render(self, values: dict[str, str | None], keep_query: bool = False, host: str | None = None) -> str:
        """Substitute placeholder values, percent-encoded for where each one stands.

        A `{name:path}` value that is None (the path ended before it) removes the slash in
        front of it, so `/v1/users/{rest}` with nothing after `/v1/users` gives `/v2/users`.
        `keep_query`: a value in the path keeps a `?` raw (values a regex took from the path and
        query, `regex_query`: pasted as received, as nginx pastes `$request_uri` captures).
        """
        path_safe = _PATH_KEEP_QUERY if keep_query else PATH_VALUE_SAFE
        segment_safe = _SEGMENT_KEEP_QUERY if keep_query else SEGMENT_SAFE
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = values.get(part.name)
            if part.context == "path":
                if value is None:
                    if out and out[-1].endswith("/"):
                        out[-1] = out[-1][:-1]
                    continue
                encoded = encode_component(value, path_safe if "/" in value else segment_safe)
                # Never let a value start a new authority: "/" + "/evil" would read as //evil.
                if out and out[-1].endswith("/"):
                    encoded = encoded.lstrip("/")
                out.append(encoded.replace("\\", "%5C"))
            elif part.context == "query":
                out.append(encode_component(value or "", QUERY_VALUE_SAFE))
            else:
                out.append(encode_component(value or "", QUERY_VALUE_SAFE | frozenset("&=+")))
        rendered = "".join(out)
        if self.origin is None and not rendered.startswith("/"):
            rendered = "/" + rendered
        if self.origin is None and (rendered.startswith("//") or rendered.startswith("/\\")):
            rendered = "/" + rendered.lstrip("/\\")
        if self.own_host:  # `https://{host}/...`: the request's host, checked by the caller
            assert self.origin is not None
            return self.origin[: -len(OWN_HOST)] + (host or "") + rendered
        return (self.origin or "") + rendered


#: A target's host that is the request's own (`https://{host}/...`, `Target.own_host`).
OWN_HOST = "{host}"

_PATH_KEEP_QUERY = PATH_VALUE_SAFE | frozenset("?")
_SEGMENT_KEEP_QUERY = SEGMENT_SAFE | frozenset("?")


@lru_cache(maxsize=_CACHE_SIZE)
def parse_target(text: str) -> Target:
    """Parse a `to` template; raises PatternError naming what is wrong."""
    if not isinstance(text, str) or not text:
        raise PatternError("must be an absolute http(s) URI or an absolute path such as /api/v2/users")
    if _TARGET_FORBIDDEN.search(text):
        raise PatternError("must not contain spaces, CR, LF or other control characters (percent-encode them)")
    origin: str | None = None
    rest = text
    if text.startswith("//") or text.startswith("/\\"):
        raise PatternError("a scheme-relative target ('//host/...') is not allowed: write https://host/...")
    if not text.startswith("/"):
        m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", text)
        if not m:
            raise PatternError("must be an absolute http(s) URI or an absolute path such as /api/v2/users")
        scheme = m.group(1).lower()
        if scheme not in ("http", "https"):
            raise PatternError(f"scheme '{scheme}' is not allowed: use http or https")
        after = text[m.end() :]
        if not after.startswith("//"):
            raise PatternError("an absolute URI needs a host: https://host/path")
        auth_end = len(after)
        for sep in "/?#":
            pos = after.find(sep, 2)
            if pos != -1:
                auth_end = min(auth_end, pos)
        authority = after[2:auth_end]
        own_host = authority == OWN_HOST
        if own_host:
            authority = "own-host.invalid"  # checked as a host name below; `{host}` again after
        if "{" in authority or "}" in authority:
            raise PatternError("placeholders may stand in the path, query or fragment, never in the host "
                               "(except `{host}` as the whole host: the request's own host, as in "
                               "https://{host}/path)")
        if "@" in authority:
            raise PatternError("user information ('user@host') is not allowed in a target")
        try:
            parsed = urlsplit(scheme + "://" + authority)
            hostname = parsed.hostname
            _ = parsed.port  # raises ValueError on a bad port
        except ValueError:
            raise PatternError(f"'{authority}' is not a valid host[:port]") from None
        if not hostname or not (valid_host(hostname) or authority.startswith("[")):
            raise PatternError(f"'{authority}' is not a valid host[:port]")
        origin = scheme + "://" + (OWN_HOST if own_host else authority.lower())
        rest = after[auth_end:]
    parts: list[str | Hole] = []
    context = "path"
    pos = 0
    for m in re.finditer(r"\{([^{}]*)\}|[?#{}]", rest):
        chunk = rest[pos : m.start()]
        parts.append(chunk)
        token = m.group(0)  # noqa: S105 - a URI delimiter, not a secret
        if token == "?":  # noqa: S105
            if context == "path":
                context = "query"
            parts.append(token)
        elif token == "#":  # noqa: S105
            context = "fragment"
            parts.append(token)
        elif token in "{}":  # noqa: S105
            raise PatternError("unbalanced '{' or '}': placeholders are written {name}")
        else:
            name = m.group(1)
            if not re.fullmatch(NAME, name):
                raise PatternError(f"'{{{name}}}' is not a placeholder name: use letters, digits and _")
            parts.append(Hole(name, context))
        pos = m.end()
    parts.append(rest[pos:])
    merged: list[str | Hole] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + part
        elif part != "":
            merged.append(part)
    target = Target(text=text, origin=origin, parts=tuple(merged), own_host=origin is not None and
                    origin.endswith("://" + OWN_HOST))
    # Literal text must already be valid URI text (no raw spaces etc. — checked above) and
    # percent-escapes must be well formed.
    for part in target.parts:
        if isinstance(part, str) and re.search(r"%(?![0-9A-Fa-f]{2})", part):
            raise PatternError("invalid percent-encoding: '%' must be followed by two hex digits")
    return target


def split_target(location: str) -> tuple[str | None, str, str, str]:
    """Split a rendered target into (origin, path, query, fragment) — for chain and loop checks."""
    parsed = urlsplit(location)
    origin = f"{parsed.scheme}://{parsed.netloc}" if parsed.scheme else None
    return origin, parsed.path or "/", parsed.query, parsed.fragment
