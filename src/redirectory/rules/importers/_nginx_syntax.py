"""nginx configuration syntax: tokens, directives and blocks, and the `map` blocks of a file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from redirectory.rules.importers._common import _Builder


# -- syntax --------------------------------------------------------------------------------------
@dataclass
class _Directive:
    name: str
    args: list[str]
    line: int
    block: list[_Directive] | None = None


_NGINX_REDIRECT_CODES = frozenset({300, 301, 302, 303, 304, 305, 307, 308, 410})


def _nginx_tokens(text: str, b: _Builder) -> list[tuple[str, int, bool]]:
    """(token, line, quoted) for an nginx configuration; `{`, `}` and `;` are their own tokens."""
    tokens: list[tuple[str, int, bool]] = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r\f\v":
            i += 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end == -1 else end
        elif c in "{};":
            tokens.append((c, line, False))
            i += 1
        elif c in "\"'":
            start_line = line
            j = i + 1
            buf: list[str] = []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    nxt = text[j + 1]
                    buf.append(nxt if nxt in "\"'\\" else "\\" + nxt)
                    line += nxt == "\n"
                    j += 2
                    continue
                line += text[j] == "\n"
                buf.append(text[j])
                j += 1
            if j >= n:
                b.warn(start_line, "import.syntax", "a quote opened here is never closed: the rest of the file "
                       "is ignored", name="file")
                return tokens
            tokens.append(("".join(buf), start_line, True))
            i = j + 1
        else:
            j = i
            buf = []
            while j < n and text[j] not in " \t\r\n\f\v;{}\"'":
                if text[j] == "\\" and j + 1 < n:
                    buf.append(text[j : j + 2])
                    j += 2
                    continue
                if text[j] == "$" and j + 1 < n and text[j + 1] == "{":  # ${var}
                    close = text.find("}", j)
                    if close != -1 and re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", text[j : close + 1]):
                        buf.append(text[j : close + 1])
                        j = close + 1
                        continue
                buf.append(text[j])
                j += 1
            tokens.append(("".join(buf), line, False))
            i = j
    return tokens


def _nginx_parse(text: str, b: _Builder) -> list[_Directive]:
    tokens = _nginx_tokens(text, b)
    root: list[_Directive] = []
    stack: list[tuple[list[_Directive], int]] = [(root, 0)]
    current: list[str] = []
    start = 0
    for tok, line, quoted in tokens:
        if not quoted and tok == ";":
            if current:
                stack[-1][0].append(_Directive(current[0], current[1:], start))
            current = []
        elif not quoted and tok == "{":
            block: list[_Directive] = []
            if current:
                stack[-1][0].append(_Directive(current[0], current[1:], start, block))
            else:
                stack[-1][0].append(_Directive("", [], line, block))
            stack.append((block, line))
            current = []
        elif not quoted and tok == "}":
            if current:
                b.warn(start, "import.syntax", f"`{current[0]}` is not ended by `;`: ignored", name="file")
                current = []
            if len(stack) == 1:
                b.warn(line, "import.syntax", "`}` closes no block: ignored", name="file")
            else:
                stack.pop()
        else:
            if not current:
                start = line
            current.append(tok)
    if current:
        b.warn(start, "import.syntax", f"`{current[0]}` is not ended by `;`: ignored", name="file")
    for _block, opened in stack[1:]:
        b.warn(opened, "import.syntax", "the block opened here is never closed with `}`", name="file")
    return root


@dataclass
class _NginxMap:
    source: str
    entries: list[tuple[str, str, int]]
    line: int
    default: str | None = None


@dataclass
class _NginxContext:
    host: str | None = None
    location: tuple[str, str] | None = None  # (modifier, path or regex); modifier "" for prefix
    #: the server's own redirecting `rewrite`s (nginx runs them before any location)
    server_rewrites: list[re.Pattern[str]] = field(default_factory=list)
    has_regex: bool = False  # the server has regex locations or its own rewrites
    hosted: bool = False  # the file has a server of one name (whose rules come first)



def _collect_maps(block: list[_Directive], maps: dict[str, _NginxMap]) -> None:
    for d in block:
        if d.name == "map" and d.block is not None and len(d.args) == 2:
            entries = []
            default = None
            for e in d.block:
                if e.name == "default" and len(e.args) == 1:
                    default = e.args[0]
                if e.name in ("default", "hostnames", "volatile", "include") or e.block is not None:
                    continue
                if len(e.args) == 1:
                    entries.append((e.name, e.args[0], e.line))
            maps[d.args[1]] = _NginxMap(d.args[0], entries, d.line, default)
        elif d.block is not None:
            _collect_maps(d.block, maps)
