"""nginx configuration syntax: tokens, directives and blocks, and the `map` blocks of a file."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from redirectory.rules.importers._common import _Builder
from redirectory.rules.model import Problem

#: Reads an `include`: (its argument as written, the file that includes it) -> the files it names,
#: each (name, text), in the order nginx reads them (a glob: sorted; none is fine), or why not.
IncludeReader = Callable[[str, str], "list[tuple[str, str]] | str"]
#: nginx follows includes without limit (a cycle ends when it runs out of files); an import stops here
_MAX_INCLUDE_DEPTH = 16


# -- syntax --------------------------------------------------------------------------------------
@dataclass
class _Directive:
    name: str
    args: list[str]
    line: int
    block: list[_Directive] | None = None
    source: str | None = None  # the file it is in, when `include`s were read


_NGINX_REDIRECT_CODES = frozenset({300, 301, 302, 303, 304, 305, 307, 308, 410})


def rewrite_code(args: list[str]) -> int | None:
    """The status a `rewrite REGEX REPLACEMENT [flag]` redirects with, or None for an internal rewrite.

    `permanent` is 301 and `redirect` 302; a replacement that starts with `http://`, `https://` or
    `$scheme` is a 302 whatever else the flag says (`last` and `break` too: nginx cannot rewrite
    internally to a URL, so it redirects)."""
    if len(args) < 2:
        return None
    flag = args[2] if len(args) > 2 else None
    if flag == "permanent":
        return 301
    if flag == "redirect" or re.match(r"(?i)https?://|\$scheme", args[1]):
        return 302
    return None


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


def _nginx_parse(text: str, b: _Builder, read: IncludeReader | None = None) -> list[_Directive]:
    """The directives of `text`; with `read`, each `include` replaced by the directives of the
    files it names (as nginx reads them: in place, also inside `map` and other blocks). Then lines
    are numbered across the files (`b.lines`) so that file order is line order."""
    tree = _nginx_parse_one(text, b)
    if read is None or not _has_include(tree):
        return tree
    b.early.extend(b.problems)  # the file's own syntax problems are in its own lines already
    b.problems = []
    tree = _expand(tree, b.source, b, read, (b.source,))
    table: list[tuple[str, int]] = []

    def number(block: list[_Directive]) -> None:
        for d in block:
            table.append((d.source or b.source, d.line))
            d.line = len(table)
            if d.block is not None:
                number(d.block)

    number(tree)
    b.lines = table
    return tree


def _has_include(block: list[_Directive]) -> bool:
    return any(d.name == "include" or (d.block is not None and _has_include(d.block)) for d in block)


def _expand(block: list[_Directive], source: str, b: _Builder, read: IncludeReader,
            chain: tuple[str, ...]) -> list[_Directive]:
    out: list[_Directive] = []
    for d in block:
        d.source = source
        if d.block is not None:
            d.block = _expand(d.block, source, b, read, chain)
        if d.name != "include" or d.block is not None:
            out.append(d)
            continue
        if len(d.args) != 1:
            b.early.append(Problem("warning", "file", f"line {d.line}: `include` takes one file name: ignored",
                                   line=d.line, code="import.include", source=source))
            continue
        found = read(d.args[0], source)
        if isinstance(found, str):
            b.early.append(Problem("warning", "file", f"line {d.line}: `include {d.args[0]}`: {found}: what it "
                                   "holds was not imported (the rest is)", line=d.line, code="import.include",
                                   source=source))
            continue
        for name, text in found:
            if name in chain or len(chain) >= _MAX_INCLUDE_DEPTH:
                why = (f"{name} includes itself (through {' -> '.join(chain[chain.index(name):])})" if name in chain
                       else f"includes nested more than {_MAX_INCLUDE_DEPTH} deep")
                b.early.append(Problem("warning", "file", f"line {d.line}: `include {d.args[0]}`: {why}: not read "
                                       "again", line=d.line, code="import.include", source=source))
                continue
            inner = _Builder(name)
            parsed = _nginx_parse_one(text, inner)
            b.early.extend(inner.problems)
            out.extend(_expand(parsed, name, b, read, (*chain, name)))
    return out


def _nginx_parse_one(text: str, b: _Builder) -> list[_Directive]:
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
    #: the server has locations other than `/`, which nginx picks before `location /` for their paths
    has_others: bool = False
    hosted: bool = False  # the file has a server of one name (whose rules come first)
    #: the hosts a server listening for https answers: (True, its line); their plain-http servers are skipped
    tls_hosts: dict[str, tuple[bool, int]] = field(default_factory=dict)
    #: what `$scheme` always is in this server: "http" when none of its `listen`s has TLS, "https"
    #: when every one does; None when both (or outside a server)
    scheme: str | None = None
    #: the server's first name (nginx's `$server_name`), when it is a plain one
    server_name: str | None = None
    #: where nginx puts the server's name among those that answer a request (`_nginx_hosts`): higher first
    host_rank: int = 0
    #: (name, host regex, host rank, line) of every server name of the file: shared by all servers
    named: list[tuple[str, str, int, int]] = field(default_factory=list)



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


#: `if (VARIABLE = VALUE)` / `!=` on a variable that says the request's scheme
_SCHEME_TEST = re.compile(r"\(\s*\$\{?(scheme|https|http_x_forwarded_proto)\}?\s*(!?=)\s*(\S*?)\s*\)")
_OTHER_SCHEME = {"http": "https", "https": "http"}


def if_scheme(args: list[str]) -> str | None:
    """The scheme of the requests an `if` condition is true for, when it tests the scheme alone:
    `($scheme = http)`, `($scheme != "https")`, `($http_x_forwarded_proto = http)` (the scheme a
    load balancer in front saw), `($https != on)` -> "http"; None for any other condition."""
    m = _SCHEME_TEST.fullmatch(" ".join(args).strip())
    if m is None:
        return None
    variable, operator, value = m.group(1), m.group(2), m.group(3).lower()
    if variable == "https":  # "on" over TLS, "" otherwise
        if value not in ("on", ""):
            return None
        tested = "https" if value == "on" else "http"
    elif value in _OTHER_SCHEME:
        tested = value
    else:
        return None
    return tested if operator == "=" else _OTHER_SCHEME[tested]
