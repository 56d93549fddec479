"""What every importer shares: the rule builder (statuses, warnings, file order) and the
conversion of regexes, `$N` references and paths into rule fields."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import re2

from redirectory.rules.matcher import compile_regex
from redirectory.rules.model import Problem, Rule, RuleSet
from redirectory.rules.parsing import rule_from_mapping

_KEPT = frozenset({301, 303, 307, 308})
_GROUP_REF = re.compile(r"\$(?:\{([0-9])\}|([0-9]))")
_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# -- shared --------------------------------------------------------------------------------------
_Loader = Callable[[str, str], tuple[RuleSet, list[Problem]]]


def _guarded(loader: Callable[[_Builder, str], None], text: str, source: str,
             origins: list[str] | None = None) -> tuple[RuleSet, list[Problem]]:
    """Run `loader`; never raises. `origins`, when given, receives the file of each rule of the
    result (the imported file, or a file it `include`s)."""
    builder = _Builder(source)
    try:
        if text.startswith("\ufeff"):
            text = text[1:]
        loader(builder, text)
    except Exception as exc:  # noqa: BLE001 - last resort: an importer bug must not crash the caller
        builder.problems.append(
            Problem(
                "error",
                "file",
                f"cannot read the file: internal error {type(exc).__name__}: {exc}",
                code="internal",
                source=source,
            )
        )
    for p in builder.refused:
        # a line whose rule the checks refuse: our own export stays strict; a foreign line is skipped
        builder.problems.append(p if builder.ours or not p.is_error else replace(
            p, severity="warning", message=f"{p.message}: the line is skipped", code=f"import.{p.code}"))
    builder.refused = []
    if builder.rules and not builder.ours and not any(p.is_error for p in builder.problems):
        _skip_what_the_server_never_uses(builder)
    if builder.lines is not None:
        _real_lines(builder)
    if not builder.rules and not any(p.is_error for p in builder.problems):
        skipped = sum(1 for p in builder.problems if p.severity == "warning")
        found = builder.found or "nothing that redirects"
        more = f"; {skipped} line(s) were skipped, each with a warning" if skipped else ""
        builder.problems.append(Problem("error", "file", f"no redirect to import: found {found}{more}",
                                        line=1, code="import.empty", source=source))
    ruleset, problems = builder.result()
    if origins is not None:
        origins[:] = [builder.rule_sources[r.position] if builder.rule_sources else source for r in ruleset.rules]
    return ruleset, problems


def _real_lines(b: _Builder) -> None:
    """Lines numbered across included files (`b.lines`) back to each file's own lines: problems
    name the file and line they are about, rules keep the line in their own file."""
    table = b.lines or []

    def where(line: int) -> tuple[str, int]:
        return table[line - 1] if 0 < line <= len(table) else (b.source, line)

    def text(message: str, own: str) -> str:
        def one(m: re.Match[str]) -> str:
            file, real = where(int(m.group(1)))
            return f"line {real}" if file == own else f"{file}:{real}"
        return re.sub(r"\bline (\d+)\b", one, message)

    problems = []
    for p in b.problems:
        file, real = where(p.line) if p.line is not None else (b.source, None)
        problems.append(replace(p, line=real, source=file, message=text(p.message, file)))
    b.problems = b.early + problems
    b.early = []
    in_result = sorted(range(len(b.rules)), key=lambda k: b.order[k])
    sources = [""] * len(b.rules)
    for position, k in enumerate(in_result):
        rule = b.rules[k]
        file, real = where(rule.line) if rule.line is not None else (b.source, None)
        sources[position] = file
        lines = {name: where(v)[1] for name, v in rule.field_lines.items()} if rule.field_lines else None
        b.rules[k] = replace(rule, line=real, field_lines=lines)
    b.rule_sources = sources
    b.lines = None


@dataclass
class _Builder:
    source: str
    rules: list[Rule] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    count: int = 0
    order: list[tuple[int, ...]] = field(default_factory=list)  # where each rule goes in the result
    found: str = ""  # what the file holds, said when it yields no redirect ("3 `map` entries ...")
    ours: bool = False  # our own export read back: its table is checked as strictly as a rule file
    #: with `include`s read: line N of the flattened configuration is (file, its line) = lines[N - 1];
    #: rules and problems use those numbers (file order across files) until `_real_lines`
    lines: list[tuple[str, int]] | None = None
    early: list[Problem] = field(default_factory=list)  # problems already in their own file's lines
    rule_sources: list[str] = field(default_factory=list)  # the file of each rule of the result, in order
    refused: list[Problem] = field(default_factory=list)  # the problems of rules the field checks refused

    def warn(self, line: int | None, code: str, message: str, name: str = "rules") -> None:
        self.problems.append(
            Problem("warning", name, f"line {line}: {message}", line=line, code=code, source=self.source)
        )

    def status(self, code: int, line: int, what: str, post_hint: bool = True) -> int | None:
        """The rule status for a foreign status (302 → 307 with a warning), None to skip."""
        if code in _KEPT:
            return code
        if code == 302:
            hint = (
                "; if it sent a client from a POST to its result, use 303 instead"
                if post_hint
                else ""
            )
            self.warn(
                line,
                "status.302-converted",
                f"{what}: 302 became 307 (temporary, the client repeats the same method and body); "
                f"redirectory never sends 302{hint}",
                name="status",
            )
            return 307
        if code == 410:
            self.warn(
                line,
                "import.status-skipped",
                f"{what}: 410 Gone is not a redirect: skipped "
                "(redirectory answers 404 for paths no rule matches)",
                name="status",
            )
            return None
        self.warn(
            line,
            "import.status-skipped",
            f"{what}: status {code} is not a redirect redirectory can send: skipped "
            "(use 301 or 308 for a permanent move, 303 or 307 for a temporary one)",
            name="status",
        )
        return None

    def add(self, line: int, data: dict[str, Any], order: tuple[int, ...] | None = None) -> None:
        """Check and add one rule; it goes in file order (`line`), or by `order` when given."""
        clean = {k: v for k, v in data.items() if v is not None}
        index = self.count
        self.count += 1
        rule, found = rule_from_mapping(
            clean,
            line=line,
            field_lines=dict.fromkeys(clean, line),
            index=index,
            source=self.source,
            position=index,
        )
        if rule is None:
            self.refused.extend(found)
        else:
            self.problems.extend(found)
        if rule is not None:
            self.rules.append(rule)
            self.order.append((*(order or (line,)), index))

    def result(self) -> tuple[RuleSet, list[Problem]]:
        # in file order (map entries where the map is written), as a rule file would give them
        ordered = [rule for _order, rule in sorted(zip(self.order, self.rules, strict=True), key=lambda o: o[0])]
        rules = tuple(replace(r, position=i) for i, r in enumerate(ordered))
        self.problems.sort(key=lambda p: (p.source != self.source, p.source or "", p.line if p.line is not None else 0))
        return RuleSet(rules), self.problems


#: Table problems a foreign file may have although its server runs it: a later duplicate (the server
#: uses the first: nginx and Apache try rules in file order, as Netlify and Vercel do) and a rule
#: whose target leads back to itself (the condition that stopped the loop there was not imported).
_SKIPPED_TABLE_CODES = {"duplicate": "the server uses the earlier one", "loop": "it would redirect forever here",
                        # a line a rule cannot hold (a target host with `_`, a regex RE2 refuses...): the rest imports
                        "to.invalid": "a rule cannot hold it", "from.invalid": "a rule cannot hold it",
                        "from_regex.invalid": "a rule cannot hold it", "to.placeholder": "a rule cannot hold it"}


def _skip_what_the_server_never_uses(b: _Builder) -> None:
    """Drop the rules the validator would refuse for `_SKIPPED_TABLE_CODES`, each with a warning that
    names both lines: foreign formats follow their own precedence; native rule files stay strict."""
    from redirectory.rules.validation import validate  # the table checks; importers run before them

    for _ in range(3):  # a loop broken by dropping one rule may leave none; duplicates go at once
        ruleset, _problems = b.result()
        found = [p for p in validate(ruleset, b.source) if p.is_error and p.code in _SKIPPED_TABLE_CODES
                 and not (p.code == "loop" and "across rules" in p.message)]  # a loop of several: whose?
        if not found:
            return
        in_result = sorted(range(len(b.rules)), key=lambda k: b.order[k])  # as `result` orders them
        drop = {in_result[p.index] for p in found if p.index is not None}
        for p in found:
            b.problems.append(Problem("warning", p.field, f"line {p.line}: {p.message}: skipped "
                                      f"({_SKIPPED_TABLE_CODES[p.code]})", line=p.line,
                                      code=f"import.{p.code}", source=b.source))
        kept = [k for k in range(len(b.rules)) if k not in drop]
        b.order = [b.order[k] for k in kept]
        b.rules = [b.rules[k] for k in kept]


def _named_groups(regex: str) -> tuple[str, list[str]] | None:
    """`regex` with unnamed capturing groups named g1, g2..., and the name of each group by
    number. None when the regex cannot be scanned (unbalanced brackets)."""
    out: list[str] = []
    names: list[str] = []
    i = 0
    n = len(regex)
    in_class = False
    while i < n:
        c = regex[i]
        if c == "\\":
            out.append(regex[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            # a ']' first in a class (or after '^') is literal
            if regex.startswith("^", i):
                out.append("^")
                i += 1
            if regex.startswith("]", i):
                out.append("]")
                i += 1
            continue
        if c == "(":
            if regex.startswith("(?P<", i) or (regex.startswith("(?<", i) and not regex.startswith("(?<=", i)
                                              and not regex.startswith("(?<!", i)):
                start = i + (4 if regex.startswith("(?P<", i) else 3)
                end = regex.find(">", start)
                if end == -1:
                    return None
                name = regex[start:end]
                names.append(name)
                out.append(f"(?P<{name}>")
                i = end + 1
                continue
            if regex.startswith("(?'", i):
                end = regex.find("'", i + 3)
                if end == -1:
                    return None
                name = regex[i + 3 : end]
                names.append(name)
                out.append(f"(?P<{name}>")
                i = end + 1
                continue
            if regex.startswith("(?", i):
                out.append(c)
                i += 1
                continue
            names.append(f"g{len(names) + 1}")
            out.append(f"(?P<{names[-1]}>")
            i += 1
            continue
        out.append(c)
        i += 1
    if in_class:
        return None
    return "".join(out), names


def _regex_rule(
    b: _Builder, line: int, what: str, regex: str, target: str, status: int, *, case_insensitive: bool = False,
    query: str | None = None, whole: str | None = None, host: str | None = None, host_required: bool = False,
    query_exact: bool = False, query_match: dict[str, str] | None = None, regex_query: bool = False,
) -> None:
    """Add a regex rule whose target may use $1..$9; warn and skip what cannot be converted.
    `whole`: the name of a group the target uses for the whole path (a regex searched anywhere in
    the path, as nginx and Apache search it, the same matches and groups, within `^(?P<whole>.*?(?:
    regex).*)$`). `host`: the one host the original answers the regex for: a host-specific regex
    (`^//host...`, see `_host_form`) where the regex allows it, else an any-host one with a warning.
    `query_match`, `query_exact`: the rule's query conditions (`rules.querymatch`); `regex_query`: the
    regex reads the path and query (`/a?x=1`), as a regex on nginx's `$request_uri` does."""
    scanned = _named_groups(regex)
    if scanned is None:
        b.warn(line, "import.regex", f"{what}: cannot read the regex {regex!r} (unbalanced brackets): skipped",
               name="from_regex")
        return
    converted, names = scanned
    problem: list[str] = []

    def group(m: re.Match[str]) -> str:
        number = int(m.group(1) or m.group(2))
        if number == 0 or number > len(names):
            problem.append(m.group(0))
            return m.group(0)
        return "{" + names[number - 1] + "}"

    to = _GROUP_REF.sub(group, target)
    hosted = _host_form(converted, host, whole) if host is not None else None
    if hosted is not None:
        converted = hosted
    elif whole is not None:
        converted = f"^(?P<{whole}>.*?(?:{converted}).*)$"
    if host is not None and hosted is None and not problem:
        why = ("its start, a `^` inside or an alternation around it keeps it from being matched after the "
               "host (`^//host...`)")
        if host_required:  # the original redirects for that host alone (a condition on the host)
            b.warn(line, "import.host", f"{what}: a regex rule for {host} alone cannot be written: {why}: "
                   "skipped", name="from_regex")
            return
        b.warn(line, "import.host", f"{what}: a regex rule answers every host, not only {host}: {why}: "
               "check it", name="from_regex")
    if problem:
        b.warn(line, "import.group", f"{what}: {problem[0]} in the target refers to no group of the regex "
               f"(it has {len(names)}): skipped", name="to")
        return
    try:
        compile_regex(converted)
    except re2.error as exc:
        reason = ("a look-around or back-reference, which RE2 (linear-time matching) does not have"
                  if re.search(r"\(\?<?[=!]|\\[1-9]", converted) else f"not valid RE2 syntax: {exc}")
        b.warn(line, "import.regex", f"{what}: the regex {regex!r} uses {reason}: skipped" if "look" in reason
               else f"{what}: the regex {regex!r} is {reason}: skipped", name="from_regex")
        return
    b.add(line, {"from_regex": converted, "regex_query": True if regex_query else None, "to": to,
                 "status": status, "case_insensitive": True if case_insensitive else None, "query": query,
                 "query_exact": True if query_exact else None, "query_match": query_match})


def _host_form(regex: str, host: str, whole: str | None) -> str | None:
    r"""`regex`, searched in the path as nginx and Apache search it, as a host-specific `from_regex`
    (`^//host...`, tried for that host alone, on `//host/path`): an anchored `^/a(.*)` ->
    `^//host(?:/a(.*))`, an unanchored `\.css$` -> `^//host.*?(?:\.css$)`; with `whole`, a group
    around the whole path. None (the caller keeps an any-host rule, or skips) for a `^` inside the
    regex, or an anchored one with an alternation beside its `^` (`^/a|/b`)."""
    anchored = regex.startswith("^")
    body = regex[1:] if anchored else regex
    depth = 0
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            end = body.find("]", i + 2)
            if end == -1:
                return None
            i = end + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "^" or (c == "|" and depth == 0 and anchored):
            return None
        i += 1
    path = f"(?:{body})" if anchored else f".*?(?:{body})"
    prefix = "^//" + re.escape(host)
    return f"{prefix}(?P<{whole}>{path}.*)$" if whole is not None else prefix + path


def _path(text: str) -> str:
    """A literal path from a foreign file as a `from` path: characters a pattern cannot hold raw
    (space, braces, non-ASCII...) percent-encoded; existing escapes kept."""
    return quote(text, safe="/:@!$&'()*+,;=-._~%")


def _variables(text: str) -> list[str]:
    return [m.group(0) for m in _VARIABLE.finditer(text)]


def _unknown_variables(b: _Builder, line: int, what: str, url: str, *, allow_groups: bool) -> bool:
    found = [v for v in _variables(url)]
    if not allow_groups:
        found += [m.group(0) for m in _GROUP_REF.finditer(url)]
    if found:
        b.warn(line, "import.variable", f"`{what}`: the target uses {found[0]}, which a rule cannot express "
               "(rules know the path's placeholders and regex groups only): skipped", name="to")
        return True
    return False
