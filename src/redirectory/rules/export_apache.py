"""The rule table as an Apache (mod_rewrite) snippet: `rules export --format apache`. Pure (no I/O).

The snippet goes inside the `<VirtualHost>` that answers for the old URLs (it needs mod_rewrite
and mod_headers). Each exported rule is one `RewriteRule ... [R=CODE,NE,L]` (two for a target
with a fragment whose rule keeps the query), in redirectory's precedence order (see `matcher`:
host-specific rules, then exact paths, then patterns by literal segments, `{name}` before
`{name:path}`, priority and file order, then `from_regex` rules), so that Apache's first match is
the gateway's choice:
- `methods` → `RewriteCond %{REQUEST_METHOD} ^(?:GET|HEAD)$`: for another method the rule is
  passed over and the next one answers, as in the gateway;
- `from: //host/...` → `RewriteCond %{HTTP_HOST}` (any case, a trailing dot and a port allowed,
  as the gateway normalises the Host header);
- `{name}` → `([^/]+)`, `{name:path}` → `(/(.*))?`, referenced as `$N` in the target;
  `case_insensitive` → `[NC]`;
- query `keep` → Apache's default (the request's query appended; `QSA` when the target has a
  query of its own); `drop` → `QSD` (or the target's own query replaces the request's);
- `cache` (and the default max-age of permanent redirects) → `E=REDIRECTORY_CACHE:max-age=N`,
  sent as Cache-Control by one `Header always set` line.
A guard first skips every rule for a path that holds a character the gateway would percent-encode
in a Location, or an escape of one (`%2F`, `%20`...): Apache matches the decoded path, where the
gateway keeps such escapes; such requests are not redirected by the snippet at all.

Left out, each named by a warning (`export_skip`): rules with a time window, a placeholder in the
target's query or fragment (Apache cannot percent-encode its value), a literal `%XX` in `from`,
more than nine capture groups, or a `from_regex` Apache cannot take as one argument (whitespace,
a leading quote). Disabled rules are left out silently. The other differences are listed in the
snippet's header (`_HEADER`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from redirectory.rules.export_skip import (
    Skip,
    check_lifecycle,
    check_query_conditions,
    check_redirects,
    check_window,
    compiled_or_skip,
    gateway_only,
    group_reference,
    pattern_regex,
    rule_name,
    skip_problem,
)
from redirectory.rules.matcher import CompiledRule
from redirectory.rules.model import Problem, Rule, RuleSet
from redirectory.rules.patterns import Hole, is_host_regex, split_host_regex

#: The file name of an Apache export written to a directory.
APACHE_FILE = "redirectory-apache.conf"

_GATEWAY_ONLY = gateway_only("apache")
_ESCAPE = re.compile("%[0-9A-Fa-f]{2}")
#: Characters of a decoded path that the gateway would not keep as they are in a Location.
_UNSAFE_PATH = r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/]"
#: A request line whose path holds an escape of anything but an unreserved character other than
#: `.` (the gateway decodes only those; Apache decodes every escape before matching).
_KEPT_ESCAPE = r"^\S+\x20[^\x20?]*%(?!(?:3[0-9]|4[1-9A-Fa-f]|5[0-9AaFf]|6[1-9A-Fa-f]|7[0-9AaEe]|2[Dd]))"

_HEADER = (
    "# redirectory rules for Apache: include this file inside the <VirtualHost> that answers for the",
    "# old URLs (it needs mod_rewrite and mod_headers). Generated: edit the rules, not this file.",
    "#",
    "# Where Apache behaves differently from the redirectory gateway:",
    "# - paths holding characters redirectory would percent-encode (space, quotes, non-ASCII...) or",
    "#   an escape of one (%2F, %20...) are not redirected here at all;",
    "# - query: keep appends the request's query to the target's as it is; redirectory also drops",
    "#   request parameters that the target sets itself and empty ones (&&), and re-encodes the query;",
    "# - from_regex rules run on PCRE instead of RE2, and a group whose value starts with '/' right",
    "#   after a '/' of the target keeps both slashes (redirectory sends one);",
    "# - Apache answers redirects with a short HTML body and an absolute Location; redirectory sends",
    "#   no body and the target as written;",
    "# - rules with a time window (and the few Apache cannot express) are not exported: the export",
    "#   names each one, with why and what would make it exportable.",
)


@dataclass(frozen=True)
class ApacheExport:
    """`conf` goes inside a `<VirtualHost>`; `skipped` names each rule left out."""

    conf: str
    skipped: list[Problem] = field(default_factory=list)


def apache(table: RuleSet | Iterable[Rule]) -> ApacheExport:
    """The mod_rewrite snippet for the rules Apache can express (see the module docstring)."""
    rules = table.rules if isinstance(table, RuleSet) else table
    skipped: list[Problem] = []
    ranked: list[tuple[tuple[int, ...], int, list[str]]] = []
    total = 0
    for index, rule in enumerate(rules):
        total += 1
        if not rule.enabled:
            continue
        try:
            rank, lines = _rule_lines(rule)
        except Skip as skip:
            skipped.append(skip_problem(rule, skip, "apache"))
            continue
        ranked.append((rank, index, lines))
    ranked.sort(key=lambda item: (item[0], item[1]))
    out = [*_HEADER, f"# {len(ranked)} of {total} rules exported.", "", "RewriteEngine On"]
    if ranked:
        count = sum(line.startswith("RewriteRule ") for _, _, lines in ranked for line in lines)
        out += [
            'Header always set Cache-Control "%{REDIRECTORY_CACHE}e" env=REDIRECTORY_CACHE',
            "# Paths the gateway keeps percent-encoded (Apache matches them decoded): no rule below.",
            f"RewriteCond %{{THE_REQUEST}} {_KEPT_ESCAPE} [OR]",
            f"RewriteCond %{{REQUEST_URI}} {_UNSAFE_PATH}",
            f"RewriteRule ^ - [S={count}]",
        ]
        for _, _, lines in ranked:
            out.append("")
            out.extend(lines)
    return ApacheExport("\n".join(out) + "\n", skipped)


def _rule_lines(rule: Rule) -> tuple[tuple[int, ...], list[str]]:
    """The rule's precedence rank and its lines; raises Skip for a rule Apache cannot express."""
    check_window(rule, "apache")
    check_query_conditions(rule, "apache")
    check_redirects(rule, "apache")
    check_lifecycle(rule, "apache")
    compiled = compiled_or_skip(rule, "apache")
    conditions: list[str] = []
    if rule.methods is not None:
        methods = "|".join(re.escape(m) for m in rule.methods)
        conditions.append(f"RewriteCond %{{REQUEST_METHOD}} ^(?:{methods})$")
    pattern = compiled.pattern
    if pattern is None:
        regex, refs = _regex(compiled)
        slash_groups = False
        host = split_host_regex(rule.source_regex or "")
        if host is not None:
            conditions.append(f"RewriteCond %{{HTTP_HOST}} ^{re.escape(host[0])}\\.*(?::[^:]*)?$ [NC]")
    else:
        regex, refs = _pattern_regex(compiled)
        slash_groups = True
        if pattern.host:
            conditions.append(f"RewriteCond %{{HTTP_HOST}} ^{re.escape(pattern.host)}\\.*(?::[^:]*)?$ [NC]")
    before, fragment, has_query = _target(compiled, refs, slash_groups)
    flags = [f"R={rule.status}", "NE", "L"]
    if rule.case_insensitive:
        flags.append("NC")
    if compiled.cache_control:
        flags.append(f"E=REDIRECTORY_CACHE:{compiled.cache_control}")
    lines = [f"# {rule_name(rule)}"]
    if fragment and rule.query == "keep":
        # Apache would append the request's query after the fragment: the query is put in front
        # of it here, from the request's QUERY_STRING (the last condition's %1).
        joined = "&" if has_query else "?"
        lines += [*conditions, "RewriteCond %{QUERY_STRING} ^(.+)$",
                  f"RewriteRule {regex} {before}{joined}%1{fragment} [{','.join(flags)}]"]
        flags.append("QSD")
    elif rule.query == "keep":
        if has_query:
            flags.append("QSA")
    elif not has_query:
        flags.append("QSD")
    lines += [*conditions, f"RewriteRule {regex} {before}{fragment} [{','.join(flags)}]"]
    return compiled.rank, lines


def _pattern_regex(compiled: CompiledRule) -> tuple[str, dict[str, tuple[int, int | None]]]:
    """An anchored PCRE for a `from` pattern, and each placeholder's group: (value, "/" + value)."""
    pattern = compiled.pattern
    assert pattern is not None
    for seg in pattern.segments:
        escape = _ESCAPE.search(seg) if isinstance(seg, str) else None
        if escape:
            char = chr(int(escape.group()[1:], 16))
            raise Skip(
                "from", "apache.encoded",
                f"'{seg}' holds the escape {escape.group()}, and Apache matches the decoded path, where "
                f"{escape.group()} and {char!r} cannot be told apart",
                _GATEWAY_ONLY,
            )
    return pattern_regex(pattern, "", _escape_literal)


def _escape_literal(text: str) -> str:
    """A path literal in a PCRE: every character that is not a letter or digit behind a backslash."""
    return "".join(c if c.isalnum() or c == "_" or c == "/" else "\\" + c for c in text)


def _regex(compiled: CompiledRule) -> tuple[str, dict[str, tuple[int, int | None]]]:
    """The `from_regex` as one RewriteRule argument, and its named groups' numbers."""
    regex = compiled.rule.source_regex or ""
    if is_host_regex(regex):  # `^//host...`: its path part (the host is a RewriteCond, `_rule_lines`)
        split = split_host_regex(regex)
        if split is None:
            raise Skip(
                "from_regex", "apache.host-regex",
                "its host is written as a regex, and the export writes a host condition for one literal host",
                "write one rule per host (`^//a\\.example/...`); or " + _GATEWAY_ONLY,
            )
        regex = split[1]
    if re.search(r"\s", regex) or regex[:1] in ("\"", "'"):
        raise Skip(
            "from_regex", "apache.regex",
            "Apache reads a RewriteRule pattern as one word: this one holds whitespace or starts with a quote",
            "write \\s, \\x20 or \\x22 instead; or " + _GATEWAY_ONLY,
        )
    if regex.startswith("!"):  # a leading ! negates a RewriteRule pattern
        regex = "\\" + regex
    refs: dict[str, tuple[int, int | None]] = {
        name: (number, None) for name, number in compiled.regex.groupindex.items()
    }
    return regex, refs


def _target(
    compiled: CompiledRule, refs: dict[str, tuple[int, int | None]], slash_groups: bool
) -> tuple[str, str, bool]:
    """The target as a RewriteRule substitution: (before the fragment, the fragment, has a query)."""
    target = compiled.target
    out: list[str] = []
    fragment: list[str] = []
    previous_literal = False
    if target.origin:
        out.append(_literal(target.origin))
        previous_literal = True
    in_fragment = False
    has_query = False
    for part in target.parts:
        if isinstance(part, Hole):
            out.append(group_reference(part, refs, out, previous_literal, slash_groups, target.origin, "apache"))
            previous_literal = False
            continue
        previous_literal = True
        if in_fragment:
            fragment.append(_literal(part))
            continue
        head, hash_, tail = part.partition("#")
        has_query = has_query or "?" in head
        out.append(_literal(head))
        if hash_:
            in_fragment = True
            fragment.append("#" + _literal(tail))
    return "".join(out), "".join(fragment), has_query


def _literal(text: str) -> str:
    """Literal text in a substitution: `$`, `%` and backslash escaped."""
    return re.sub(r"([\\$%])", r"\\\1", text)
