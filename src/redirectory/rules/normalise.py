"""Path normalisation: the one canonical form that rules and requests are compared in.

Steps, in order (RFC 3986 §6.2.2 syntax-based normalisation, plus two choices of ours):
1. every `%XX` escape must be valid (two hex digits), otherwise the path is refused;
2. escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, every other
   escape is kept with upper-case hex (`%2f` -> `%2F`: an encoded slash stays a byte of its
   segment, never a separator);
3. characters that may not appear raw in a path (space, `"`, `<`, `>`, `\\`, `^`, `` ` ``,
   `{`, `|`, `}`, controls and every non-ASCII character) are percent-encoded as UTF-8;
4. dot-segments (`.` and `..`) are removed (RFC 3986 §5.2.4);
5. runs of slashes collapse into one (ours: `//a///b` is `/a/b`);
6. the path starts with `/`.
Case is kept; a rule with `case_insensitive: true` compares lower-cased forms.
The result is idempotent: normalise(normalise(p)) == normalise(p).
"""

from __future__ import annotations

import re

UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
SUB_DELIMS = frozenset("!$&'()*+,;=")
#: Characters allowed raw in a normalised path (besides `%XX` escapes).
PATH_SAFE = UNRESERVED | SUB_DELIMS | frozenset(":@/")

_HEX = "0123456789ABCDEFabcdef"
_FAST = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*")
_MULTI_SLASH = re.compile(r"/{2,}")


class InvalidPath(ValueError):
    """The path cannot be normalised (invalid percent-encoding)."""


def normalise_path(path: str) -> str:
    """Return the canonical form of a request path (see the module docstring)."""
    # Fast path: nothing to decode, encode or remove (the common case on the hot path).
    if _FAST.fullmatch(path) and "//" not in path and "/." not in path:
        return path
    return _remove_dots(_collapse(_canonical_escapes(path)))


def is_normalised(path: str) -> bool:
    return normalise_path(path) == path


def _canonical_escapes(path: str) -> str:
    out: list[str] = []
    i = 0
    n = len(path)
    while i < n:
        ch = path[i]
        if ch == "%":
            h1 = path[i + 1 : i + 2]
            h2 = path[i + 2 : i + 3]
            if not h1 or not h2 or h1 not in _HEX or h2 not in _HEX:
                raise InvalidPath(
                    f"invalid percent-encoding at offset {i}: '%' must be followed by two hex digits"
                )
            decoded = chr(int(h1 + h2, 16))
            if decoded in UNRESERVED:
                out.append(decoded)
            else:
                out.append("%" + (h1 + h2).upper())
            i += 3
            continue
        if ch in PATH_SAFE:
            out.append(ch)
        else:
            out.append(_encode_char(ch))
        i += 1
    return "".join(out)


def _encode_char(ch: str) -> str:
    # Lone surrogates (from surrogateescape-decoded raw bytes) go back to their byte.
    data = ch.encode("utf-8", "surrogateescape")
    return "".join(f"%{b:02X}" for b in data)


def _collapse(path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    return _MULTI_SLASH.sub("/", path)


def _remove_dots(path: str) -> str:
    """RFC 3986 §5.2.4 on an absolute path (already collapsed)."""
    if "." not in path:
        return path
    segments = path.split("/")[1:]
    out: list[str] = []
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
            continue
        if seg == "..":
            if out:
                out.pop()
            if last:
                out.append("")
            continue
        out.append(seg)
    result = "/" + "/".join(out)
    return _MULTI_SLASH.sub("/", result)


def encode_component(value: str, safe: frozenset[str]) -> str:
    """Percent-encode `value` so that only `safe` characters and valid `%XX` escapes stay raw.

    Valid escapes are kept (no double encoding); a stray `%` becomes `%25`.
    """
    out: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if ch == "%" and i + 2 < n and value[i + 1] in _HEX and value[i + 2] in _HEX:
            out.append("%" + value[i + 1 : i + 3].upper())
            i += 3
            continue
        if ch in safe:
            out.append(ch)
        else:
            out.append(_encode_char(ch))
        i += 1
    return "".join(out)


#: Safe sets for placeholder values, by where the placeholder stands in the target.
SEGMENT_SAFE = UNRESERVED | SUB_DELIMS | frozenset(":@")  # `/` encoded: one segment
PATH_VALUE_SAFE = SEGMENT_SAFE | frozenset("/")  # `{name:path}` keeps its slashes
QUERY_VALUE_SAFE = UNRESERVED | frozenset("!$'()*,;:@/?")  # `&`, `=`, `+`, `#` encoded
QUERY_SAFE = UNRESERVED | SUB_DELIMS | frozenset(":@/?")  # a whole query string
