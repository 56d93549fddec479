"""Scheme conditions of the rules an nginx file becomes (docs/rules.md, "Scheme conditions").

nginx answers a request by its scheme where a server listens for one scheme only, or where an
`if ($scheme = http)` (also `$http_x_forwarded_proto`, `$https`) holds the redirect; redirectory
says so with `scheme: http|https` on the rules. Because redirectory tries the regex rules with a
scheme before those without, whatever their priority, the regex rules nginx tries first become one
rule per scheme (`split_before_scheme`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from urllib.parse import urlsplit

from redirectory.rules.importers._common import _Builder
from redirectory.rules.importers._nginx_within import literal_start
from redirectory.rules.model import Rule
from redirectory.rules.patterns import is_host_regex, split_host_regex

OTHER = {"http": "https", "https": "http"}


def for_own_scheme(b: _Builder, first: int, host: str | None, scheme: str) -> None:
    """The rules from `first` on of a server that listens for `scheme` alone: one that sends to the
    other scheme on the server's own host (`return 301 https://a.example/x` in a plain-http server
    of a.example, or `https://$host...` anywhere: `https://{host}/...`) answers requests of `scheme`
    only (`scheme: http`), as nginx does; without the condition it would send https requests to
    themselves."""
    for i in range(first, len(b.rules)):
        rule = b.rules[i]
        own = rule.to.startswith(("http://{host}", "https://{host}"))
        target = urlsplit(rule.to) if rule.to.startswith(("http://", "https://")) and not own else None
        if own and rule.scheme is None and not rule.to.startswith(scheme + "://"):
            b.rules[i] = replace(rule, scheme=scheme)
        elif (target is not None and rule.scheme is None and target.scheme != scheme
                and host is not None and (target.hostname or "").rstrip(".") == host):
            b.rules[i] = replace(rule, scheme=scheme)


def give_scheme(b: _Builder, indexes: Iterable[int], scheme: str) -> None:
    """Rules that answer requests of `scheme` only (those with a scheme already keep theirs)."""
    for k in indexes:
        if b.rules[k].scheme is None:
            b.rules[k] = replace(b.rules[k], scheme=scheme)


def split_before_scheme(b: _Builder) -> None:
    """The regex rules that nginx tries before a regex rule with a `scheme` (a higher `priority`, or
    the same and earlier in the file), each as two rules, one per scheme: redirectory tries the
    regex rules with a scheme before those without (docs/rules.md, precedence), whatever their
    priority; with one of each scheme they keep nginx's order for both."""
    def host(rule: Rule) -> str:
        regex = rule.source_regex or ""
        return regex.split("(", 1)[0] if is_host_regex(regex) else ""

    def start(rule: Rule) -> str:  # what every path it matches starts with, in any letter case ("" when unsure)
        regex = rule.source_regex or ""
        split = split_host_regex(regex) if is_host_regex(regex) else ("", regex)
        return "" if split is None or rule.regex_query else literal_start(split[1]).lower()

    def order(k: int) -> tuple[object, ...]:
        return (-b.rules[k].priority, b.order[k])

    def overlap(a: Rule, z: Rule) -> bool:
        return host(a) == host(z) and (start(a).startswith(start(z)) or start(z).startswith(start(a)))

    scoped = [k for k, r in enumerate(b.rules) if r.source_regex is not None and r.scheme is not None]
    for k in range(len(b.rules)):
        rule = b.rules[k]
        if rule.source_regex is None or rule.scheme is not None:
            continue
        later = [b.rules[n].scheme for n in scoped if order(n) > order(k) and overlap(b.rules[n], rule)]
        if later:
            scheme = str(later[0])
            b.rules[k] = replace(rule, scheme=scheme)
            b.rules.append(replace(rule, scheme=OTHER[scheme]))
            b.order.append(b.order[k])
