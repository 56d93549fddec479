"""Why a rule is left out of a server export (nginx, Apache, Netlify): one mechanism for all. Pure.

An exporter raises `Skip(field, code, message, fix)` for a rule its server cannot express as the
gateway answers it; `skip_problem` turns it into the warning the CLI prints: the rule (from,
methods, status, to, and its id or #position), the server, why, and what would make it exportable.
The codes are `FORMAT.REASON` (`nginx.window`, `apache.placeholder`, `netlify.methods`...).
The checks every exporter shares (a time window, an invalid rule) are here too.
"""

from __future__ import annotations

from collections.abc import Callable

from redirectory.rules.matcher import CompiledRule, compile_rule
from redirectory.rules.model import Problem, Rule
from redirectory.rules.patterns import Hole, Param, PathPattern, PatternError, parse_target
from redirectory.semantics import NOT_REDIRECTED, RAMP

#: The server's name in the warnings, by export format.
SERVERS = {"nginx": "nginx", "apache": "Apache", "netlify": "Netlify"}

#: What makes an invalid rule exportable.
FIX_RULE = "fix the rule (`redirectory rules validate` says how)"


def gateway_only(fmt: str) -> str:
    """What makes any rule work when the server cannot answer it."""
    return f"let the redirectory gateway answer these paths ({SERVERS.get(fmt, fmt)} can proxy them to it)"


class Skip(Exception):
    """Why a rule cannot be exported (`message`) and what would make it exportable (`fix`)."""

    def __init__(self, fld: str, code: str, message: str, fix: str):
        super().__init__(message)
        self.field = fld
        self.code = code
        self.message = message
        self.fix = fix


def rule_name(rule: Rule) -> str:
    """`FROM [METHODS] -> STATUS TO (rule ID)`, or `(rule #N)` for a rule without an id."""
    methods = f" [{', '.join(rule.methods)}]" if rule.methods else ""
    which = f"rule {rule.id}" if rule.id else f"rule #{rule.position + 1}"
    return f"{rule.from_text}{methods} -> {rule.status} {rule.to or '(not redirected)'} ({which})"


def skip_problem(rule: Rule, skip: Skip, fmt: str = "nginx") -> Problem:
    """The warning for a rule left out of the `fmt` export: which rule, why, and the fix."""
    return Problem(
        "warning",
        skip.field,
        f"{rule_name(rule)} is not exported to {SERVERS.get(fmt, fmt)}: {skip.message}; {skip.fix}",
        line=rule.line_of(skip.field),
        index=rule.position,
        code=skip.code,
    )


def check_window(rule: Rule, fmt: str) -> None:
    """A rule with a time window or phases cannot be exported: no server has the gateway's clock."""
    if rule.cache == RAMP:
        raise Skip(
            "cache", f"{fmt}.cache_ramp",
            f"{SERVERS.get(fmt, fmt)} has no clock for its cache ramp (a max-age that grows day by day)",
            "give `cache` a number of seconds; or " + gateway_only(fmt),
        )
    if rule.phases is not None:
        raise Skip(
            "phases", f"{fmt}.phases",
            f"{SERVERS.get(fmt, fmt)} has no clock for its phases (a status that changes on a date)",
            "export it again when its last phase has started, without phases; or " + gateway_only(fmt),
        )
    if rule.starts is not None or rule.ends is not None:
        raise Skip(
            "starts" if rule.starts is not None else "ends",
            f"{fmt}.window",
            f"{SERVERS.get(fmt, fmt)} has no clock for its time window (starts/ends)",
            "apply it without starts/ends when the window opens (and remove it when it closes), then "
            "export again; or " + gateway_only(fmt),
        )


def check_redirects(rule: Rule, fmt: str) -> None:
    """A rule that redirects nothing (`status: 404`) is not exported: the exports are redirects, and
    the paths it keeps from lower-precedence rules would be redirected by them."""
    if rule.status == NOT_REDIRECTED:
        raise Skip(
            "status", f"{fmt}.not_redirected",
            f"it redirects nothing (status {NOT_REDIRECTED}), which the {SERVERS.get(fmt, fmt)} export does not "
            "write: the redirects of lower precedence answer its paths there",
            gateway_only(fmt),
        )


def check_lifecycle(rule: Rule, fmt: str) -> None:
    """A rule that sends Deprecation, Sunset or Link headers is not exported: the exports send the
    redirect alone."""
    if rule.has_lifecycle:
        which = next(n for n in ("deprecation", "sunset", "links") if getattr(rule, n) is not None)
        raise Skip(
            which, f"{fmt}.lifecycle",
            f"the {SERVERS.get(fmt, fmt)} export sends the redirect without its Deprecation, Sunset and Link "
            "headers",
            "drop deprecation, sunset and links from the rule if the redirect alone will do; or " + gateway_only(fmt),
        )


def check_query_conditions(rule: Rule, fmt: str) -> None:
    """A rule with query conditions (`query_match`, `query_exact`), a regex on the path and query
    (`regex_query`) or a scheme condition (`scheme`) is not exported: the exports match paths only,
    and a rule for the same path without conditions would take its requests."""
    if rule.query not in ("keep", "drop"):
        raise Skip(
            "query", f"{fmt}.query_policy",
            f"the {SERVERS.get(fmt, fmt)} export passes the request's query on whole or not at all, not a "
            "query policy (strip, pass)",
            gateway_only(fmt),
        )
    if "://{host}" in rule.to:
        raise Skip(
            "to", f"{fmt}.own_host",
            f"the {SERVERS.get(fmt, fmt)} export writes a target's host as written, not the request's own "
            "({host})",
            gateway_only(fmt),
        )
    if rule.scheme is not None:
        raise Skip(
            "scheme", f"{fmt}.scheme",
            f"the {SERVERS.get(fmt, fmt)} export answers every scheme, not {rule.scheme} requests only (scheme)",
            gateway_only(fmt),
        )
    if rule.regex_query:
        raise Skip(
            "regex_query", f"{fmt}.regex_query",
            f"the {SERVERS.get(fmt, fmt)} export matches regexes against the path only, not the path and "
            "query (regex_query)",
            gateway_only(fmt),
        )
    if rule.has_query_conditions:
        raise Skip(
            "query_match" if rule.query_match is not None else "query_exact",
            f"{fmt}.query_match",
            f"the {SERVERS.get(fmt, fmt)} export matches paths only, not query parameters "
            "(query_match, query_exact)",
            gateway_only(fmt),
        )


def compiled_or_skip(rule: Rule, fmt: str) -> CompiledRule:
    """The rule compiled (without the parsers' caches); Skip naming the field for an invalid rule."""
    try:
        return compile_rule(rule, memoised=False)
    except Exception as exc:  # noqa: BLE001 - PatternError or re2.error: an invalid rule
        try:
            parse_target(rule.to)
            fld = "from_regex" if rule.is_regex else "from"
        except PatternError:
            fld = "to"
        raise Skip(fld, f"{fmt}.invalid", f"the rule is not valid: {exc}", FIX_RULE) from None


def group_reference(
    part: Hole, refs: dict[str, tuple[int, int | None]], out: list[str], previous_literal: bool,
    slash_groups: bool, origin: str | None, fmt: str,
) -> str:
    """`$N`, the capture group a server (nginx, Apache: `$1`..`$9`) writes for the placeholder
    `part` of a target being written into `out`; `refs` maps a placeholder to its group and, for a
    path tail, the group that also holds the `/` before it (with `slash_groups`, that one is used
    and the `/` is taken off `out[-1]`, so an empty tail drops it as the gateway does). Skip when
    the server cannot write it as the gateway renders it."""
    server = SERVERS.get(fmt, fmt)
    if part.context != "path":
        raise Skip("to", f"{fmt}.placeholder",
                   f"{{{part.name}}} stands in the target's {part.context}, where redirectory percent-encodes "
                   f"its value and {server} cannot", "move it into the target's path; or " + gateway_only(fmt))
    ref = refs.get(part.name)
    if ref is None:
        raise Skip("to", f"{fmt}.placeholder", f"{{{part.name}}} is not defined by `from`", FIX_RULE)
    number, with_slash = ref
    if with_slash is not None and not previous_literal and out:
        raise Skip("to", f"{fmt}.placeholder",
                   f"the path tail {{{part.name}}} follows another placeholder, and {server} cannot drop the "
                   "'/' between them when the tail is empty",
                   "put literal text between them in `to`; or " + gateway_only(fmt))
    if (slash_groups and with_slash is not None and previous_literal and out[-1].endswith("/")
            and (origin is not None or "".join(out) != "/")):
        out[-1] = out[-1][:-1]
        number = with_slash
    if number > 9:
        raise Skip("to", f"{fmt}.groups", f"{{{part.name}}} is capture group {number}, and {server} has only $1..$9",
                   "make groups before it non-capturing, (?:...), or use fewer placeholders in `from`; or "
                   + gateway_only(fmt))
    return f"${number}"


def pattern_regex(
    pattern: PathPattern, start: str, escape: Callable[[str], str]
) -> tuple[str, dict[str, tuple[int, int | None]]]:
    """A `from` pattern as an anchored PCRE after `start` (literals through `escape`), and each
    placeholder's group: (value, None), or for the path tail (value, "/" + value)."""
    parts = ["^", start]
    refs: dict[str, tuple[int, int | None]] = {}
    group = 0
    for seg in pattern.segments:
        parts.append("/")
        if isinstance(seg, Param):
            group += 1
            refs[seg.name] = (group, None)
            parts.append("([^/]+)")
        else:
            parts.append(escape(seg))
    if pattern.tail:
        refs[pattern.tail] = (group + 2, group + 1)  # (value, "/" + value)
        parts.append("(/(.*))?")
    parts.append("$")
    return "".join(parts), refs
