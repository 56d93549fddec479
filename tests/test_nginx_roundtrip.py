"""`rules import --format nginx` reads our own nginx export back to the same rules: from, to,
status, methods (the request-method classes of the export), query and cache.

What the export cannot carry is left out of the comparison, and said here once: placeholder and
group names (nginx refers to captures by number: they come back as {p1}, {rest}, {g1}),
priority (the maps hold the order it made, which the imported rules keep by position),
`case_insensitive` of an exact path in the map's hash (nginx's hash ignores case for every
path), and rules that differ only by methods but otherwise match (their maps hold one entry,
read as one rule with the union of the methods: the same answers).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_process import cli
from redirectory.rules.engine import Engine, Request
from redirectory.rules.export import nginx
from redirectory.rules.importers import load_nginx
from redirectory.rules.matcher import compile_rule
from redirectory.rules.model import Problem, Rule, RuleSet
from redirectory.rules.parsing import loads
from redirectory.rules.patterns import Param
from test_export import EXAMPLES, MIXED_RULES, SETTINGS, random_table, rules

EXPORT_WARNING = "import.nginx-export"


# -- comparing tables --------------------------------------------------------------------------------
def canonical(rule: Rule) -> tuple[Any, ...]:
    """A rule as far as the export carries it (see the module docstring)."""
    compiled = compile_rule(rule)
    if compiled.pattern is not None:
        pattern = compiled.pattern
        names = {name: f"<{n}>" for n, name in enumerate(pattern.names)}
        source: tuple[Any, ...] = (
            pattern.host,
            tuple(None if isinstance(s, Param) else s for s in pattern.segments),
            pattern.tail is not None,
        )
        ci = None if pattern.is_exact else rule.case_insensitive
    else:
        names = {name: f"<{n}>" for name, n in compiled.regex.groupindex.items()}
        source = (re.sub(r"\(\?P?<\w+>", "(", rule.source_regex or ""),)
        ci = rule.case_insensitive
    to = re.sub(r"\{(\w+)\}", lambda m: names[m.group(1)], rule.to)
    return (source, to, rule.status, rule.query, compiled.cache_control, ci)


def table(rules: tuple[Rule, ...]) -> dict[tuple[Any, ...], tuple[str, ...] | None]:
    """Canonical rule -> its methods (the union over rules equal but for methods; None: all)."""
    out: dict[tuple[Any, ...], set[str] | None] = defaultdict(set)
    for rule in rules:
        key = canonical(rule)
        known = out[key]
        out[key] = None if rule.methods is None or known is None else known | set(rule.methods)
    return {key: None if methods is None else tuple(sorted(methods)) for key, methods in out.items()}


def exported(ruleset: RuleSet) -> tuple[Rule, ...]:
    """The rules the nginx export holds: enabled ones it did not leave out."""
    numbered = tuple(replace(r, position=i) for i, r in enumerate(ruleset.rules))
    skipped = {p.index for p in nginx(RuleSet(numbered)).skipped}
    return tuple(r for r in numbered if r.enabled and r.position not in skipped)


def probes(rules: tuple[Rule, ...]) -> list[Request]:
    """Requests that reach each rule (and its neighbours) with every method class in play."""
    paths = {"/", "/legacy/12", "/r/abc", "/r/12", "/w/x", "/a.php", "/q/]", "/s/ab/c1", "/c", "/r/x1"}
    hosts = {"localhost"}
    for rule in rules:
        pattern = compile_rule(rule).pattern
        if pattern is None:
            continue
        path = "/" + "/".join("x1" if isinstance(s, Param) else s for s in pattern.segments)
        paths.add(path)
        if pattern.tail is not None:
            paths.update({path.rstrip("/") or "/", path.rstrip("/") + "/t/u"})
        if pattern.host:
            hosts.add(pattern.host)
    methods = ("GET", "HEAD", "POST", "PUT", "DELETE", "PROPFIND")
    return [Request(m, p, q, host=h) for p in sorted(paths) for m in methods for q in ("", "z=1") for h in sorted(hosts)]


def answers(rules: tuple[Rule, ...], requests: list[Request]) -> list[tuple[Any, ...]]:
    engine = Engine(RuleSet(rules))
    out = []
    for request in requests:
        decision = engine.decide(request)
        cache = dict(decision.response.headers).get("cache-control") if decision.outcome == "redirect" else None
        out.append((request, decision.response.status, decision.location, cache))
    return out


def assert_same_rules(before: tuple[Rule, ...], after: tuple[Rule, ...]) -> None:
    assert table(after) == table(before)
    requests = probes(before)
    differences = [(b, a) for b, a in zip(answers(before, requests), answers(after, requests), strict=True) if b != a]
    assert differences == []


def reimport(ruleset: RuleSet) -> tuple[RuleSet, list[Problem]]:
    export = nginx(ruleset)
    return load_nginx(export.map_conf + export.return_conf, "redirectory-map.conf")


# -- through the CLI ---------------------------------------------------------------------------------
TABLES = {"guide": EXAMPLES.read_text(), "mixed": MIXED_RULES}


def rules_in(database: str, out: Path) -> tuple[Rule, ...]:
    """The table's rules, through `rules export` (YAML)."""
    done = cli("rules", "export", "--database", database, "-o", str(out))
    assert done.returncode == 0, done.stderr
    ruleset, problems = loads(out.read_text(), "yaml", str(out))
    assert problems == []
    return ruleset.rules


@pytest.mark.parametrize("name", sorted(TABLES))
@pytest.mark.parametrize("form", ["map file", "directory", "stdout"])
def test_cli_export_then_import_gives_the_same_rules(tmp_path: Path, name: str, form: str) -> None:
    source = tmp_path / "rules.yaml"
    source.write_text(TABLES[name])
    first, second = f"sqlite:///{tmp_path}/first.db", f"sqlite:///{tmp_path}/second.db"
    assert cli("rules", "apply", str(source), "--database", first).returncode == 0
    if form in ("map file", "directory"):
        done = cli("rules", "export", "--format", "nginx", "--database", first, "-o", str(tmp_path / "nginx"))
        conf = tmp_path / "nginx" / ("redirectory-map.conf" if form == "map file" else "")
    else:
        done = cli("rules", "export", "--format", "nginx", "--database", first)
        conf = tmp_path / "all.conf"
        conf.write_text(done.stdout)
    assert done.returncode == 0, done.stderr
    imported = cli("rules", "import", str(conf), "--format", "nginx", "--strict", "--database", second)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    original = loads(TABLES[name], "yaml", "t.yaml")[0]
    assert_same_rules(exported(original), rules_in(second, tmp_path / "second.yaml"))
    # and the imported table exports to the same nginx maps (the header counts what was left out)
    before, again = (cli("rules", "export", "--format", "nginx", "--database", db).stdout for db in (first, second))
    assert maps(again) == maps(before)


def maps(conf: str) -> list[str]:
    """The export's lines, modulo the order of exact paths in each map's hash (nginx hashes them)
    and the header line that counts the rules left out."""
    out: list[str] = []
    block: list[str] = []
    for line in conf.splitlines():
        if " rules exported." in line:
            continue
        if line.startswith('    "') and not line.startswith('    "~'):
            block.append(line)
            continue
        out.extend(sorted(block))
        block = []
        out.append(line)
    return out + sorted(block)


def test_a_directory_without_an_export_is_named(tmp_path: Path) -> None:
    done = cli("rules", "import", str(tmp_path), "--format", "nginx", "--database", f"sqlite:///{tmp_path}/t.db")
    assert done.returncode == 1 and "redirectory-map.conf" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "t.db").exists()


def test_cli_names_what_it_cannot_read_back(tmp_path: Path) -> None:
    """A class map that lacks a rule every method takes: a warning naming file:line, and --strict refuses."""
    ruleset = loads(EXAMPLES.read_text(), "yaml", "t.yaml")[0]
    text = nginx(ruleset).map_conf
    lines = text.splitlines()
    class_1 = lines.index("map $uri $redirectory_pattern_route_1 {")
    dropped = next(i for i in range(class_1, len(lines)) if "apiFoo" in lines[i])
    kept = next(i for i in range(len(lines)) if "apiFoo" in lines[i])
    del lines[dropped]
    conf = tmp_path / "redirectory-map.conf"
    conf.write_text("\n".join(lines) + "\n")
    done = cli("rules", "validate", str(conf), "--format", "nginx")
    assert f"{conf}:{kept + 1}: rules: warning: line {kept + 1}: `~^/apiFoo/v1(/(.*))?$" in done.stdout + done.stderr
    assert "(a rule without methods) but not in the map for DELETE, OPTIONS, PATCH, PUT" in done.stdout + done.stderr
    strict = cli("rules", "import", str(conf), "--format", "nginx", "--strict",
                 "--database", f"sqlite:///{tmp_path}/t.db")
    assert strict.returncode == 1


def test_cli_import_of_the_return_file_points_at_the_map_file(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(MIXED_RULES)
    database = f"sqlite:///{tmp_path}/t.db"
    assert cli("rules", "apply", str(tmp_path / "rules.yaml"), "--database", database).returncode == 0
    assert cli("rules", "export", "--format", "nginx", "--database", database, "-o", str(tmp_path)).returncode == 0
    done = cli("rules", "validate", str(tmp_path / "redirectory-return.conf"), "--format", "nginx")
    assert "redirectory-map.conf" in done.stdout + done.stderr


# -- the reader itself -------------------------------------------------------------------------------
def test_method_split_on_every_kind_of_rule() -> None:
    text = """\
rules:
  - {from: /x, to: /get, methods: [GET, HEAD]}
  - {from: /x, to: /other, status: 308, methods: [DELETE, POST]}
  - {from: /X, to: /upper, status: 307, case_insensitive: true}
  - {from: /x, to: /all, status: 307}
  - {from: '/p/{a}/{b}', to: '/q/{b}/{a}', methods: [GET]}
  - {from: '/p/{rest:path}', to: '/tail/{rest}?k=1', status: 307, cache: 5}
  - {from: '//h.example/{rest:path}', to: '/h/{rest}', status: 307, methods: [POST]}
  - {from: '//h.example/{rest:path}', to: '/h/{rest}', status: 301, methods: [GET], cache: 3600}
  - {from_regex: '^/re/(?P<n>[0-9]+)$', to: '/n/{n}#top', status: 303, methods: [PROPFIND]}
  - {from_regex: '^/rx/(?P<n>[0-9]+)$', to: '/any/$1/{n}', status: 303, query: drop}
  - {from_regex: '^/l/([^/]+)$', to: '/l', status: 307}
  - {from: '/l/{x}', to: '/pattern', status: 307, priority: -5}
"""
    ruleset, problems = loads(text, "yaml", "t.yaml")
    assert [p for p in problems if p.is_error] == []
    back, problems = reimport(ruleset)
    assert [p.format() for p in problems if p.code == EXPORT_WARNING] == []
    assert_same_rules(ruleset.rules, back.rules)
    by_to = {r.to: r for r in back.rules}
    assert by_to["/upper"].case_insensitive  # an exact path whose case-variants share the map: `~*`
    assert by_to["/q/{p2}/{p1}"].source == "/p/{p1}/{p2}"
    assert by_to["/h/{rest}"].source == "//h.example/{rest:path}"
    assert by_to["/l"].source_regex is not None  # a regex shaped like a pattern, after a pattern: a regex


def test_a_rule_in_several_class_maps_is_counted_once() -> None:
    ruleset, _ = loads("rules:\n  - {from: /a, to: /b, status: 308, methods: [GET, POST]}\n"
                       "  - {from: /a, to: /c, status: 308, methods: [GET]}\n", "yaml", "t.yaml")
    back, problems = reimport(ruleset)
    assert problems == []
    assert [(r.to, r.methods) for r in back.rules] == [("/b", ("GET", "POST")), ("/c", ("GET",))]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("$is_args$args", "$host"), "$host is not a variable"),
        (('"2" $redirectory_exact_route_2;', '"2" $redirectory_exact_route_9;'), "is not a route map"),
        (('"308 3600 /b', '"302 3600 /b'), "expected the value"),
    ],
)
def test_what_is_not_as_exported_is_named(change: tuple[str, str], message: str) -> None:
    ruleset, _ = loads("rules:\n  - {from: /a, to: /b, status: 308, methods: [GET]}\n"
                       "  - {from: /a, to: /c, status: 308, methods: [POST]}\n", "yaml", "t.yaml")
    text = nginx(ruleset).map_conf
    assert change[0] in text
    _, problems = load_nginx(text.replace(change[0], change[1], 1), "m.conf")
    found = [p for p in problems if p.code == EXPORT_WARNING]
    assert len(found) == 1 and message in found[0].message and found[0].line is not None


# -- generated tables --------------------------------------------------------------------------------
def exact_case_sensitive(ruleset: RuleSet) -> RuleSet:
    """Exact rules without case_insensitive: the export's hash cannot carry it (module docstring)."""
    out = []
    for rule in ruleset.rules:
        if rule.source is not None and "{" not in rule.source:
            rule = replace(rule, case_insensitive=False)
        out.append(rule)
    return RuleSet(tuple(out))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_tables_round_trip(seed: int) -> None:
    ruleset = exact_case_sensitive(random_table(random.Random(seed), 120))
    back, problems = reimport(ruleset)
    assert [p.format() for p in problems if p.code == EXPORT_WARNING] == []
    assert_same_rules(exported(ruleset), back.rules)


@SETTINGS
@given(rule_list=st.lists(rules(), max_size=8))
def test_generated_tables_round_trip(rule_list: list[Rule]) -> None:
    ruleset = exact_case_sensitive(RuleSet(tuple(rule_list)))
    back, problems = reimport(ruleset)
    assert [p.format() for p in problems if p.code == EXPORT_WARNING] == []
    assert_same_rules(exported(ruleset), back.rules)



def test_an_entry_whose_order_differs_between_classes_is_one_rule_per_class() -> None:
    """/x -> /y comes before /x -> /z for GET and after it for POST: two rules, as in the table."""
    ruleset, _ = loads(
        "rules:\n"
        "  - {from: /x, to: /y, status: 308, methods: [GET], priority: 5}\n"
        "  - {from: /x, to: /z, status: 308, methods: [GET, POST], priority: 3}\n"
        "  - {from: /x, to: /y, status: 308, methods: [POST], priority: 1}\n",
        "yaml",
        "t.yaml",
    )
    back, problems = reimport(ruleset)
    assert problems == []
    assert [(r.to, r.methods) for r in back.rules] == [("/y", ("GET",)), ("/z", ("GET", "POST")), ("/y", ("POST",))]
    requests = probes(ruleset.rules)
    assert answers(back.rules, requests) == answers(ruleset.rules, requests)
