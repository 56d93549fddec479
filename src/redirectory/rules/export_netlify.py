"""The rule table as a Netlify `_redirects` file: `rules export --format netlify`. Pure (no I/O).

One line a rule, `FROM TO STATUS!`, in redirectory's precedence order (see `matcher`): Netlify
applies the first line that matches, reading from the top, so the first match is the gateway's
choice. What the lines hold, after Netlify's redirect documentation:
- `{name}` → `:name` (one segment), a trailing `{name:path}` → `*`, and in the target `{name}` →
  `:name`, the tail → `:splat`;
- `from: //host/...` → `https://host/...` (a domain-level redirect; Netlify serves its sites over
  HTTPS);
- the status, with `!` (force): the redirect applies even where a file exists at the path, as the
  gateway always redirects.
It reads back with `rules import --format netlify` to rules that answer the same (`load_netlify`).

Left out, each named by a warning (`export_skip`), because Netlify's documented redirects cannot
say it: rules with `methods` (a Netlify redirect answers every method), `from_regex`, a time
window, `query: drop` (Netlify passes the request's query on to the target of every redirect),
`case_insensitive` (Netlify paths are case-sensitive), a rule that differs from one of higher
precedence only by a trailing slash (Netlify's CDN normalises the trailing slash before the
redirect rules run, so `/x` and `/x/` match alike and the first line answers both; a rule alone
also answers its path's other spelling, a difference the file's header states), a status other
than 301 (the documentation
names 301 and 302 as redirects and 307 as unsupported; 303 and 308 are not documented; 302 is
not a redirectory status), a placeholder in the target's query or fragment (no documented
percent-encoding of its value), and `from`/`to` text Netlify would read as a placeholder (a
literal segment starting with `:` or equal to `*`, `:name` text, a placeholder named `splat`, a
placeholder followed by a letter, digit or `_`). Disabled rules are left out silently.
Cache-Control (`cache`) is not carried: `_redirects` lines set no headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from redirectory.rules.export_skip import (
    FIX_RULE,
    Skip,
    check_lifecycle,
    check_query_conditions,
    check_redirects,
    check_window,
    compiled_or_skip,
    gateway_only,
    rule_name,
    skip_problem,
)
from redirectory.rules.model import Problem, Rule, RuleSet
from redirectory.rules.patterns import Hole, Param

#: The file name Netlify reads.
NETLIFY_FILE = "_redirects"

_GATEWAY_ONLY = gateway_only("netlify")
#: The statuses Netlify's documentation gives for redirects that redirectory may use.
NETLIFY_STATUSES = (301,)
_NAME_CHAR = re.compile(r"[A-Za-z0-9_]")
_COLON_NAME = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")

_HEADER = (
    "# redirectory rules for Netlify: save as _redirects in the site's publish directory.",
    "# Generated: edit the rules, not this file. Netlify applies the first line that matches.",
    "#",
    "# Where Netlify behaves differently from the redirectory gateway:",
    "# - no Cache-Control on redirects (the rules' cache is not carried);",
    "# - the request's query is passed on as Netlify does; redirectory drops request parameters that",
    "#   the target sets itself and empty ones (&&), and re-encodes the query;",
    "# - Netlify matches a path with and without its trailing slash alike: a line for /x also answers",
    "#   /x/ (and a line for /x/ answers /x); of two rules that differ only by it, the first in",
    "#   redirectory's precedence is exported and the other one named;",
    "# - rules with methods, from_regex, a time window, query: drop, case_insensitive or a status other",
    "#   than 301 are not exported: the export names each one, with why and what would make it",
    "#   exportable.",
)


@dataclass(frozen=True)
class NetlifyExport:
    """`text` is the `_redirects` file; `skipped` names each rule left out."""

    text: str
    skipped: list[Problem] = field(default_factory=list)


def netlify(table: RuleSet | Iterable[Rule]) -> NetlifyExport:
    """The `_redirects` lines for the rules Netlify can express (see the module docstring)."""
    rules = table.rules if isinstance(table, RuleSet) else table
    skipped: list[Problem] = []
    ranked: list[tuple[tuple[int, ...], int, str, Rule, tuple[object, ...]]] = []
    total = 0
    for index, rule in enumerate(rules):
        total += 1
        if not rule.enabled:
            continue
        try:
            rank, line, shape = _line(rule)
        except Skip as skip:
            skipped.append(skip_problem(rule, skip, "netlify"))
            continue
        ranked.append((rank, index, line, rule, shape))
    ranked.sort(key=lambda item: (item[0], item[1]))
    lines: list[str] = []
    first: dict[tuple[object, ...], Rule] = {}  # what Netlify matches alike -> the rule it answers with
    for _, _, line, rule, shape in ranked:
        earlier = first.setdefault(shape, rule)
        if earlier is not rule:
            if (earlier.source or "").endswith("/") == (rule.source or "").endswith("/"):
                twin = Skip("from", "netlify.shadowed", f"it never answers: {rule_name(earlier)} comes first "
                            "and matches the same paths (in the gateway too)", "drop it")
            else:
                twin = Skip("from", "netlify.slash",
                            f"Netlify matches a path with and without its trailing slash alike, and the line of "
                            f"{rule_name(earlier)} comes first and answers the same paths",
                            "drop one of the two rules; or " + _GATEWAY_ONLY)
            skipped.append(skip_problem(rule, twin, "netlify"))
            continue
        lines.append(line)
    skipped.sort(key=lambda p: p.index if p.index is not None else -1)
    out = [*_HEADER, f"# {len(lines)} of {total} rules exported.", "", *lines]
    return NetlifyExport("\n".join(out) + "\n", skipped)


def _line(rule: Rule) -> tuple[tuple[int, ...], str, tuple[object, ...]]:
    """The rule's precedence rank, its `_redirects` line and what Netlify matches alike (the host and
    the segments, placeholders and a trailing slash aside); raises Skip for what Netlify cannot say."""
    if rule.methods is not None:
        raise Skip("methods", "netlify.methods", "a Netlify redirect answers every method",
                   "drop `methods` if every method may be redirected; or " + _GATEWAY_ONLY)
    if rule.is_regex:
        raise Skip("from_regex", "netlify.regex", "Netlify matches paths with :placeholders and * only, "
                   "not regular expressions", "write it as a `from` pattern; or " + _GATEWAY_ONLY)
    check_window(rule, "netlify")
    check_query_conditions(rule, "netlify")
    check_redirects(rule, "netlify")
    check_lifecycle(rule, "netlify")
    compiled = compiled_or_skip(rule, "netlify")
    if rule.status not in NETLIFY_STATUSES:
        why = ("Netlify documents 307 as unsupported" if rule.status == 307
               else f"Netlify documents 301 and 302 as its redirects, not {rule.status}")
        raise Skip("status", "netlify.status", why, "use 301 where clients may switch to GET; or " + _GATEWAY_ONLY)
    if rule.query == "drop":
        raise Skip("query", "netlify.query", "Netlify passes the request's query on to the target",
                   "use query: keep; or " + _GATEWAY_ONLY)
    pattern = compiled.pattern
    assert pattern is not None
    if rule.case_insensitive and any(isinstance(s, str) and s.lower() != s.upper() for s in pattern.segments):
        raise Skip("case_insensitive", "netlify.case", "Netlify paths are case-sensitive",
                   "add a rule for each spelling clients use; or " + _GATEWAY_ONLY)
    names = set(pattern.names)
    if "splat" in names:
        raise Skip("from", "netlify.placeholder", "{splat} would read as Netlify's :splat (the * value)",
                   "rename the placeholder; or " + _GATEWAY_ONLY)
    parts: list[str] = []
    for seg in pattern.segments:
        if isinstance(seg, Param):
            parts.append(":" + seg.name)
        elif seg.startswith(":") or seg == "*":
            raise Skip("from", "netlify.from", f"the segment '{seg}' would read as a Netlify placeholder",
                       _GATEWAY_ONLY)
        else:
            parts.append(seg)
    if pattern.tail:
        parts.append("*")
    source = "/" + "/".join(parts)
    if pattern.host:
        source = "https://" + pattern.host + source
    target = _target(compiled.target.origin, compiled.target.parts, pattern.tail, names)
    shape = (pattern.host, tuple(None if isinstance(s, Param) else s for s in pattern.segments if s != ""),
             pattern.tail is not None)
    return compiled.rank, f"{source} {target} {rule.status}!", shape


def _target(origin: str | None, parts: tuple[str | Hole, ...], tail: str | None, names: set[str]) -> str:
    out = [origin or ""]
    placeholders = names | {"splat"}
    for i, part in enumerate(parts):
        if isinstance(part, Hole):
            if part.context != "path":
                raise Skip("to", "netlify.placeholder", f"{{{part.name}}} stands in the target's {part.context}, "
                           "where redirectory percent-encodes its value and Netlify documents no such encoding",
                           "move it into the target's path; or " + _GATEWAY_ONLY)
            if part.name not in names:
                raise Skip("to", "netlify.placeholder", f"{{{part.name}}} is not defined by `from`", FIX_RULE)
            after = parts[i + 1] if i + 1 < len(parts) else ""
            if isinstance(after, Hole) or (after and _NAME_CHAR.match(after)):
                raise Skip("to", "netlify.placeholder", f"{{{part.name}}} is followed by a placeholder, letter, digit "
                           "or _, which Netlify would read as part of its name",
                           "put other text after it (such as / or -); or " + _GATEWAY_ONLY)
            out.append(":splat" if part.name == tail else ":" + part.name)
            continue
        clash = next((m.group() for m in _COLON_NAME.finditer(part) if m.group(1) in placeholders), None)
        if clash:
            raise Skip("to", "netlify.placeholder", f"the text '{clash}' would read as a Netlify placeholder",
                       _GATEWAY_ONLY)
        out.append(part)
    return "".join(out)
