"""Apache: `Redirect*`, `RedirectMatch` and `RewriteRule ... [R]` as rules (docs/migrating.md).

Apache's order is reproduced: mod_rewrite runs before mod_alias (in server and per-directory
context alike), RewriteRules apply in file order, and the first `Redirect`/`RedirectMatch` that
matches wins. A `Redirect` stays a path pattern unless a regex rule Apache tries first might
match under its path; then it becomes a regex rule, and regex rules go by `priority` (RewriteRules
above mod_alias when they overlap), then file order.

Where Apache's behaviour needs saying (each checked against a real apache2):
- `RewriteMap NAME int:tolower` (defined anywhere in the file: Apache reads maps before any request)
  with `${NAME:$N}` in a substitution: a rule cannot lower-case, so the rule is imported for the
  paths without a capital letter A-Z only (for those Apache sends the same redirect) with a warning;
  it needs a pattern anchored at both ends with no capital, class of capitals, inline flag or [NC]
  of its own, else it is skipped with a warning. Other maps, and maps not defined in the file (one
  defined in a file that `Include`s it), are skipped with a warning naming the map.
- `RewriteCond %{REQUEST_FILENAME}|%{REQUEST_URI} REGEX` (server context) that every match of the
  rule's pattern satisfies (literal parts joined by `.*`, in order: `^/a.*html$`, `.*minutes-.*`,
  or the same regex text first, `^/c++-sig`) is dropped; one narrower than the pattern (`^/peps/+$`
  before `^/peps`) becomes the rule's regex when the substitution uses no `$N`.
- PCRE's possessive `c++` (RE2 has none) is read as `c+` where that changes no match (a literal
  character followed by another one or the end).
- `Include` and `IncludeOptional` (with `read`, see `load_apache_included`) are read in place, as
  Apache reads one configuration: the `Define`s and `RewriteMap`s before them apply to the lines
  they include, and those included define for the lines after. A missing `Include` (Apache refuses
  to start) is a warning naming it and the rest imports; a missing `IncludeOptional` is nothing, as
  in Apache. Without `read`, an `Include` is a warning naming the file (import it too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from redirectory.rules.importers._common import _KEPT, _Builder, _guarded, _path, _regex_rule, _unknown_variables
from redirectory.rules.importers._nginx_syntax import IncludeReader
from redirectory.rules.model import Problem, RuleSet
from redirectory.rules.patterns import valid_host

# -- Apache --------------------------------------------------------------------------------------
_APACHE_STATUS = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}
_APACHE_SKIP_CONTAINERS = ("location", "locationmatch", "directory", "directorymatch", "files", "filesmatch",
                           "if", "elseif", "else", "proxy")


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


@dataclass
class _Deferred(_Builder):
    """A builder that holds the rules `_regex_rule` adds (warnings go to the real builder's list),
    so they are added once Apache's order between the modules is known."""

    held: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def add(self, line: int, data: dict[str, Any], order: tuple[int, ...] | None = None) -> None:
        self.held.append((line, data))


@dataclass
class _Redirect:
    """A `Redirect` whose form (path pattern or regex) waits for the rules Apache tries before it."""

    line: int
    what: str
    path: str  # as a `from` path (percent-encoded)
    url: str
    status: int
    host: str | None


@dataclass
class _Regex:
    """A regex rule held until the priorities are known; `prefix` is the literal text every path it
    matches starts with (None: any path)."""

    line: int
    data: dict[str, Any]
    prefix: str | None
    case_insensitive: bool


class IncludeMissing(str):
    """What an `IncludeReader` returns, instead of another message, when the name an `Include` gives
    matches nothing (no such file or directory, a wildcard matching none): Apache's `IncludeOptional`
    is then silently nothing. Any other message (a file that cannot be read) is a warning for both."""


#: Apache follows includes 128 deep (a cycle ends there, and Apache refuses to start); an import stops here
_MAX_INCLUDE_DEPTH = 16
_INCLUDES = ("include", "includeoptional")


def load_apache_included(
    text: str, source: str, read: IncludeReader, origins: list[str] | None = None
) -> tuple[RuleSet, list[Problem]]:
    """`load_apache` that reads the files `Include`d (`read`: see `IncludeReader`; a name that
    matches nothing is an `IncludeMissing`), in place as Apache does. Problems in an included file
    name that file and its line; `origins` receives the file of each rule."""
    return _guarded(lambda b, t: _load_apache(b, t, read), text, source, origins)


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


def _load_apache(b: _Builder, text: str, read: IncludeReader | None = None) -> None:
    containers: list[tuple[str, int, list[str]]] = []  # (name, line, server names)
    conds: list[tuple[int, list[str]]] = []
    rewrite_base = "/"
    per_directory = b.source.replace("\\", "/").rsplit("/", 1)[-1].lower().endswith("htaccess")
    rewrites: list[_Regex] = []
    rewrite_patterns: list[tuple[int, dict[str, Any]]] = []  # host-specific RewriteRules (patterns)
    aliases: list[_Redirect | _Regex] = []  # mod_alias, in file order
    stoppers: list[tuple[str, str | None, int]] = []  # `Redirect gone /x` and co.: Apache answers, no rule
    lines = _apache_lines(text)
    # Apache refuses `Include` in .htaccess (500 for every request under it): not read there
    included = read is not None and not per_directory
    if included and read is not None and any(c.lower().startswith(_INCLUDES) for _, c in lines):
        lines = _included_lines(b, lines, read)
    maps = _rewrite_maps(lines)
    defines: dict[str, str] = {}  # `Define NAME VALUE`: `${NAME}` on the lines after it
    for line, content in lines:
        if not content or content.startswith("#"):
            continue
        opening = re.fullmatch(r"<\s*([A-Za-z]+)\b([^>]*)>", content)
        if opening:
            containers.append((opening.group(1).lower(), line, []))
            continue
        closing = re.fullmatch(r"</\s*([A-Za-z]+)\s*>", content)
        if closing:
            name = closing.group(1).lower()
            if containers and containers[-1][0] == name:
                containers.pop()
            else:
                b.warn(line, "import.syntax", f"</{closing.group(1)}> closes no open <{closing.group(1)}>: ignored",
                       name="file")
            conds.clear()
            continue
        content = _defined(b, line, content, defines)
        args = _apache_args(content)
        if not args:
            continue
        directive = args[0].lower()
        args = args[1:]
        if directive == "define" and args:
            defines[args[0]] = args[1] if len(args) > 1 else ""
            continue
        if directive == "undefine" and args:
            defines.pop(args[0], None)
            continue
        if directive in ("servername", "serveralias"):
            for c in reversed(containers):
                if c[0] == "virtualhost":
                    c[2].extend(a if directive == "servername" else "*" + a for a in args)
                    if directive == "serveralias":
                        c[2].append("*")
                    break
            continue
        if directive == "rewritecond":
            conds.append((line, args))
            continue
        if directive == "rewritebase":
            if len(args) == 1 and args[0].startswith("/"):
                rewrite_base = args[0] if args[0].endswith("/") else args[0] + "/"
            continue
        if directive in _INCLUDES and included:
            continue  # read in place (`_included_lines`)
        if directive in _INCLUDES and args:
            b.warn(line, "import.include", f"`{content}`: the included file is not read: import it too (in "
                   "Apache its rules come here, before the lines after this one)", name="file")
            continue
        if directive not in ("redirect", "redirectpermanent", "redirecttemp", "redirectmatch", "rewriterule"):
            continue
        rule_conds = list(conds)
        conds.clear()
        inner = [c for c in containers if c[0] in _APACHE_SKIP_CONTAINERS]
        what = f"`{content}`"
        if inner:
            b.warn(line, "import.container", f"{what} is inside <{inner[-1][0]}> (from line {inner[-1][1]}): "
                   "its condition cannot be expressed as a rule: skipped")
            continue
        host = None
        for c in reversed(containers):
            if c[0] == "virtualhost":
                if len(c[2]) == 1 and valid_host(c[2][0].lower()):
                    host = c[2][0].lower()
                break
        held = _Deferred(b.source, problems=b.problems)
        if directive == "rewriterule":
            _apache_rewrite(held, line, what, args, host, rule_conds, rewrite_base, per_directory, maps)
            for at, data in held.held:
                if "from" in data:
                    rewrite_patterns.append((at, data))
                else:
                    rewrites.append(_Regex(at, data, _literal_prefix(data["from_regex"]),
                                           bool(data.get("case_insensitive"))))
        elif directive == "redirectmatch":
            _apache_redirect_match(held, line, what, args, host)
            aliases.extend(_Regex(at, data, _literal_prefix(data["from_regex"]), False) for at, data in held.held)
        else:
            default = {"redirect": 302, "redirectpermanent": 301, "redirecttemp": 302}[directive]
            found = _apache_redirect(b, line, what, args, host, default, directive == "redirect")
            if isinstance(found, _Redirect):
                aliases.append(found)
            elif found is not None:
                stoppers.append((found, host, line))
    _emit(b, rewrites, rewrite_patterns, aliases, stoppers)


def _emit(b: _Builder, rewrites: list[_Regex], rewrite_patterns: list[tuple[int, dict[str, Any]]],
          aliases: list[_Redirect | _Regex], stoppers: list[tuple[str, str | None, int]]) -> None:
    """Add the rules so that the one Apache uses wins: mod_rewrite before mod_alias, each in file order."""
    earlier: list[tuple[str | None, bool]] = [(r.prefix, r.case_insensitive) for r in rewrites]
    alias_regexes: list[_Regex] = []
    redirects: list[_Redirect] = []  # those already placed, for the first-match check
    for item in aliases:
        if isinstance(item, _Regex):
            earlier.append((item.prefix, False))
            alias_regexes.append(item)
            continue
        shadow = next((r for r in redirects if r.host == item.host and _covers(r.path, item.path)
                       and r.path != item.path), None)
        stop = next((s for s in stoppers if s[1] == item.host and s[2] < item.line and _covers(s[0], item.path)),
                    None)
        if shadow is not None or stop is not None:
            other = shadow.line if shadow is not None else stop[2] if stop is not None else 0
            b.warn(item.line, "import.shadowed", f"{item.what}: never used: the `Redirect` at line {other} "
                   "matches every path this one does and Apache uses the first that matches: skipped")
            continue
        redirects.append(item)
        if any(_may_overlap(prefix, ci, item.path) for prefix, ci in earlier):
            if item.host:
                b.warn(item.line, "import.host", f"{item.what}: became a regex rule (a regex rule Apache tries "
                       f"first may match under {item.path}), which answers every host, not only {item.host}: "
                       "check it", name="from_regex")
            query = "drop" if "?" in item.url else None
            regex = "^" + re.escape(item.path)
            if not item.path.endswith("/"):
                alias_regexes.append(_Regex(item.line, {"from_regex": regex + "$", "to": item.url,
                                                        "status": item.status, "query": query}, item.path, False))
                regex += "/"
                url = item.url + "/"
            else:  # Apache pastes the rest right after URL; a placeholder may not touch the host
                url = item.url + "/" if re.fullmatch(r"(?i)[a-z][a-z0-9+.-]*://[^/?#]*", item.url) else item.url
            alias_regexes.append(_Regex(item.line, {"from_regex": regex + "(?P<rest>.*)$", "to": url + "{rest}",
                                                    "status": item.status, "query": query}, item.path, False))
            earlier.append((item.path, False))
            continue
        _redirect_patterns(b, item)
    overlap = any(_compatible(a.prefix, r.prefix, a.case_insensitive or r.case_insensitive)
                  for a in alias_regexes for r in rewrites)
    for r in rewrites:
        b.add(r.line, {**r.data, "priority": 1} if overlap else r.data)
    for at, data in rewrite_patterns:
        b.add(at, data)
    for a in alias_regexes:
        b.add(a.line, a.data)


def _redirect_patterns(b: _Builder, item: _Redirect) -> None:
    """`Redirect /p URL` as Apache matches it: `/p` and `/p/...` (whole segments), the rest of the path
    appended to URL as it stands (after a query too); `/p/` matches `/p/` and below, not `/p`."""
    prefix = f"//{item.host}" if item.host else ""
    query = "drop" if "?" in item.url else None  # mod_alias adds the request's query only to a URL without one
    if item.path.endswith("/"):
        b.add(item.line, {"from": prefix + item.path, "to": item.url, "status": item.status, "query": query})
        # Apache pastes the rest right after URL; with no path there, a placeholder may not touch the host
        url = item.url + "/" if re.fullmatch(r"(?i)[a-z][a-z0-9+.-]*://[^/?#]*", item.url) else item.url
        b.add(item.line, {"from": f"{prefix}{item.path}{{seg}}/{{rest:path}}", "to": url + "{seg}/{rest}",
                          "status": item.status, "query": query})
        return
    b.add(item.line, {"from": prefix + item.path, "to": item.url, "status": item.status, "query": query})
    b.add(item.line, {"from": f"{prefix}{item.path}/{{rest:path}}", "to": item.url + "/{rest}",
                      "status": item.status, "query": query})


def _covers(first: str, later: str) -> bool:
    """Whether every path `Redirect {later}` matches is matched by `Redirect {first}`."""
    if first.endswith("/"):
        return later.startswith(first)
    return later == first or later.startswith(first + "/")


def _may_overlap(prefix: str | None, case_insensitive: bool, path: str) -> bool:
    """Whether a regex whose matches all start with `prefix` (None: unknown) may match a path that
    `Redirect {path}` matches."""
    if prefix is None:
        return True
    if case_insensitive:
        prefix, path = prefix.lower(), path.lower()
    if path.startswith(prefix):
        return True
    if prefix.startswith(path):
        return path.endswith("/") or len(prefix) == len(path) or prefix[len(path)] == "/"
    return False


def _compatible(first: str | None, second: str | None, case_insensitive: bool) -> bool:
    """Whether two regexes whose matches start with these literal prefixes may match one path."""
    if first is None or second is None:
        return True
    if case_insensitive:
        first, second = first.lower(), second.lower()
    return first.startswith(second) or second.startswith(first)


_LITERAL = re.compile(r"\\([^A-Za-z0-9])|([A-Za-z0-9/_~%=,;:@&!'-])")


def _literal_prefix(regex: str) -> str | None:
    """The literal text every match of an anchored regex starts with; None when not anchored."""
    if not regex.startswith("^") or "|" in regex:
        return None
    out: list[str] = []
    i = 1
    while i < len(regex):
        m = _LITERAL.match(regex, i)
        if m is None:
            break
        if regex[m.end() : m.end() + 1] in ("?", "*", "{"):
            break
        out.append(m.group(1) or m.group(2))
        i = m.end()
    return "".join(out)


def _apache_status(args: list[str], default: int, allow: bool) -> tuple[int | None, list[str]]:
    if allow and args:
        word = args[0].lower()
        if word in _APACHE_STATUS:
            return _APACHE_STATUS[word], args[1:]
        if word.isdigit() and len(word) == 3:
            return int(word), args[1:]
    return default, args


def _apache_redirect(
    b: _Builder, line: int, what: str, args: list[str], host: str | None, default: int, status_arg: bool
) -> _Redirect | str | None:
    """The `Redirect` to place, or the path Apache answers without redirecting (`gone`), or None."""
    code, rest = _apache_status(args, default, status_arg)
    assert code is not None
    if code == 410 or (len(rest) == 1 and code not in _KEPT and code != 302):
        b.status(code, line, what)
        return _path(rest[0]) if len(rest) == 1 and rest[0].startswith("/") else None
    if len(rest) != 2:
        b.warn(line, "import.unsupported", f"{what}: expected [status] /path URL: skipped")
        return None
    path, url = rest
    if not path.startswith("/"):
        b.warn(line, "import.unsupported", f"{what}: {path!r} is not a path starting with /: skipped", name="from")
        return None
    status = b.status(code, line, what)
    if status is None:
        return _path(path)
    # the URL is literal: `$` is not a variable here
    return _Redirect(line, what, _path(path), url, status, host)


def _apache_redirect_match(b: _Builder, line: int, what: str, args: list[str], host: str | None) -> None:
    code, rest = _apache_status(args, 302, True)
    assert code is not None
    if code == 410 or (len(rest) == 1 and code not in _KEPT and code != 302):
        b.status(code, line, what)
        return
    if len(rest) != 2:
        b.warn(line, "import.unsupported", f"{what}: expected [status] REGEX URL: skipped")
        return
    regex, url = rest
    status = b.status(code, line, what)
    if status is None:
        return
    if _unknown_variables(b, line, what, url, allow_groups=True):
        return
    # mod_alias adds the request's query only to a URL that has none of its own
    _regex_rule(b, line, what, regex, url, status, query="drop" if "?" in url else None, host=host)


_HOST_COND = re.compile(r"\^((?:[A-Za-z0-9-]|\\\.)+)\$")
_METHOD_COND = re.compile(r"\^\(?([A-Z]+(?:\|[A-Z]+)*)\)?\$")


def _conditions(
    b: _Builder, line: int, what: str, conds: list[tuple[int, list[str]]], pattern: str, per_directory: bool,
    subst: str = "",
) -> tuple[str | None, list[str] | None, str] | None:
    """The host and methods the RewriteConds before a rule restrict it to, and the rule's regex (a
    path condition narrower than the pattern takes its place when the substitution uses no `$N`);
    None to skip the rule."""
    host: str | None = None
    methods: list[str] | None = None
    for at, args in conds:
        flags = [f.strip().lower() for f in args[2].strip("[]").split(",")] if len(args) >= 3 else []
        if len(args) < 2 or any(f in ("or", "ornext") for f in flags):
            break
        test, cond = args[0], args[1]
        variable = test.upper()
        if variable == "%{HTTP_HOST}" and (m := _HOST_COND.fullmatch(cond)) and host is None:
            host = m.group(1).replace("\\.", ".").lower()
            if valid_host(host):
                continue
        elif variable == "%{REQUEST_METHOD}" and (m := _METHOD_COND.fullmatch(cond)) and methods is None:
            methods = m.group(1).split("|")
            continue
        elif variable == "%{REQUEST_FILENAME}" and cond in ("!-f", "!-d", "!-l", "!-s"):
            b.warn(at, "import.conditional", f"{what}: `RewriteCond {test} {cond}` (no such file or directory) "
                   "cannot be checked by a rule: imported as if it held, check that no file is served at "
                   "the paths it matches", name="from_regex")
            continue
        elif (variable == "%{REQUEST_URI}" or (variable == "%{REQUEST_FILENAME}" and not per_directory)) \
                and not flags and _implied(cond, pattern):
            continue  # the rule's own pattern already says it (a request's path, before any mapping)
        elif (variable == "%{REQUEST_URI}" or (variable == "%{REQUEST_FILENAME}" and not per_directory)) \
                and not flags and not re.search(r"\$\{?[0-9]", subst) and _implied(pattern, cond) \
                and not cond.startswith("!"):
            pattern = cond  # every path the condition matches, the pattern matches: the condition decides
            continue
        b.warn(line, "import.conditional", f"{what} follows `RewriteCond {' '.join(args)}` (line {at}): "
               "the condition cannot be expressed as a rule: skipped")
        return None
    else:
        return host, methods, pattern
    b.warn(line, "import.conditional", f"{what} follows RewriteCond lines joined with [OR] (or a RewriteCond "
           "without a pattern): conditions cannot be expressed as a rule: skipped")
    return None


def _implied(cond: str, pattern: str) -> bool:
    """Whether every path the rule's `pattern` matches also matches the condition's regex: the same
    regex, `^`/`.*`, or a condition made of literal parts joined by `.*` (`^/a`, `^/a.*html$`,
    `.*minutes-.*`) that every match of the pattern holds in that order (`_skeleton`)."""
    if cond in (pattern, ".*", "^", ""):
        return True
    cut = _shared_start(cond, pattern)
    if cut > 1 and cond.startswith("^"):  # the same regex text first (`^/c++-sig`): compare what follows
        return _implied("^" + cond[cut:], "^" + pattern[cut:])
    anchored_start = cond.startswith("^") and not cond.startswith("^.*")
    anchored_end = cond.endswith("$") and not cond.endswith(".*$") and not cond.endswith("\\$")
    pieces = []
    for text in cond.removeprefix("^").removesuffix("$" if anchored_end else "").split(".*"):
        if re.search(r"[][()*+?{|]|\\[A-Za-z0-9]", text):
            return False  # a class, group, quantifier or escape class: a requirement the skeleton drops
        found = _skeleton(text) if text else (False, [], False)
        if found is None or len(found[1]) > 1 or (text and not found[1]):
            return False
        if text:
            pieces.append(found[1][0])
    skeleton = _skeleton(pattern)
    if skeleton is None or not pieces:
        return skeleton is not None and not anchored_start and not anchored_end
    starts, runs, ends = skeleton
    if not runs:
        return False
    last = (len(runs) - 1, len(runs[-1]))  # where the pieces must end by (exclusive)
    if anchored_end:
        tail = pieces.pop()
        if not ends or not _fits(tail, runs[-1], len(runs[-1]) - len(tail)):
            return False
        last = (len(runs) - 1, len(runs[-1]) - len(tail))
    run, at = 0, 0
    for n, piece in enumerate(pieces):
        if n == 0 and anchored_start:
            if not starts or not _fits(piece, runs[0], 0):
                return False
            at = len(piece)
            continue
        while True:  # the first place in a run where the piece fits, from (run, at) on
            if run > last[0]:
                return False
            limit = last[1] if run == last[0] else len(runs[run])
            spot = next((i for i in range(at, limit - len(piece) + 1) if _fits(piece, runs[run], i)), None)
            if spot is not None:
                at = spot + len(piece)
                break
            run, at = run + 1, 0
    if anchored_start and not pieces:  # the only piece was the tail: it must also be the start
        return starts and ends and len(runs) == 1 and last == (0, 0)
    return (run, at) <= last


def _shared_start(first: str, second: str) -> int:
    """The length of the longest start the two regexes share as a whole regex: balanced, no
    alternation, and followed by no quantifier in either (so each is that start, then the rest)."""
    best = 0
    depth = 0
    i = 0
    while i < min(len(first), len(second)) and first[i] == second[i]:
        c = first[i]
        if c == "|":
            break
        if depth == 0 and all(i >= len(r) or r[i] not in "*+?{" for r in (first, second)):
            best = i
        if c == "\\":
            if first[i + 1 : i + 2] != second[i + 1 : i + 2]:
                break
            i += 2
            continue
        if c == "[":
            end = _class_end(first, i)
            if end is None or first[i:end] != second[i:end]:
                break
            i = end
            continue
        depth += {"(": 1, ")": -1}.get(c, 0)
        i += 1
    else:
        if depth == 0 and all(i >= len(r) or r[i] not in "*+?{" for r in (first, second)):
            best = i
    return best


def _fits(piece: list[str | None], run: list[str | None], at: int) -> bool:
    """Whether the condition's atoms `piece` (None: `.`) match every text `run` has at `at` on."""
    if at < 0 or at + len(piece) > len(run):
        return False
    return all(want is None or want == got for want, got in zip(piece, run[at:], strict=False))


def _skeleton(regex: str) -> tuple[bool, list[list[str | None]], bool] | None:
    """What every match of `regex` holds: runs of atoms (a character, or None for an unrepeated `.`)
    in order, and whether the first run starts the match (`^`) and the last ends it (`$`). Anything
    else (a class, an escape such as `\\d`, a repeated or optional part) separates runs. None for
    an alternation or a regex this reading does not cover."""
    starts = regex.startswith("^")
    body = regex[1:] if starts else regex
    ends = body.endswith("$") and not body.endswith("\\$")
    body = body[:-1] if ends else body
    flat: list[str | None | bool] = []  # atoms, False for a gap
    opened: list[int] = []
    i = 0
    while i < len(body):
        c = body[i]
        size = 1
        atom: str | None | bool
        if c == "\\":
            escaped = body[i + 1 : i + 2]
            atom = escaped if escaped and not escaped.isalnum() else False
            size = 2
        elif c == ".":
            atom = None
        elif c == "[":
            end = _class_end(body, i)
            if end is None:
                return None
            atom, size = False, end - i
        elif c == "(":
            if body.startswith("(?", i) and not body.startswith("(?:", i):
                return None
            opened.append(len(flat))
            i += 3 if body.startswith("(?:", i) else 1
            continue
        elif c == ")":
            if not opened:
                return None
            begin = opened.pop()
            i += 1
            if i < len(body) and body[i] in "*?{+":
                flat[begin:] = [*flat[begin:], False] if body[i] == "+" else [False]
                i = _after_quantifier(body, i)
            continue
        elif c in "|^$*+?{":
            return None
        else:
            atom = c
        i += size
        if i < len(body) and body[i] in "*?{+":
            flat.extend([atom, False] if body[i] == "+" else [False])
            i = _after_quantifier(body, i)
        else:
            flat.append(atom)
    if opened:
        return None
    runs: list[list[str | None]] = [[]]
    for item in flat:
        if item is False:
            runs.append([])
        else:
            runs[-1].append(item)  # type: ignore[arg-type]
    starts = starts and bool(runs[0])
    ends = ends and bool(runs[-1])
    return starts, [r for r in runs if r], ends


def _after_quantifier(regex: str, i: int) -> int:
    """The index after the quantifier at `i` (`*`, `+`, `?`, `{m,n}`) and a lazy or possessive mark."""
    if regex[i] == "{":
        close = regex.find("}", i)
        i = close + 1 if close != -1 else len(regex)
    else:
        i += 1
    return i + 1 if i < len(regex) and regex[i] in "?+" else i


def _as_pattern(regex: str, target: str) -> tuple[str, str] | None:
    """A regex (over the full path) as a path pattern with the same matches, and the target with `$1`
    as its placeholder: only the forms a host condition usually guards."""
    if regex in ("^/(.*)$", "^/(.*)", "^/?(.*)$", "^/?(.*)", "^(.*)$", "^(.*)"):
        lead = "/" if regex.startswith("^(") else ""  # `^(.*)` holds the leading slash
        return "/{rest:path}", re.sub(r"\$\{?1\}?(?![0-9])", lead + "{rest}", target)
    if re.search(r"\$\{?[0-9]", target):
        return None
    if regex in ("", "^", "^/", ".*", "^.*", "^.*$", "^/.*", "^/.*$"):
        return "/{rest:path}", target
    if regex in ("^/$", "^/?$", "^$"):
        return "/", target
    m = re.fullmatch(r"\^((?:/(?:[A-Za-z0-9_~-]|\\\.)+)+/?)\$", regex)
    if m:
        return _path(m.group(1).replace("\\.", ".")), target
    return None


def _rewrite_maps(lines: list[tuple[int, str]]) -> dict[str, str]:
    """`RewriteMap NAME TYPE:SOURCE` anywhere in the file (Apache reads them before any request, so
    a map may be defined after the rules that use it): the map's type and source by its name."""
    maps: dict[str, str] = {}
    for _, content in lines:
        args = _apache_args(content)
        if len(args) >= 3 and args[0].lower() == "rewritemap":
            maps[args[1]] = args[2].lower()
    return maps


_MAP_CALL = re.compile(r"\$\{([A-Za-z0-9_]+):\$(?:([0-9])|\{([0-9])\})\}")


def _lowered(subst: str, maps: dict[str, str]) -> tuple[str, set[int]]:
    """The substitution with each `${map:$N}` of an `int:tolower` map as `$N`, and those N."""
    groups: set[int] = set()

    def call(m: re.Match[str]) -> str:
        if maps.get(m.group(1)) != "int:tolower":
            return m.group(0)
        number = m.group(2) or m.group(3)
        groups.add(int(number))
        return "$" + number

    return _MAP_CALL.sub(call, subst), groups


def _class_end(regex: str, start: int) -> int | None:
    """The index just after the character class that opens at `start`."""
    i = start + 1
    if regex.startswith("^", i):
        i += 1
    if regex.startswith("]", i):
        i += 1
    while i < len(regex):
        if regex[i] == "\\":
            i += 2
            continue
        if regex.startswith("[:", i) and (close := regex.find(":]", i + 2)) != -1:
            i = close + 2
            continue
        if regex[i] == "]":
            return i + 1
        i += 1
    return None


_NO_CAPITAL_ESCAPES = {"d": r"\d", "s": r"\s", "W": r"\W", "w": "[0-9a-z_]", "S": r"[^\sA-Z]", "D": "[^0-9A-Z]"}


def _without_capitals(text: str) -> str | None:
    """A regex that matches what `text` matches except strings holding a capital letter (A-Z); None
    when that cannot be written simply (a capital in the regex itself, a class of capitals...)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            escaped = text[i + 1 : i + 2]
            if escaped.isalpha():
                if escaped not in _NO_CAPITAL_ESCAPES:
                    return None
                out.append(_NO_CAPITAL_ESCAPES[escaped])
            else:
                out.append(text[i : i + 2])
            i += 2
            continue
        if c == "[":
            end = _class_end(text, i)
            if end is None:
                return None
            body = text[i + 1 : end - 1]
            if body.startswith("^"):
                rest = "\\]" + body[2:] if body.startswith("^]") else body[1:]
                out.append("[^A-Z" + rest + "]")
            elif re.search(r"[A-Z\\:]|[!-@]-[\[-~]", body):
                return None  # capitals, escapes, [:classes:] or a range across the capitals
            else:
                out.append(text[i:end])
            i = end
            continue
        if c == ".":
            out.append(r"[^A-Z\n]")
        elif "A" <= c <= "Z":
            return None
        elif c == "(" and text.startswith("(?", i) and not text.startswith(("(?P<", "(?<", "(?'", "(?:"), i):
            return None  # inline flags such as (?i) would fold the capitals back in
        else:
            out.append(c)
        i += 1
    return "".join(out)


_POSSESSIVE = re.compile(r"(?<!\\)([A-Za-z0-9/_~-])([+*?])\+(?=([A-Za-z0-9/_~-]|\$?$))")


def _possessive_as_greedy(pattern: str) -> str:
    """PCRE's possessive `c++` (RE2 has none) as `c+` where that changes nothing: a single literal
    character repeated, followed by a different literal character or the end (`^/c++-sig`): greedy
    matching never gives any back there either."""
    return _POSSESSIVE.sub(lambda m: m.group(0)[:-1] if m.group(3) != m.group(1) else m.group(0), pattern)


def _capital_free(pattern: str) -> str | None:
    """`pattern` limited to paths without a capital letter A-Z; None if that cannot be written.

    Only for a pattern anchored at both ends (`^...$`) with no capital of its own: it then matches
    exactly the paths the original matches that hold no capital, and on those every way of matching
    is the original's, so each group captures what Apache's would (no capital: lower-casing it
    changes nothing). Limiting only the lower-cased group would not do: `^/a(.*)(.*)$` would then
    capture `""` from `/aXy` where Apache captures `Xy`."""
    if not pattern.startswith("^") or not pattern.endswith("$") or pattern.endswith("\\$"):
        return None
    return _without_capitals(pattern)


def _apache_rewrite(
    b: _Builder, line: int, what: str, args: list[str], host: str | None, conds: list[tuple[int, list[str]]],
    rewrite_base: str, per_directory: bool = False, maps: dict[str, str] | None = None,
) -> None:
    if len(args) < 2:
        b.warn(line, "import.unsupported", f"{what}: expected PATTERN SUBSTITUTION [flags]: skipped")
        return
    pattern, subst = args[0], args[1]
    flags: list[str] = []
    if len(args) >= 3:
        flags = [f.strip() for f in args[2].strip("[]").split(",") if f.strip()]
    code: int | None = None
    ci = False
    query: str | None = None
    qsa = False
    escape = True
    for f in flags:
        name, _, value = f.partition("=")
        lname = name.lower()
        if lname in ("r", "redirect"):
            v = value.lower()
            code = _APACHE_STATUS.get(v) or (int(v) if v.isdigit() and len(v) == 3 else 302 if not v else None)
            if code is None:
                b.warn(line, "import.unsupported", f"{what}: R={value} is not a status: skipped", name="status")
                return
        elif lname in ("nc", "nocase"):
            ci = True
        elif lname in ("qsd", "qsdiscard"):
            query = "drop"
        elif lname in ("qsa", "qsappend"):
            qsa = True
        elif lname in ("ne", "noescape"):
            escape = False
        elif lname in ("g", "gone"):
            code = 410
        elif lname in ("f", "forbidden"):
            return
        elif lname in ("p", "proxy"):
            return  # proxied: not a redirect
    absolute = re.match(r"(?i)https?://([^/?#]*)", subst)
    if code is None:
        if absolute is None or (host is not None and absolute.group(1).lower() == host):
            # an internal rewrite (an absolute URL on the server's own host too), not a redirect
            why = ("stops the rules after it for the paths it matches (`-`: the path stays)" if subst == "-"
                   else "serves another path without redirecting, and the rules after it see that path")
            b.warn(line, "import.internal", f"{what}: an internal rewrite (no R flag) {why}: not a redirect, "
                   "not imported; check the redirects after it with `rules test`", name="from_regex")
            return
        code = 302  # an absolute substitution to another host: Apache redirects with 302
    status = b.status(code, line, what)
    if status is None:
        return
    if subst == "-":
        b.warn(line, "import.unsupported", f"{what}: `-` (no substitution) has no target: skipped", name="to")
        return
    if subst.endswith("?%{QUERY_STRING}"):
        subst = subst[: -len("?%{QUERY_STRING}")]  # the request's query again: as if kept
        qsa = True
    subst, lowered = _lowered(subst, maps or {})
    mapped = re.search(r"\$\{([A-Za-z0-9_]+):", subst)
    if mapped:
        name = mapped.group(1)
        kind = (maps or {}).get(name)
        why = (f"`{kind}`, whose values a rule cannot compute (only `int:tolower` of a `$N` is imported)"
               if kind else "not defined in this file (a map defined in a file that `Include`s this one is not "
               "known here: import that file, whose `Include`s are read, or add its `RewriteMap` line)")
        b.warn(line, "import.variable", f"{what}: the substitution calls RewriteMap `{name}` (`${{map:key}}`), "
               f"which is {why}: skipped", name="to")
        return
    if "%{" in subst or re.search(r"%[0-9]", subst):
        b.warn(line, "import.variable", f"{what}: the substitution uses a server variable or RewriteCond "
               "back-reference, which a rule cannot express: skipped", name="to")
        return
    if _unknown_variables(b, line, what, subst, allow_groups=True):
        return
    if subst.endswith("?"):
        subst, query = subst[:-1], "drop"
    elif "?" in subst and not qsa:
        query = "drop"  # a query of its own replaces the request's, unless [QSA]
    if escape and "#" in subst:
        subst = subst.replace("#", "%23")  # without [NE] Apache escapes it: not a fragment
    if not subst.startswith("/") and absolute is None:
        subst = rewrite_base + subst  # a relative substitution (.htaccess): under RewriteBase
    if pattern.startswith("!"):
        b.warn(line, "import.unsupported", f"{what}: a negated pattern cannot be expressed as a rule: skipped",
               name="from_regex")
        return
    # per-directory (.htaccess) patterns see the path without its leading slash
    if pattern.startswith("^") and not pattern.startswith("^/") and (per_directory or not pattern.startswith("^(")):
        pattern = "^/" + pattern[1:]
    # REQUEST_FILENAME is the request's path only in server context: a file not named .htaccess
    # whose pattern starts with a slash (per-directory patterns never do)
    found = _conditions(b, line, what, conds, pattern, per_directory or not args[0].startswith("^/"), subst)
    if found is None:
        return
    cond_host, methods, pattern = found
    pattern = _possessive_as_greedy(pattern)
    if cond_host is not None:
        host = cond_host
    if lowered:
        restricted = None if ci else _capital_free(pattern)
        calls = ", ".join(f"${n}" for n in sorted(lowered))
        if restricted is None:
            reason = ("with [NC] every letter matches either case" if ci else
                      "the pattern cannot be limited to paths without capitals (it must be anchored, "
                      "`^...$`, with no capital letter, letter class or inline flag of its own)")
            b.warn(line, "import.lowercase", f"{what}: `int:tolower` lower-cases {calls}, which a rule cannot "
                   f"do, and {reason}: skipped", name="to")
            return
        b.warn(line, "import.lowercase", f"{what}: `int:tolower` lower-cases {calls}, which a rule cannot do: "
               "imported for the paths without a capital letter A-Z (Apache sends the same redirect for "
               "those); a path with a capital (a percent-escape such as %C3 included) is not answered by "
               "this rule", name="from_regex")
        pattern = restricted
    if host:
        converted = None if ci else _as_pattern(pattern, subst)
        if converted is not None:
            source, to = converted
            b.add(line, {"from": f"//{host}{source}", "to": to, "status": status, "query": query,
                         "methods": methods})
            return
    before = len(getattr(b, "held", []))
    _regex_rule(b, line, what, pattern, subst, status, case_insensitive=ci, query=query, host=host or None,
                host_required=cond_host is not None)
    held = getattr(b, "held", None)
    if methods and held is not None and len(held) > before:
        held[-1] = (held[-1][0], {**held[-1][1], "methods": methods})
