"""`rules export --format netlify`: a `_redirects` file that follows Netlify's documented syntax and
reads back, through our own Netlify importer (`rules import --format netlify`), to rules that answer
every request as the original table does; each rule Netlify cannot express is named.

No Netlify server runs here: the format is checked against the rules of Netlify's redirect
documentation (one `FROM TO STATUS` line a rule, `#` comments, `:name` placeholders and a final `*`
splat in FROM, `:splat` and `:name` in TO, `!` to force, first match wins)."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gateway_process import cli
from redirectory.rules.engine import Engine, Request
from redirectory.rules.export_netlify import netlify
from redirectory.rules.importers import load_netlify
from redirectory.rules.model import Rule, RuleSet
from redirectory.rules.parsing import loads
from test_export import SETTINGS, random_request, random_table, rules

#: A `_redirects` line as Netlify's documentation describes it (what the export writes of it).
LINE = re.compile(r"(?P<from>(?:https://[a-z0-9.-]+)?/\S*) (?P<to>(?:https?://|/)\S*) (?P<status>301)!")


def netlify_friendly(ruleset: RuleSet) -> RuleSet:
    """The table with what Netlify cannot say taken off, so that every rule is exported; without
    the rules whose `from` matches their own target (`/{rest:path}`), which the reader skips."""
    return RuleSet(tuple(
        replace(r, methods=None, status=301, query="keep", case_insensitive=False, source_regex=None,
                source=r.source if r.source is not None else "/re/{n}", to=r.to if r.source is not None else "/n/{n}")
        for r in ruleset.rules
        if not re.match(r"(//h1\.test)?/(\{|$)", r.source or "/re") and not (r.source or "").endswith("/")
    ))


def exported(ruleset: RuleSet) -> tuple[Rule, ...]:
    numbered = tuple(replace(r, position=i) for i, r in enumerate(ruleset.rules))
    skipped = {p.index for p in netlify(RuleSet(numbered)).skipped}
    return tuple(r for r in numbered if r.enabled and r.position not in skipped)


def check_format(text: str) -> None:
    """Every line is a comment, empty, or a redirect written as Netlify's documentation says."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.fullmatch(line)
        assert m, line
        source, target = m.group("from"), m.group("to")
        path = re.sub(r"^https://[^/]+", "", source)
        segments = path.split("/")[1:]
        assert "*" not in segments[:-1] and all("*" not in s or s == "*" for s in segments), line
        assert all(not s.startswith(":") or re.fullmatch(r":[A-Za-z_]\w*", s) for s in segments), line
        names = {s[1:] for s in segments if s.startswith(":")} | ({"splat"} if segments[-1:] == ["*"] else set())
        used = set(re.findall(r":([A-Za-z_]\w*)", re.sub(r"^https?://[^/]+", "", target)))
        assert used <= names, line


def same_answers(before: tuple[Rule, ...], after: tuple[Rule, ...], requests: list[Request]) -> None:
    """Status and Location (Netlify carries no Cache-Control) from the engine, for each request but
    those whose path ends in a slash: Netlify answers `/x/` with the line for `/x` (the export's
    header states it), which the reader models."""
    old, new = Engine(RuleSet(before)), Engine(RuleSet(after))
    differences = []
    for request in requests:
        if request.path != "/" and request.path.endswith("/"):
            continue
        a, b = old.decide(request), new.decide(request)
        if (a.response.status, a.location) != (b.response.status, b.location):
            differences.append((request, (a.response.status, a.location), (b.response.status, b.location)))
    assert differences == []


def probes(rules: tuple[Rule, ...], rng: random.Random) -> list[Request]:
    requests = [Request(*_split(random_request(rng))) for _ in range(300)]
    for rule in rules:
        path = re.sub(r"\{\w+\}", "x1", re.sub(r"\{\w+:path\}", "t/u", rule.source or "/"))
        host = "localhost"
        if path.startswith("//"):
            host, path = path[2:].split("/", 1)[0], "/" + path[2:].split("/", 1)[1] if "/" in path[2:] else "/"
        for p in {path, path.rstrip("/") or "/", path.replace("/t/u", "")}:
            requests += [Request("GET", p, q, host=host) for q in ("", "z=1")]
    return requests


def _split(req: tuple[str, str, str, str]) -> tuple[str, str, str, str]:
    method, path, query, host = req
    return method, path, query, host


# -- the reader gives the same table back ----------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_tables_read_back_to_the_same_answers(seed: int) -> None:
    ruleset = netlify_friendly(random_table(random.Random(seed), 120))
    export = netlify(ruleset)
    check_format(export.text)
    back, problems = load_netlify(export.text, "_redirects")
    assert [p.format() for p in problems if p.is_error] == []
    # what the reader leaves out is a line no request reaches (Netlify uses the earlier one)
    assert {p.code for p in problems} <= {"import.duplicate", "import.shadowed"}, [p.format() for p in problems]
    kept = exported(ruleset)
    assert {p.code for p in export.skipped} <= {"netlify.shadowed"}  # rules no request reaches
    assert len(kept) > len(ruleset.rules) / 2
    same_answers(kept, back.rules, probes(kept, random.Random(seed)))


@SETTINGS
@given(rule_list=st.lists(rules(), max_size=8))
def test_generated_tables_read_back_to_the_same_answers(rule_list: list[Rule]) -> None:
    ruleset = RuleSet(tuple(rule_list))
    export = netlify(ruleset)  # never raises
    check_format(export.text)
    kept = exported(ruleset)
    back, problems = load_netlify(export.text, "_redirects")
    # a rule that matches its own target redirects forever: the reader leaves it out on purpose
    assume(not any(p.code == "import.loop" for p in problems))
    if kept:
        assert [p.format() for p in problems if p.is_error] == []
    same_answers(kept, back.rules if kept else (), probes(kept, random.Random(0))[300:] + [
        Request("GET", "/", ""), Request("POST", "/a/b", "z=1")])


def test_lines_follow_precedence_not_file_order() -> None:
    """Netlify applies the first line that matches: the export writes the gateway's choice first."""
    ruleset, _ = loads(
        "rules:\n"
        "  - {from: '/a/{rest:path}', to: /tail}\n"
        "  - {from: '/a/{x}', to: '/one/{x}'}\n"
        "  - {from: /a/b, to: /exact}\n"
        "  - {from: '//h.example/a/{rest:path}', to: '/h/{rest}'}\n",
        "yaml", "t.yaml")
    lines = [line for line in netlify(ruleset).text.splitlines() if line and not line.startswith("#")]
    assert lines == [
        "https://h.example/a/* /h/:splat 301!",
        "/a/b /exact 301!",
        "/a/:x /one/:x 301!",
        "/a/* /tail 301!",
    ]


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        ("{from: /m, to: /n, methods: [GET]}", "netlify.methods"),
        ("{from_regex: '^/r/(?P<n>[0-9]+)$', to: '/n/{n}'}", "netlify.regex"),
        ("{from: /w, to: /n, starts: '2020-01-01T00:00:00Z'}", "netlify.window"),
        ("{from: /d, to: /n, query: drop}", "netlify.query"),
        ("{from: /Case, to: /n, case_insensitive: true}", "netlify.case"),
        ("{from: /t, to: /n, status: 307}", "netlify.status"),
        ("{from: /t, to: /n, status: 308}", "netlify.status"),
        ("{from: /t, to: /n, status: 303}", "netlify.status"),
        ("{from: '/q/{id}', to: '/r?id={id}'}", "netlify.placeholder"),
        ("{from: '/q/{id}', to: '/r/{id}x'}", "netlify.placeholder"),
        ("{from: '/q/{splat}', to: '/r/{splat}'}", "netlify.placeholder"),
        ("{from: '/q/{id}', to: '/r/:id/{id}'}", "netlify.placeholder"),
        ("{from: '/:x', to: /r}", "netlify.from"),
        ("{from: /ok/, to: /other}", "netlify.slash"),
    ],
)
def test_each_rule_left_out_is_named(rule: str, code: str) -> None:
    ruleset, problems = loads(f"rules:\n  - {{from: /ok, to: /fine}}\n  - {rule}\n", "yaml", "t.yaml")
    assert [p for p in problems if p.is_error] == []
    export = netlify(ruleset)
    (skip,) = export.skipped
    assert skip.code == code and skip.index == 1 and skip.line == 3
    assert "(rule #2) is not exported to Netlify: " in skip.message and "; " in skip.message.split(": ", 1)[1]
    assert "/ok /fine 301!" in export.text.splitlines()


# -- through the CLI -------------------------------------------------------------------------------
def test_cli_export_then_import(tmp_path: Path) -> None:
    source = tmp_path / "rules.yaml"
    source.write_text(
        "rules:\n"
        "  - {from: '/blog/{year}/{slug}', to: '/posts/{slug}-{year}'}\n"
        "  - {from: '/docs/{rest:path}', to: 'https://docs.example/{rest}', cache: 60}\n"
        "  - {from: '//old.example/{rest:path}', to: 'https://new.example/{rest}?from=old'}\n"
        "  - {from: /api, to: /v2, methods: [POST], status: 308}\n"
    )
    database = f"sqlite:///{tmp_path}/t.db"
    assert cli("rules", "apply", str(source), "--database", database).returncode == 0
    done = cli("rules", "export", "--format", "netlify", "--database", database, "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "_redirects" in done.stderr and "Traceback" not in done.stderr
    (warning,) = [line for line in done.stderr.splitlines() if "is not exported to Netlify" in line]
    assert "/api [POST] -> 308 /v2 (rule " in warning
    text = (tmp_path / "_redirects").read_text()
    check_format(text)
    second = f"sqlite:///{tmp_path}/second.db"
    imported = cli("rules", "import", str(tmp_path / "_redirects"), "--format", "netlify", "--database", second)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    stdout = cli("rules", "convert", str(source), "--to", "netlify")
    assert stdout.returncode == 0 and stdout.stdout == text
    original = loads(source.read_text(), "yaml", "r.yaml")[0]
    back = load_netlify(text, "_redirects")[0]
    same_answers(exported(original), back.rules, [
        Request("GET", "/blog/2020/hello", "a=1"), Request("GET", "/docs", ""), Request("PUT", "/docs/x/y", ""),
        Request("GET", "/z", "", host="old.example"), Request("GET", "/z", "k=2", host="old.example"),
        Request("GET", "/z", "", host="other.example"),
    ])
