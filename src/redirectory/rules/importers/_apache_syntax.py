"""Apache configuration as Apache reads it: logical lines (continuations joined), arguments,
`Define`d variables, `RewriteMap` declarations, and `Include`/`IncludeOptional` read in place
through the caller's `IncludeReader` (the importer does no I/O). Pure."""

from __future__ import annotations

import re

from redirectory.rules.importers._common import _Builder
from redirectory.rules.importers._nginx_syntax import IncludeReader


def _apache_lines(text: str) -> list[tuple[int, str]]:
    """Logical lines (continuations joined), with the first physical line's number."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        out.append((start, " ".join(pending).strip()))
        pending = []
    if pending:
        out.append((start, " ".join(pending).strip()))
    return out


_DEFINED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.:-]*)\}")


def _defined(b: _Builder, line: int, content: str, defines: dict[str, str]) -> str:
    """`content` with each `${NAME}` of a `Define` replaced, as Apache does when it reads its
    configuration. An undefined one (not a RewriteMap call `${map:key}`) stays as written, as in
    Apache, which logs a warning; the `{` and `}` of what stays are sent percent-encoded (a rule's
    target holds placeholders in braces), which names the same URL."""
    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in defines:
            return defines[name]
        if ":" in name:  # `${map:key}`: a RewriteMap, read by the RewriteRule that calls it
            return m.group(0)
        undefined.append(name)
        return f"$%7B{name}%7D"

    undefined: list[str] = []
    if "${" not in content:
        return content
    result = _DEFINED.sub(value, content)
    if undefined and not content.lstrip().startswith("#"):
        b.warn(line, "import.variable", f"`{content}`: ${{{undefined[0]}}} is not defined (`Define "
               f"{undefined[0]} VALUE`) before this line: Apache keeps it as written (and logs a warning); so "
               "does the import (a build-time placeholder? import the file it is built into)", name="to")
    return result


def _apache_args(text: str) -> list[str]:
    args: list[str] = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|(\S+)', text):
        if m.group(1) is not None:
            args.append(re.sub(r"\\(.)", r"\1", m.group(1)))
        else:
            args.append(m.group(2))
    return args


class IncludeMissing(str):
    """What an `IncludeReader` returns, instead of another message, when the name an `Include` gives
    matches nothing (no such file or directory, a wildcard matching none): Apache's `IncludeOptional`
    is then silently nothing. Any other message (a file that cannot be read) is a warning for both."""


#: Apache follows includes 128 deep (a cycle ends there, and Apache refuses to start); an import stops here
_MAX_INCLUDE_DEPTH = 16


_INCLUDES = ("include", "includeoptional")


def _included_lines(b: _Builder, lines: list[tuple[int, str]], read: IncludeReader) -> list[tuple[int, str]]:
    """The configuration as Apache reads it: each `Include` followed by the lines of the files it
    names (a directory: every file in it), the `Define`s of the lines before it applied to its name.
    Lines are numbered across the files (`b.lines`: line N is `b.lines[N - 1]` of its own file)."""
    table: list[tuple[str, int]] = []
    out: list[tuple[int, str]] = []
    defines: dict[str, str] = {}
    quiet = _Builder(b.source)  # the main pass warns about undefined names, once

    def walk(lines: list[tuple[int, str]], source: str, chain: tuple[str, ...]) -> None:
        for own, content in lines:
            table.append((source, own))
            at = len(table)
            out.append((at, content))
            if not content or content.startswith("#"):
                continue
            args = _apache_args(_defined(quiet, own, content, defines))
            directive = args[0].lower() if args else ""
            if directive == "define" and len(args) > 1:
                defines[args[1]] = args[2] if len(args) > 2 else ""
            elif directive == "undefine" and len(args) > 1:
                defines.pop(args[1], None)
            elif directive in _INCLUDES:
                include(at, f"`{content}`", directive == "includeoptional", args[1:], source, chain)

    def include(at: int, what: str, optional: bool, names: list[str], source: str, chain: tuple[str, ...]) -> None:
        if len(names) != 1:
            b.warn(at, "import.include", f"{what}: `Include` takes one file name (Apache refuses the line): "
                   "ignored", name="file")
            return
        found = read(names[0], source)
        if isinstance(found, str):
            if not (optional and isinstance(found, IncludeMissing)):
                b.warn(at, "import.include", f"{what}: {found}: Apache refuses to start on it; what it names "
                       "was not imported (the rest is)", name="file")
            return
        for name, text in found:
            if name in chain or len(chain) >= _MAX_INCLUDE_DEPTH:
                why = (f"{name} includes itself (through {' -> '.join(chain[chain.index(name):])})" if name in chain
                       else f"includes nested more than {_MAX_INCLUDE_DEPTH} deep")
                b.warn(at, "import.include", f"{what}: {why}: not read again (Apache would refuse to start)",
                       name="file")
                continue
            walk(_apache_lines(text[1:] if text.startswith("\ufeff") else text), name, (*chain, name))

    walk(lines, b.source, (b.source,))
    b.lines = table
    return out


def _rewrite_maps(lines: list[tuple[int, str]]) -> dict[str, str]:
    """`RewriteMap NAME TYPE:SOURCE` anywhere in the file (Apache reads them before any request, so
    a map may be defined after the rules that use it): the map's type and source by its name."""
    maps: dict[str, str] = {}
    for _, content in lines:
        args = _apache_args(content)
        if len(args) >= 3 and args[0].lower() == "rewritemap":
            maps[args[1]] = args[2].lower()
    return maps
