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
- `RewriteRule PATTERN - [L]` (or `[END]`) is an exclusion: its paths are served as they are and the
  RewriteRules after it do not run for them; mod_alias still does (it runs after mod_rewrite whatever
  that did). It becomes a rule that redirects nothing (status 404), ordered by `_in_apache_order`
  (`_apache_order.py`, with the rest of the ordering).
- An internal rewrite with `[L]`/`[END]` (WordPress's `RewriteRule . /index.php [L]`, `!-f`/`!-d`
  read as true) is a rule that redirects nothing for its paths (`_internal_rewrite`): the
  RewriteRules after it never redirect them (in server context nor does mod_alias); in .htaccess
  it is left out where Apache's second pass over the new path may redirect it (`_apache_order`).
- The http-to-https idioms (`RewriteCond %{HTTPS} off` and co., `_apache_conditions.py`) give the rule
  a `scheme`; so does a `<VirtualHost>` on port 80 (or 443) alone for a rule sending to the other
  scheme on its own host. `%{HTTP_HOST}`/`%{SERVER_NAME}` in a substitution is the host where it is
  known (one `ServerName`, a literal host condition; host conditions joined by [OR]: a rule per host),
  `%{REQUEST_URI}` the whole path (a group around the pattern).
- redirectory's precedence puts a regex rule with query or scheme conditions before one without, and
  a host-specific regex before any-host ones: a rule Apache tries first is written once per scheme
  (`_per_scheme`), or copied for that host (`_for_hosts`), so that it keeps its place.
- PCRE's possessive `c++` (RE2 has none) is read as `c+` where that changes no match (a literal
  character followed by another one or the end). The regex readings are in `_apache_regex.py`.
- `Include` and `IncludeOptional` (with `read`, see `load_apache_included`; `_apache_syntax.py`) are read in place, as
  Apache reads one configuration: the `Define`s and `RewriteMap`s before them apply to the lines
  they include, and those included define for the lines after. A missing `Include` (Apache refuses
  to start) is a warning naming it and the rest imports; a missing `IncludeOptional` is nothing, as
  in Apache. Without `read`, an `Include` is a warning naming the file (import it too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from redirectory.rules.importers._apache_conditions import Restriction, _condition_host, _conditions, _per_host
from redirectory.rules.importers._apache_order import _INTERNAL, _emit, _Internal, _Redirect, _Regex
from redirectory.rules.importers._apache_regex import (
    _as_pattern,
    _capital_free,
    _hash_as_escape,
    _literal_prefix,
    _lowered,
    _possessive_as_greedy,
)
from redirectory.rules.importers._apache_syntax import (
    _INCLUDES,
    _apache_args,
    _apache_lines,
    _defined,
    _included_lines,
    _rewrite_maps,
)
from redirectory.rules.importers._common import (
    _KEPT,
    _Builder,
    _guarded,
    _named_groups,
    _path,
    _regex_rule,
    _unknown_variables,
)
from redirectory.rules.importers._nginx_syntax import IncludeReader
from redirectory.rules.model import Problem, RuleSet
from redirectory.rules.patterns import valid_host
from redirectory.semantics import NOT_REDIRECTED

# -- Apache --------------------------------------------------------------------------------------
_APACHE_STATUS = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}
_APACHE_SKIP_CONTAINERS = ("location", "locationmatch", "directory", "directorymatch", "files", "filesmatch",
                           "if", "elseif", "else", "proxy")


@dataclass
class _Deferred(_Builder):
    """A builder that holds the rules `_regex_rule` adds (warnings go to the real builder's list),
    so they are added once Apache's order between the modules is known."""

    held: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def add(self, line: int, data: dict[str, Any], order: tuple[int, ...] | None = None) -> None:
        self.held.append((line, data))


def load_apache_included(
    text: str, source: str, read: IncludeReader, origins: list[str] | None = None
) -> tuple[RuleSet, list[Problem]]:
    """`load_apache` that reads the files `Include`d (`read`: see `IncludeReader`; a name that
    matches nothing is an `IncludeMissing`), in place as Apache does. Problems in an included file
    name that file and its line; `origins` receives the file of each rule."""
    return _guarded(lambda b, t: _load_apache(b, t, read), text, source, origins)


def _load_apache(b: _Builder, text: str, read: IncludeReader | None = None) -> None:
    containers: list[tuple[str, int, list[str], str]] = []  # (name, line, server names, addresses)
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
    # "": no RewriteBase anywhere in the file, where Apache sends a relative substitution in .htaccess
    # under the directory's filesystem path (`_apache_rewrite` warns); the import puts it under `/`
    if not any(re.match(r"(?i)\s*RewriteBase\s", c) for _, c in lines):
        rewrite_base = ""
    defines: dict[str, str] = {}  # `Define NAME VALUE`: `${NAME}` on the lines after it
    for line, content in lines:
        if not content or content.startswith("#"):
            continue
        opening = re.fullmatch(r"<\s*([A-Za-z]+)\b([^>]*)>", content)
        if opening:
            containers.append((opening.group(1).lower(), line, [], opening.group(2)))
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
        hosts: list[str | None] = [None]
        listens: str | None = None  # the scheme of a <VirtualHost> on port 80 (or 443) alone
        named = False  # in a <VirtualHost> with names: its rules answer those names alone
        for c in reversed(containers):
            if c[0] == "virtualhost":
                hosts = _vhost_hosts(c[2])
                listens = _vhost_scheme(c[3])
                named = bool(c[2])
                break
        if len(hosts) > 1 and any(a and a[0].upper() in ("%{HTTP_HOST}", "%{SERVER_NAME}") for _, a in rule_conds):
            hosts = [None]  # the host conditions say which of the names (certbot's `=a [OR]` / `=www.a`)
        after_regex = bool(rewrites)
        for host in hosts:  # a <VirtualHost>'s rules once per name it answers
            _directive(b, line, what, directive, args, host, listens, rule_conds, rewrite_base, per_directory,
                       maps, after_regex, rewrites, rewrite_patterns, aliases, stoppers, any_host=not named)
    _emit(b, rewrites, rewrite_patterns, aliases, stoppers)


def _vhost_hosts(names: list[str]) -> list[str | None]:
    """The hosts a `<VirtualHost>`'s rules answer: its `ServerName` alone, or with its `ServerAlias`
    names when every one is a literal host (a rule per name, as nginx's `server_name a b`); else
    every host (None), as before (a wildcard alias, several `ServerName`s, none)."""
    plain = [n.lower() for n in names if not n.startswith("*")]
    aliases = [n[1:].lower() for n in names if n.startswith("*") and n != "*"]
    if len(plain) == 1 and all(valid_host(n) for n in [*plain, *aliases]):
        return list(dict.fromkeys([*plain, *aliases]))
    return [None]


def _directive(
    b: _Builder, line: int, what: str, directive: str, args: list[str], host: str | None, listens: str | None,
    rule_conds: list[tuple[int, list[str]]], rewrite_base: str, per_directory: bool, maps: dict[str, str],
    after_regex: bool, rewrites: list[_Regex], rewrite_patterns: list[tuple[int, dict[str, Any]]],
    aliases: list[_Redirect | _Regex], stoppers: list[tuple[str, str | None, int]], *, any_host: bool = True,
) -> None:
    """One redirect directive of `host` (None: every host) into the lists `_emit` orders; `any_host`:
    the original answers every host here too (no <VirtualHost> names)."""
    held = _Deferred(b.source, problems=b.problems)
    if directive == "rewriterule":
        for one in _per_host(rule_conds):
            _apache_rewrite(held, line, what, args, host, one, rewrite_base, per_directory, maps,
                            after_regex, any_host=any_host)
        held.held = [(at, _own_scheme(data, listens, host)) for at, data in held.held]
        for at, data in held.held:
            if "from" in data:
                rewrite_patterns.append((at, data))
            else:
                internal = data.pop(_INTERNAL, None)
                rewrites.append(_Regex(at, data, _literal_prefix(data["from_regex"]),
                                       bool(data.get("case_insensitive")), data["status"] == NOT_REDIRECTED,
                                       internal))
    elif directive == "redirectmatch":
        _apache_redirect_match(held, line, what, args, host)
        held.held = [(at, _own_scheme(data, listens, host)) for at, data in held.held]
        aliases.extend(_Regex(at, data, _literal_prefix(data["from_regex"]), False) for at, data in held.held)
    else:
        default = {"redirect": 302, "redirectpermanent": 301, "redirecttemp": 302}[directive]
        found = _apache_redirect(b, line, what, args, host, default, directive == "redirect")
        if isinstance(found, _Redirect):
            found.scheme = _own_scheme({"to": found.url}, listens, host).get("scheme")
            aliases.append(found)
        elif found is not None:
            stoppers.append((found, host, line))


def _vhost_scheme(addresses: str) -> str | None:
    """The scheme of a `<VirtualHost>` whose addresses all have port 80 (http) or all 443 (https)."""
    ports = {a.rpartition(":")[2] for a in addresses.split()}
    return {"80": "http", "443": "https"}.get(ports.pop()) if len(ports) == 1 else None


def _own_scheme(data: dict[str, Any], listens: str | None, host: str | None) -> dict[str, Any]:
    """A rule of a `<VirtualHost>` that listens for one scheme (`_vhost_scheme`) sending to the other
    scheme on its own host answers requests of its scheme only (`scheme: http`), as that server does:
    without the condition it would send the other scheme's requests to themselves."""
    target = re.match(r"(?i)(https?)://(\{host\}|[^/?#:]+)", str(data.get("to") or ""))
    if listens is None or data.get("scheme") or target is None or target.group(1).lower() == listens:
        return data
    own = {host, "{host}"} if host else {"{host}"}  # `{host}`: the request's own, whichever it is
    if str(data.get("from") or "").startswith("//"):
        own.add(str(data["from"])[2:].split("/")[0])
    if m := re.match(r"\^//((?:[A-Za-z0-9-]|\\\.)+)", str(data.get("from_regex") or "")):
        own.add(m.group(1).replace("\\.", "."))
    return {**data, "scheme": listens} if target.group(2).lower() in own else data


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
    _regex_rule(b, line, what, _hash_as_escape(regex), url, status, query="drop" if "?" in url else None, host=host)


def _apache_rewrite(
    b: _Builder, line: int, what: str, args: list[str], host: str | None, conds: list[tuple[int, list[str]]],
    rewrite_base: str, per_directory: bool = False, maps: dict[str, str] | None = None,
    after_regex: bool = False, *, any_host: bool = True,
) -> None:
    """A RewriteRule as a rule: a redirect, or an exclusion (`_exclusion`); `after_regex`: a
    RewriteRule held as a regex rule (an exclusion among them) comes before it in the file: its rule
    must then be a regex too, ordered after it (a path pattern would come before every regex rule)."""
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
    on_host = _on_host(b, line, what, subst, host or _condition_host(conds), any_host)
    if on_host is None:
        return
    subst = on_host
    absolute = re.match(r"(?i)https?://([^/?#]*)", subst)
    if code is None:
        if absolute is None or (host is not None and absolute.group(1).lower() == host):
            # an internal rewrite (an absolute URL on the server's own host too), not a redirect
            names = {f.partition("=")[0].lower(): f.partition("=")[2] for f in flags}
            if subst == "-" and names.keys() & {"l", "last", "end"} and not names.keys() & {"s", "skip"}:
                _exclusion(b, line, what, args, host, conds, per_directory, ci)
                return
            if subst != "-" and names.keys() & {"l", "last", "end"} and not names.keys() & _NOT_FINAL \
                    and _internal_rewrite(b, line, what, args, host, conds, per_directory, ci,
                                          _rewritten_path(subst, rewrite_base), bool(names.keys() & {"end"})):
                return
            if subst != "-":
                why = "an internal rewrite: Apache serves another path, and the rules after it see that path"
            elif "s" in names or "skip" in names:
                why = f"`-` with [S={names.get('s') or names.get('skip')}]: the rules it skips do not run for its paths"
            elif names.keys() & {"l", "last", "end"}:
                why = "`-` with [L]: the rules after it do not run for its paths"
            else:
                why = "`-` (the path stays): it redirects nothing"
            b.warn(line, "import.internal", f"{what}: no R flag, {why}: not a redirect, not imported; check the "
                   "redirects after it with `rules test`", name="from_regex")
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
    variable = re.search(r"%\{[^}]*\}|%[0-9]", subst.replace("%{REQUEST_URI}", ""))
    if variable is not None:
        why = ("a RewriteCond's group (the text its condition matched)" if variable.group(0)[1].isdigit()
               else "a server variable")
        b.warn(line, "import.variable", f"{what}: the substitution uses {variable.group(0)}, {why}, which a rule "
               "cannot express (a target knows the path's placeholders and regex groups only): skipped", name="to")
        return
    if _unknown_variables(b, line, what, subst, allow_groups=True):
        return
    if subst.endswith("?"):
        subst, query = subst[:-1], "drop"
    elif "?" in subst and not qsa:
        query = "drop"  # a query of its own replaces the request's, unless [QSA]
    if escape and "#" in subst:
        subst = subst.replace("#", "%23")  # without [NE] Apache escapes it: not a fragment
    relative = not subst.startswith("/") and absolute is None
    if relative:
        subst = (rewrite_base or "/") + subst  # a relative substitution (.htaccess): under RewriteBase
    found = _matched(b, line, what, args, conds, per_directory, subst)
    if found is None:
        return
    if relative and per_directory and not rewrite_base:
        b.warn(line, "import.unsupported", f"{what}: a relative substitution in .htaccess without RewriteBase: "
               "Apache puts the directory's filesystem path before it (`Location: /var/www/html/docs/...`, a "
               "URL no client can use); imported under `/`, as `RewriteBase /` says", name="to")
    pattern, ci = found.pattern, ci or found.nocase
    query_fields: dict[str, Any] = {"query_match": dict(found.query) or None,
                                    "query_exact": True if found.query_exact else None,
                                    "methods": found.methods, "scheme": found.scheme}
    if found.host is not None:
        host = found.host
    if "%{REQUEST_URI}" in subst:  # the request's whole path: a group around it
        if pattern in _ANY_PATH and not re.search(r"\$\{?[0-9]", subst):
            pattern, subst = "^/(.*)$", subst.replace("%{REQUEST_URI}", "/$1")
        elif pattern.startswith("^/"):  # the group comes first: the pattern's own are one further
            pattern = f"^/(?P<request_uri>(?:{pattern[2:]}).*)$"
            subst = re.sub(r"\$(?:\{([0-9])\}|([0-9]))", lambda m: f"${int(m.group(1) or m.group(2)) + 1}", subst)
            subst = subst.replace("%{REQUEST_URI}", "/{request_uri}")
        else:
            b.warn(line, "import.variable", f"{what}: the substitution uses %{{REQUEST_URI}} after a pattern that "
                   "may match anywhere in the path, which a rule cannot express: skipped", name="to")
            return
    subst = _past_the_groups(pattern, subst)
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
    if host and not after_regex:  # a path pattern would come before the regex rules before it
        converted = None if ci else _as_pattern(pattern, subst)
        if converted is not None:
            source, to = converted
            b.add(line, {"from": f"//{host}{source}", "to": to, "status": status, "query": query, **query_fields})
            return
    before = len(getattr(b, "held", []))
    _regex_rule(b, line, what, pattern, subst, status, case_insensitive=ci, query=query, host=host or None,
                host_required=found.host is not None, query_match=query_fields["query_match"],
                query_exact=found.query_exact)
    _restrict(b, before, found)


def _matched(
    b: _Builder, line: int, what: str, args: list[str], conds: list[tuple[int, list[str]]], per_directory: bool,
    subst: str,
) -> Restriction | None:
    """A RewriteRule's pattern as a regex over the full path, with what its RewriteConds restrict it
    to (`_conditions`); None to skip the rule (a warning says why)."""
    pattern = args[0]
    if pattern.startswith("!"):
        b.warn(line, "import.unsupported", f"{what}: a negated pattern cannot be expressed as a rule: skipped",
               name="from_regex")
        return None
    if per_directory and pattern.startswith("^/") and not pattern.startswith(("^/?", "^/*")):
        b.warn(line, "import.unsupported", f"{what}: in .htaccess Apache matches the pattern against the path "
               "without its leading slash, so `^/` never matches: the rule does nothing: skipped",
               name="from_regex")
        return None
    # per-directory (.htaccess) patterns see the path without its leading slash: an unanchored one
    # (`.`) is searched after it (`.` matches `/a`, not `/`)
    if per_directory and not pattern.startswith("^") and "^" not in pattern:
        pattern = ("^/." if pattern == "." else "^/" + pattern if pattern.startswith((".*", "(.*)"))
                   else f"^/.*?(?:{pattern})")
    if pattern.startswith("^") and not pattern.startswith("^/") and (per_directory or not pattern.startswith("^(")):
        pattern = "^/" + pattern[1:]
    # REQUEST_FILENAME is the request's path only in server context: a file not named .htaccess
    # whose pattern starts with a slash (per-directory patterns never do)
    found = _conditions(b, line, what, conds, pattern, per_directory or not args[0].startswith("^/"), subst)
    if found is not None:
        found.pattern = _hash_as_escape(_possessive_as_greedy(found.pattern))
    return found


def _exclusion(
    b: _Builder, line: int, what: str, args: list[str], host: str | None, conds: list[tuple[int, list[str]]],
    per_directory: bool, ci: bool,
) -> None:
    """`RewriteRule PATTERN - [L]` (or `[END]`): the paths it matches are served as they are and the
    RewriteRules after it do not run for them (mod_alias still does): a rule that redirects nothing
    (status 404), which `_emit` orders after the RewriteRules before it and the mod_alias rules that
    may match its paths, and before the RewriteRules after it."""
    found = _matched(b, line, what, args, conds, per_directory, "-")
    if found is None:
        return
    before = len(getattr(b, "held", []))
    _regex_rule(b, line, what, found.pattern, "", NOT_REDIRECTED, case_insensitive=ci or found.nocase,
                host=found.host or host, host_required=found.host is not None,
                query_match=dict(found.query) or None, query_exact=found.query_exact)
    _restrict(b, before, found)


#: flags after which an internal rewrite is not the last word of mod_rewrite on the path: skip, chain,
#: next round, passthrough (mod_alias then maps the new path), a type or a cookie/env of its own
_NOT_FINAL = frozenset({"s", "skip", "c", "chain", "n", "next", "pt", "passthrough", "t", "type", "h", "handler"})


def _rewritten_path(subst: str, rewrite_base: str) -> str | None:
    """The path an internal rewrite serves (a literal one: no `$N`, `%N` or `%{...}`), else None."""
    path = re.sub(r"(?i)^https?://[^/?#]*", "", subst).split("?", 1)[0]
    if re.search(r"[$%]", path):
        return None
    return path if path.startswith("/") else (rewrite_base or "/") + path


def _internal_rewrite(
    b: _Builder, line: int, what: str, args: list[str], host: str | None, conds: list[tuple[int, list[str]]],
    per_directory: bool, ci: bool, target: str | None, end: bool,
) -> bool:
    """An internal rewrite with `[L]`/`[END]` (WordPress's front controller, `RewriteRule . /index.php
    [L]` after `RewriteCond %{REQUEST_FILENAME} !-f` and `!-d`): the RewriteRules after it never
    redirect a path it takes (in .htaccess the new path goes through the rules again, `_emit` checks
    that those redirect it nowhere; in server context neither does mod_alias then). `!-f`/`!-d` are
    read as true (no such file: the paths of existing files are not modelled). A rule that redirects
    nothing (status 404), held with what `_emit` needs; False to leave it to the general warning (a
    .htaccess rewrite to a path that is not literal)."""
    if per_directory and target is None:
        return False
    files = [c for c in conds if c[1][0].upper() == "%{REQUEST_FILENAME}" and len(c[1]) >= 2
             and c[1][1] in ("!-f", "!-d") and len(c[1]) == 2]
    found = _matched(b, line, what, args, [c for c in conds if c not in files], per_directory, "-")
    if found is None:
        return True
    held = getattr(b, "held", None)
    before = len(held) if held is not None else 0
    _regex_rule(b, line, what, found.pattern, "", NOT_REDIRECTED, case_insensitive=ci or found.nocase,
                host=found.host or host, host_required=found.host is not None,
                query_match=dict(found.query) or None, query_exact=found.query_exact)
    _restrict(b, before, found)
    if held is not None and len(held) > before:
        internal = _Internal(what, target, end, per_directory, [c[0] for c in files],
                             bool(found.host or found.query or found.query_exact or found.methods or found.scheme))
        held[-1] = (held[-1][0], {**held[-1][1], _INTERNAL: internal})
    return True


def _restrict(b: _Builder, before: int, found: Restriction) -> None:
    """The methods and scheme of the conditions on the regex rule `_regex_rule` just held (if it did)."""
    held = getattr(b, "held", None)
    extra = {k: v for k, v in (("methods", found.methods), ("scheme", found.scheme)) if v}
    if extra and held is not None and len(held) > before:
        held[-1] = (held[-1][0], {**held[-1][1], **extra})


#: patterns every path matches (a path starts with `/`): with `%{REQUEST_URI}` alone, `^/(.*)$` and `/$1`
_ANY_PATH = frozenset({"", "^", "^/", ".*", "^.*", "^.*$", "^/.*", "^/.*$", "(.*)", "^(.*)", "^(.*)$", "^/(.*)",
                       "^/(.*)$", "^/?(.*)", "^/?(.*)$", "^/?", "^/?.*"})


def _on_host(b: _Builder, line: int, what: str, subst: str, host: str | None, any_host: bool = True) -> str | None:
    """The substitution with `%{HTTP_HOST}` and `%{SERVER_NAME}` (the request's host) as the one host
    the rule answers; where that host is not known and the rule answers every host as the original
    does (`any_host`: no <VirtualHost> names), a whole target host is `{host}` (the request's own);
    None (a warning says why) for anything else."""
    used = re.search(r"%\{(HTTP_HOST|SERVER_NAME)\}", subst)
    if used is None:
        return subst
    if host is None and any_host and re.match(r"(?i)https?://%\{(?:HTTP_HOST|SERVER_NAME)\}(?=[/?#]|$)", subst) and \
            len(re.findall(r"%\{(?:HTTP_HOST|SERVER_NAME)\}", subst)) == 1:
        # the whole host of the target: the request's own (`https://{host}/...`; without its port)
        return re.sub(r"%\{(?:HTTP_HOST|SERVER_NAME)\}", "{host}", subst)
    if host is None:
        b.warn(line, "import.variable", f"{what}: the substitution uses {used.group(0)}, the request's host, which "
               "a rule's target cannot take (its host is literal): it is known only in a <VirtualHost> with one "
               "ServerName (and literal ServerAlias names), or after `RewriteCond %{HTTP_HOST} ^www\\.example\\.com$`: "
               "skipped (import a rule per host: `from: //example.com/{rest:path}`, "
               "`to: https://example.com/{rest}`)", name="to")
        return None
    return re.sub(r"%\{(?:HTTP_HOST|SERVER_NAME)\}", host, subst)


def _past_the_groups(pattern: str, subst: str) -> str:
    """The substitution with each `$N` beyond the pattern's groups removed: Apache pastes nothing
    for it (`RewriteRule ^tutorials.php help/tutorials$1` redirects to `/help/tutorials`)."""
    scanned = _named_groups(pattern)
    if scanned is None:
        return subst
    count = len(scanned[1])
    return re.sub(r"\$(?:\{([0-9])\}|([0-9]))", lambda m: "" if int(m.group(1) or m.group(2)) > count else m.group(0),
                  subst)
