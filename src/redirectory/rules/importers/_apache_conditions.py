"""What the `RewriteCond` lines before a RewriteRule restrict it to, as rule fields: one host,
methods, query conditions, a scheme, a narrower path regex (docs/migrating.md, Apache). A
condition a rule cannot hold skips the rule with a warning naming the condition's line.

The scheme idioms (the http-to-https redirect): `%{HTTPS} off` (`!=on`, `!on`, `=off`...),
`%{SERVER_PORT} 80` (`!443`), `%{REQUEST_SCHEME} =http`, `%{HTTP:X-Forwarded-Proto} !https` and
their opposites are read by trying the condition on the value the variable has in an http and in
an https request (`_SCHEME_VALUES`): one that holds for http only is `scheme: http`, for https only
`scheme: https`. Conditions joined with `[OR]` that all say one scheme are that scheme."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from redirectory.rules.importers._apache_regex import _implied
from redirectory.rules.importers._common import _Builder
from redirectory.rules.patterns import valid_host

#: `^www\.example\.com$` (or without `$`: the hosts that start so are that host, less a port), `=www.example.com`
_HOST_COND = re.compile(r"\^((?:[A-Za-z0-9-]|\\\.)+)\$?|=([A-Za-z0-9.-]+)")
_HOST_VARIABLES = ("%{HTTP_HOST}", "%{SERVER_NAME}")  # SERVER_NAME is the request's host (UseCanonicalName Off)
#: A literal query parameter name or value in a condition (`\.` for a dot).
_QUERY_WORD = r"(?:[A-Za-z0-9_~%+-]|\\[.\-_~])+"
#: `^a=1&b=2$` (the whole query, literally), `^$` (none).
_QUERY_WHOLE = re.compile(rf"\^((?:{_QUERY_WORD}={_QUERY_WORD}(?:&{_QUERY_WORD}={_QUERY_WORD})*)?)\$")
#: `(^|&)a=1(&|$)`: one parameter with that value; `(^|&)a=` or `(^|&)a=[^&]*` or `(^|&)a=([^&]*)`: present.
_QUERY_PARAM = re.compile(rf"\((?:\?:)?\^\|&\)({_QUERY_WORD})=(?:({_QUERY_WORD})\((?:\?:)?&\|\$\)|\(?\[\^&\]\*\)?|)")
_METHOD_COND = re.compile(r"\^\(?([A-Z]+(?:\|[A-Z]+)*)\)?\$")

#: variable -> (its values in an http request, in an https request); for a header the first http
#: value is what a proxy sends and "" its absence (a request straight to the server)
_SCHEME_VALUES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "%{HTTPS}": (("off",), ("on",)),
    "%{ENV:HTTPS}": (("",), ("on",)),
    "%{SERVER_PORT}": (("80",), ("443",)),
    "%{REQUEST_SCHEME}": (("http",), ("https",)),
    "%{HTTP:X-FORWARDED-PROTO}": (("http", ""), ("https",)),
    "%{HTTP:X-FORWARDED-SSL}": (("off", ""), ("on",)),
}


@dataclass
class Restriction:
    """What a RewriteRule's conditions restrict it to; `pattern` is the rule's regex (a path condition
    narrower than the pattern takes its place), `nocase` when that condition has `[NC]`."""

    pattern: str
    host: str | None = None
    methods: list[str] | None = None
    query: dict[str, str] = field(default_factory=dict)
    query_exact: bool = False
    scheme: str | None = None
    nocase: bool = False


def _unescaped(word: str) -> str:
    return re.sub(r"\\(.)", r"\1", word)


def _query_condition(cond: str, query: dict[str, str], exact: list[bool]) -> bool:
    """Read a `RewriteCond %{QUERY_STRING}` pattern into query conditions; False when it is not one
    of the idioms: `^$` (no query), `^a=1&b=2$` (exactly those parameters, in any order here),
    `(^|&)a=1(&|$)` (that parameter with that value), `(^|&)a=` / `(^|&)a=([^&]*)` (that parameter)."""
    if m := _QUERY_WHOLE.fullmatch(cond):
        for pair in filter(None, m.group(1).split("&")):
            name, _eq, value = pair.partition("=")
            query[_unescaped(name)] = _unescaped(value)
        exact.append(True)
        return True
    if m := _QUERY_PARAM.fullmatch(cond):
        query[_unescaped(m.group(1))] = _unescaped(m.group(2)) if m.group(2) else "*"
        return True
    return False


def _holds(cond: str, value: str, nocase: bool) -> bool | None:
    """Whether `RewriteCond VALUE COND` holds (`!`, `=text` or a regex); None for another operator."""
    negated = cond.startswith("!")
    body = cond[1:] if negated else cond
    if body.startswith("="):
        expected = "" if body[1:] == '""' else body[1:]
        result = value.lower() == expected.lower() if nocase else value == expected
    elif body[:1] in ("<", ">", "-"):
        return None
    else:
        try:
            result = re.search(body, value, re.IGNORECASE if nocase else 0) is not None
        except re.error:
            return None
    return result != negated


def _scheme_condition(variable: str, cond: str, nocase: bool) -> tuple[str, bool] | None:
    """The scheme a condition on a scheme variable says (and whether it holds for every http value:
    False for `%{HTTP:X-Forwarded-Proto} =http`, which a request without the header fails); None
    when it is not one: it holds for both schemes, or neither, or is not a scheme variable."""
    values = _SCHEME_VALUES.get(variable)
    if values is None:
        return None
    plain, secure = ([_holds(cond, v, nocase) for v in vs] for vs in values)
    if None in plain or None in secure:
        return None
    if plain[0] and not any(secure):
        return "http", all(plain)
    if all(secure) and not any(plain):
        return "https", True
    return None


def _literal_host(args: list[str]) -> str | None:
    r"""The host of `RewriteCond %{HTTP_HOST} ^www\.example\.com$` (or `%{SERVER_NAME} =...`), else None."""
    if len(args) < 2 or args[0].upper() not in _HOST_VARIABLES or (m := _HOST_COND.fullmatch(args[1])) is None:
        return None
    host = (m.group(1) or m.group(2)).replace("\\.", ".").lower()
    return host if valid_host(host) else None


def _condition_host(conds: list[tuple[int, list[str]]]) -> str | None:
    """The host a `RewriteCond %{HTTP_HOST} ^literal$` before the rule names (for a target's
    `%{HTTP_HOST}`); `_conditions` decides whether the rule imports."""
    return next((h for _, args in conds if (h := _literal_host(args)) is not None), None)


def _per_host(conds: list[tuple[int, list[str]]]) -> list[list[tuple[int, list[str]]]]:
    """The conditions once per host where literal host conditions are joined with `[OR]` (certbot's
    `RewriteCond %{SERVER_NAME} =a.example [OR]` / `=www.a.example`): a rule for each host."""
    for group in _groups(conds):
        hosts = [_literal_host(args) for _, args in group]
        if len(group) > 1 and None not in hosts:
            at = conds.index(group[0])
            rest = conds[:at] + conds[at + len(group):]
            return [[*rest, (group[0][0], ["%{HTTP_HOST}", "^" + str(h).replace(".", "\\.") + "$"])] for h in hosts]
    return [conds]


def _flags(args: list[str]) -> list[str]:
    return [f.strip().lower() for f in args[2].strip("[]").split(",")] if len(args) >= 3 else []


def _groups(conds: list[tuple[int, list[str]]]) -> list[list[tuple[int, list[str]]]]:
    """The conditions as Apache joins them: each run joined by `[OR]` is one group; the groups AND."""
    groups: list[list[tuple[int, list[str]]]] = []
    joined = False
    for at, args in conds:
        if joined:
            groups[-1].append((at, args))
        else:
            groups.append([(at, args)])
        joined = any(f in ("or", "ornext") for f in _flags(args))
    return groups


def _conditions(
    b: _Builder, line: int, what: str, conds: list[tuple[int, list[str]]], pattern: str, per_directory: bool,
    subst: str = "",
) -> Restriction | None:
    """What the RewriteConds before a rule restrict it to; None to skip the rule (a warning says why)."""
    found = Restriction(pattern)
    exact: list[bool] = []
    schemes: dict[str, int] = {}  # scheme -> the line of a condition that says it
    for group in _groups(conds):
        if len(group) > 1:
            each = [_scheme_condition(a[0].upper(), a[1], "nc" in _flags(a) or "nocase" in _flags(a))
                    if len(a) >= 2 else None for _, a in group]
            said = {r[0] for r in each if r is not None}
            if None in each or len(said) != 1:
                lines = ", ".join(str(at) for at, _ in group)
                b.warn(line, "import.conditional", f"{what} follows RewriteCond lines joined with [OR] (lines "
                       f"{lines}): the rule answers when any of them holds, a rule's conditions all hold together "
                       "(only [OR] of conditions that all say one scheme is read): skipped")
                return None
            schemes.setdefault(said.pop(), group[0][0])
            continue
        at, args = group[0]
        if len(args) < 2:
            b.warn(line, "import.conditional", f"{what} follows a RewriteCond without a pattern (line {at}): "
                   "skipped")
            return None
        flags = _flags(args)
        nocase = "nc" in flags or "nocase" in flags
        test, cond = args[0], args[1]
        variable = test.upper()
        path_variable = variable == "%{REQUEST_URI}" or (variable == "%{REQUEST_FILENAME}" and not per_directory)
        path_flags = not set(flags) - {"nc", "nocase"}
        if variable in _HOST_VARIABLES and (host := _literal_host(args)) is not None and found.host is None:
            found.host = host
            continue
        elif variable in _HOST_VARIABLES:
            why = ("a negated one (every host but those it matches)" if cond.startswith("!") else
                   "this one matches hosts by a regex" if found.host is None else "a second one")
            b.warn(line, "import.conditional", f"{what} follows `RewriteCond {' '.join(args)}` (line {at}): a "
                   f"rule answers one host (`{test} ^www\\.example\\.com$`) or every host; {why}: skipped (a "
                   "canonical-host redirect: import a rule per host, `from: //old.example.com/{rest:path}`)")
            return None
        elif (read := _scheme_condition(variable, cond, nocase)) is not None:
            schemes.setdefault(read[0], at)
            if not read[1]:
                b.warn(line, "import.scheme", f"{what}: `RewriteCond {' '.join(args)}` (line {at}) is read as "
                       f"`scheme: {read[0]}`; Apache's condition fails for a request without that header (one "
                       "not through the proxy), which redirectory takes as http: check it", name="scheme")
            continue
        elif variable == "%{REQUEST_METHOD}" and (m := _METHOD_COND.fullmatch(cond)) and found.methods is None:
            found.methods = m.group(1).split("|")
            continue
        elif variable == "%{QUERY_STRING}" and not flags and _query_condition(cond, found.query, exact):
            continue
        elif variable == "%{REQUEST_FILENAME}" and cond in ("!-f", "!-d", "!-l", "!-s"):
            b.warn(at, "import.conditional", f"{what}: `RewriteCond {test} {cond}` (no such file or directory) "
                   "cannot be checked by a rule: imported as if it held, check that no file is served at "
                   "the paths it matches", name="from_regex")
            continue
        elif path_variable and path_flags and _implied(cond, found.pattern):
            continue  # the rule's own pattern already says it (a request's path, before any mapping); [NC] too
        elif path_variable and path_flags and not re.search(r"\$\{?[0-9]", subst) and not cond.startswith("!") \
                and _implied(found.pattern, cond) and not (nocase and re.search("[A-Za-z]", found.pattern)):
            # every path the condition matches, the pattern matches (in any case, with [NC]: a pattern
            # without letters): the condition decides
            found.pattern, found.nocase = cond, found.nocase or nocase
            continue
        b.warn(line, "import.conditional", f"{what} follows `RewriteCond {' '.join(args)}` (line {at}): "
               "the condition cannot be expressed as a rule: skipped")
        return None
    if len(exact) > 1:
        b.warn(line, "import.conditional", f"{what} follows two RewriteConds on the whole query: skipped")
        return None
    if len(schemes) > 1:
        b.warn(line, "import.conditional", f"{what} follows RewriteConds for http (line {schemes['http']}) and "
               f"for https (line {schemes['https']}): no request meets both, the rule never applies: skipped")
        return None
    found.query_exact = bool(exact)
    found.scheme = next(iter(schemes), None)
    return found
