"""The hosts an nginx `server` answers (`server_name`), and `if ($host = NAME)` conditions.

A server of several plain names is imported once per name (docs/migrating.md): each pass's rules
are host-specific rules of that name, `$host` in its targets is that name and `$server_name` the
server's first name (as in nginx). A problem found in every pass is reported once."""

from __future__ import annotations

import re
from dataclasses import replace

from redirectory.rules.importers._common import _Builder
from redirectory.rules.importers._nginx_syntax import _Directive
from redirectory.rules.patterns import Param, PathPattern, parse_source, valid_host


def server_names(server: list[_Directive]) -> list[str]:
    return [a for d in server if d.name == "server_name" for a in d.args]


def plain_host(name: str) -> str | None:
    """The host a plain `server_name` answers (`.example.org`: example.org), else None (a
    wildcard, a regex, or `_`, the conventional catch-all name no client sends)."""
    name = name.lower()
    if "." not in name and "_" in name:
        return None
    if name.startswith(".") and valid_host(name[1:]):
        return name[1:]
    return name if valid_host(name) else None


def server_hosts(names: list[str]) -> list[str]:
    """The plain hosts of a server's names, in order, each once."""
    return list(dict.fromkeys(h for h in map(plain_host, names) if h is not None))


def warn_names(b: _Builder, line: int, names: list[str], hosts: list[str]) -> None:
    """The names whose hosts the rules of a server with plain names do not answer exactly."""
    for name in names:
        if plain_host(name) is None and wildcard(name) is None and name.startswith("~"):
            b.warn(line, "import.host", f"`server_name {name}`: a regex name, which this import does not read: "
                   + ("this server's rules are imported for its other names only" if hosts else
                      "this server is imported as the one for the hosts the file's other servers do not name"),
                   name="from")


#: `if ($host = NAME)`, `if ($http_host != NAME)`
_HOST_TEST = re.compile(r"\(\s*\$\{?(host|http_host)\}?\s*(!?=)\s*(\S+?)\s*\)")


def if_host(args: list[str]) -> tuple[str, bool] | None:
    """(NAME, True for `=`) of an `if` that compares the request's host with a name; None for any
    other condition (a regex `~`, `~*` among them)."""
    m = _HOST_TEST.fullmatch(" ".join(args).strip())
    if m is None:
        return None
    return m.group(3).strip("\"'").lower(), m.group(2) == "="


def host_if_true(args: list[str], host: str) -> bool:
    test = if_host(args)
    return test is not None and (test[0] == host) == test[1]


class OncePerServer:
    """Reports a problem of a server's later passes only when the first pass did not (same line
    and code): each warning once, not once per name."""

    def __init__(self, b: _Builder) -> None:
        self.b = b
        self.start = len(b.problems), len(b.refused)
        self.seen: set[tuple[object, ...]] | None = None

    def next_pass(self) -> None:
        b = self.b
        problems, refused = b.problems[self.start[0]:], b.refused[self.start[1]:]
        if self.seen is None:
            self.seen = {(p.line, p.code, p.field, p.source) for p in [*problems, *refused]}
            self.start = len(b.problems), len(b.refused)
            return
        kept = [p for p in problems if (p.line, p.code, p.field, p.source) not in self.seen]
        kept_refused = [p for p in refused if (p.line, p.code, p.field, p.source) not in self.seen]
        self.seen |= {(p.line, p.code, p.field, p.source) for p in [*kept, *kept_refused]}
        del b.problems[self.start[0]:]
        del b.refused[self.start[1]:]
        b.problems.extend(kept)
        b.refused.extend(kept_refused)
        self.start = len(b.problems), len(b.refused)


# -- wildcard names ------------------------------------------------------------------------------
#: nginx picks a request's server by its name: the exact name, then the longest leading wildcard
#: (`*.example.org`, `.example.org`), then the longest trailing wildcard (`www.example.*`). A rule's
#: host rank says the same (higher first): regex rules get their `priority` from it.
EXACT_RANK = 1000
#: the span of one phase within a host rank (a rule's raw rank is 2 * (host rank * 10 spans + phase))
PHASE_SPAN = 100_000
_LEADING_RANK, _TRAILING_RANK = 500, 1


def wildcard(name: str) -> tuple[str, int] | None:
    """(the host regex, the host rank) of a wildcard `server_name`; None for another name."""
    name = name.lower()
    if name.startswith("*.") and valid_host(name[2:]):
        return r"[^/]+\." + re.escape(name[2:]), _LEADING_RANK + len(name)
    if name.startswith(".") and valid_host(name[1:]):  # its subdomains (the name itself is a plain host)
        return r"[^/]+\." + re.escape(name[1:]), _LEADING_RANK + len(name)
    if name.endswith(".*") and valid_host(name[:-2]):
        return re.escape(name[:-2]) + r"\.[^/]+", _TRAILING_RANK + len(name)  # one label or more
    return None


def placeholder(n: int) -> str:
    """The host a wildcard pass is imported for, then replaced by its host regex (`as_host_regex`)."""
    return f"wildcard{n}.redirectory.invalid"


def as_host_regex(b: _Builder, start: int, host: str, host_regex: str, name: str, ranks: dict[int, int],
                  base: int) -> None:
    """The rules from `start` on, imported for the host `host`, as rules of the hosts `host_regex`
    matches: host-specific `from_regex` (`^//HOSTS/...`); a `from` pattern becomes the regex of the
    paths it matches, ranked before the pass's regexes as redirectory ranks it (exact, then the more
    literal segments). A rule whose target names the request's host is skipped with a warning."""
    escaped = "^//" + re.escape(host)
    keep = []
    for k in range(start, len(b.rules)):
        rule = b.rules[k]
        if host in rule.to:
            b.warn(rule.line, "import.host", f"`server_name {name}`: a rule sends to the request's own host, which "
                   "a rule for a wildcard name cannot say: skipped for that name", name="to")
            continue
        if rule.source_regex is not None and rule.source_regex.startswith(escaped):
            rule = replace(rule, source_regex="^//" + host_regex + rule.source_regex[len(escaped):])
        elif rule.source is not None and rule.source.startswith(f"//{host}/"):
            pattern = parse_source(rule.source)
            rule = replace(rule, source=None, source_regex=f"^//{host_regex}{_pattern_regex(pattern)}")
            ranks[k] = base + 2 * (8 * PHASE_SPAN if pattern.is_exact else 7 * PHASE_SPAN + pattern.literal_count)
        else:  # a rule of every host (its regex cannot be written after a host): not for a wildcard name
            b.warn(rule.line, "import.host", f"`server_name {name}`: a rule of this line would answer every host, "
                   "not only those of the wildcard name: skipped for that name", name="from")
            continue
        b.rules[k] = rule
        keep.append(k)
    for i, problem in enumerate(b.problems):  # the placeholder host, in this pass's warnings, is the name
        if host in problem.message:
            b.problems[i] = replace(problem, message=problem.message.replace(host, name))
    kept = set(keep)
    dropped = [k for k in range(start, len(b.rules)) if k not in kept]
    for k in reversed(dropped):
        del b.rules[k]
        del b.order[k]
    moved = {k: ranks.pop(k) for k in sorted(ranks) if k >= start}
    for new, old in enumerate(keep):
        if old in moved:
            ranks[start + new] = moved[old]


def _pattern_regex(pattern: PathPattern) -> str:
    out = ""
    for segment in pattern.segments:
        out += "/" + (f"(?P<{segment.name}>[^/]+)" if isinstance(segment, Param) else re.escape(segment))
    if pattern.tail is not None:  # the rest: none (`/a`), or after a slash (`/a/`, `/a/b`)
        return f"{out}(?:/(?P<{pattern.tail}>.*))?$"
    return (out or "/") + "$"
