"""YAML alias bombs ("billion laughs") and recursive aliases, everywhere YAML is read: the CLI
(`rules validate`, `rules apply`, `rules import`), the admin import of the real `serve`, and
`check --openapi`. Each is refused at once with one clear FILE:LINE error naming the alias,
without memory growth and with nothing changed; legitimate anchors and merges still load.

Before `redirectory.yamlsafe` a 1.8 KB file (`rule_bomb(4, 30, 30)`) cost `rules validate` 4 s
and a 2.4 KB one (`rule_bomb(4, 40, 40)`) 23 s; the checker's OpenAPI loader expanded the classic
billion laughs (1e9 strings) outright. Bounds here are generous (the issue asks < 1 s; a loaded
2-core machine gets 5 s) and the numbers go in the report, not in assertions.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_process import BIN, cli, start_serve
from redirectory import yamlsafe
from redirectory.check.srcmap import SourceError, load
from redirectory.rules.parsing import loads

SECONDS = 5.0  # the issue says < 1 s; generous for a loaded 2-core machine
GROWTH_MB = 50  # over the same command on a tiny valid file; an expanded bomb took hundreds


def laughs(levels: int = 9, width: int = 9) -> list[str]:
    """The classic: `a0` holds `width` strings, each next anchor `width` aliases of the last."""
    out = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    out += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return out


def rule_bomb(levels: int = 9, width: int = 9, rules: int = 9) -> str:
    """A rule file whose rules' `tags` are the bomb (so the parser would walk it)."""
    lines = [*laughs(levels, width), "rules:"]
    lines += [f"  - {{from: /r{i}, to: /s{i}, tags: *a{levels - 1}}}" for i in range(rules)]
    return "\n".join(lines) + "\n"


BOMBS = {
    "billion-laughs": rule_bomb(),  # 9 levels of 9: 1e9 values from ~700 bytes
    "wide": rule_bomb(4, 30, 30),  # 4 levels of 30, in 30 rules
}
ALIAS_ERROR = re.compile(r"(?P<file>\S+):(?P<line>\d+): file: the alias \*a\d+ takes the values .* aliases add past")


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float
    peak_mb: float


def run_measured(tmp: Path, *args: str) -> Run:
    """The installed command, with its wall time and its own peak RSS (wait4's rusage)."""
    out, err = tmp / "stdout.txt", tmp / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        started = time.monotonic()
        proc = subprocess.Popen([str(BIN), *args], stdout=stdout, stderr=stderr,
                                env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(proc.returncode, out.read_text(), err.read_text(), seconds, usage.ru_maxrss / 1024)


@pytest.fixture(scope="module")
def baseline_mb(tmp_path_factory: pytest.TempPathFactory) -> float:
    """The CLI's own peak RSS on a tiny valid file (imports and all)."""
    tmp = tmp_path_factory.mktemp("baseline")
    path = tmp / "small.yaml"
    path.write_text("rules:\n  - {from: /a, to: /b}\n")
    run = run_measured(tmp, "rules", "validate", str(path))
    assert run.code == 0, run.err
    return run.peak_mb


def assert_one_alias_error(run: Run, path: Path, baseline_mb: float) -> None:
    lines = [line for line in (run.out + run.err).splitlines() if re.match(rf"{re.escape(str(path))}:\d+:", line)]
    assert len(lines) == 1, run.out + run.err
    match = ALIAS_ERROR.match(lines[0])
    assert match, lines[0]
    assert 1 <= int(match["line"]) <= len(path.read_text().splitlines())
    assert "*a" in path.read_text().splitlines()[int(match["line"]) - 1]  # the line holds an alias
    assert "Traceback" not in run.out + run.err
    assert run.seconds < SECONDS and run.peak_mb < baseline_mb + GROWTH_MB, (run.seconds, run.peak_mb, baseline_mb)


# -- the CLI ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("bomb", BOMBS)
def test_validate_refuses_a_bomb_at_once(tmp_path: Path, bomb: str, baseline_mb: float) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMBS[bomb])
    run = run_measured(tmp_path, "rules", "validate", str(path))
    assert run.code == 1
    assert_one_alias_error(run, path, baseline_mb)


def test_apply_and_import_refuse_a_bomb_and_change_nothing(tmp_path: Path, baseline_mb: float) -> None:
    database = f"sqlite:///{tmp_path}/t.db"
    good = tmp_path / "good.yaml"
    good.write_text("rules:\n  - {from: /kept, to: /there, status: 308}\n")
    assert cli("rules", "apply", str(good), "--database", database).returncode == 0
    before = cli("rules", "export", "--format", "json", "--database", database).stdout
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMBS["billion-laughs"])
    for command in ("apply", "import"):
        run = run_measured(tmp_path, "rules", command, str(path), "--database", database)
        assert run.code == 1
        assert_one_alias_error(run, path, baseline_mb)
    assert cli("rules", "export", "--format", "json", "--database", database).stdout == before


def test_recursive_aliases_are_refused_with_their_line() -> None:
    for text, line in [
        ("a: &a [1, *a]\nrules: []\n", 1),
        ("x: &x\n  <<: *x\nrules: []\n", 2),  # a merge of the mapping into itself
        ("rules:\n  - &r {from: /a, to: /b, tags: [*r]}\n", 2),
    ]:
        _ruleset, problems = loads(text, "yaml", "r.yaml")
        assert [(p.line, p.field, p.code) for p in problems] == [(line, "file", "aliases")], text
        assert "recursive alias" in problems[0].message


def test_the_bound_is_exact() -> None:
    """An anchor of 100 values (a list of 99) repeated n times adds 100 n values; the document
    writes 104 (the list, its 99 items, the mapping, two keys, the list of aliases)."""
    def document(repeats: int) -> str:
        return f"a: &a [{', '.join(['x'] * 99)}]\nb: [{', '.join(['*a'] * repeats)}]\n"

    assert yamlsafe.ALIAS_FLOOR == 10_000 and yamlsafe.ALIAS_RATIO * 104 < yamlsafe.ALIAS_FLOOR
    assert yamlsafe.compose(document(100)) is not None
    with pytest.raises(yamlsafe.YamlError, match=r"the alias \*a takes .* past 10000") as refused:
        yamlsafe.compose(document(101))
    assert (refused.value.line, refused.value.code) == (2, "aliases")


def test_merges_and_anchors_in_rule_files_still_work() -> None:
    rules = "\n".join(f"  - {{<<: *d, from: /m/{i}, to: /n/{i}}}" for i in range(2000))
    ruleset, problems = loads(f"defaults: &d {{status: 308, methods: [POST], tags: [a, b]}}\nrules:\n{rules}\n",
                              "yaml")
    assert [p.code for p in problems] == ["unknown-field"]  # `defaults` itself, as before
    assert len(ruleset.rules) == 2000 and {(r.status, r.methods, r.tags) for r in ruleset.rules} == {
        (308, ("POST",), ("a", "b"))}


# -- the admin import of the real serve -----------------------------------------------------------------
def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 1024  # type: ignore[index]


def test_admin_import_refuses_a_bomb_and_keeps_serving(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {from: /kept, to: /there, status: 308}\n")
    served = start_serve(tmp_path, "--rules", str(rules))
    try:
        key = cli("keys", "create", "bombs", "--scope", "write", "--database", served.database)
        assert key.returncode == 0, key.stderr
        headers = {"authorization": f"Bearer {key.stdout.strip().splitlines()[-1]}",
                   "content-type": "application/yaml"}
        revision = served.health()["revision"]
        peak_before = peak_rss_mb(served.proc.pid)
        for bomb in BOMBS.values():
            started = time.monotonic()
            posted = httpx.post(served.admin + "/api/v1/rule-imports", content=bomb.encode(), headers=headers,
                                timeout=30)
            assert posted.status_code == 202, posted.text
            report = httpx.get(served.admin + posted.headers["location"], headers=headers, timeout=30,
                               follow_redirects=True)
            deadline = time.monotonic() + 60
            while report.json().get("status") == "RUNNING" and time.monotonic() < deadline:
                time.sleep(0.05)
                report = httpx.get(served.admin + posted.headers["location"], headers=headers, timeout=30,
                                   follow_redirects=True)
            elapsed = time.monotonic() - started
            body = report.json()
            assert body["status"] == "FAILED" and body["added"] == 0, body
            [error] = body["errors"]
            assert ALIAS_ERROR.match(error["detail"]) and error["detail"].startswith("upload:"), error
            assert elapsed < SECONDS, elapsed
        assert peak_rss_mb(served.proc.pid) - peak_before < 100
        assert served.health()["revision"] == revision
        moved = httpx.get(served.base + "/kept", follow_redirects=False, timeout=10)
        assert (moved.status_code, moved.headers["location"]) == (308, "/there")
    finally:
        served.stop()


# -- check --openapi ------------------------------------------------------------------------------------
OPENAPI_HEAD = 'openapi: 3.0.3\ninfo: {title: t, version: "1"}\n'


def test_check_openapi_refuses_a_bomb(tmp_path: Path, baseline_mb: float) -> None:
    path = tmp_path / "openapi.yaml"
    lines = ["x-bomb:", *(f"  {line}" for line in laughs())]
    path.write_text(OPENAPI_HEAD + "\n".join(lines) + "\npaths: {}\n")
    run = run_measured(tmp_path, "check", "--openapi", str(path))
    assert run.code == 2, run.out + run.err
    [line] = run.err.strip().splitlines()
    assert re.fullmatch(rf"error: {re.escape(str(path))}:\d+: the alias \*a\d+ takes the values .*", line), line
    assert run.seconds < SECONDS and run.peak_mb < baseline_mb + GROWTH_MB, (run.seconds, run.peak_mb)
    path.write_text(OPENAPI_HEAD + "paths:\n  /a: &p\n    get: {responses: {'200': *p}}\n")
    with pytest.raises(SourceError, match=r"openapi.yaml:5: the alias \*p .*recursive alias"):
        load(path)


def test_check_openapi_reads_legitimate_anchors_as_written_out(tmp_path: Path) -> None:
    with_aliases = OPENAPI_HEAD + """\
x-defaults:
  location: &location {required: true, schema: {type: string, format: uri}}
  moved: &moved
    description: moved
    headers: {Location: *location}
paths:
  /old:
    get:
      responses:
        "301":
          <<: *moved
          headers: {Location: *location, Cache-Control: {schema: {type: string}}}
  /older:
    post:
      responses: {"302": *moved}
"""
    written_out = yaml.safe_load(with_aliases)  # PyYAML's own reading, aliases and merges expanded
    aliased, plain = tmp_path / "aliased.yaml", tmp_path / "plain.json"
    aliased.write_text(with_aliases)
    plain.write_text(json.dumps(written_out))
    data, lines = load(aliased)
    assert data == written_out and lines["/paths/~1old/get/responses/301"] == 13
    results = []
    for path in (aliased, plain):
        done = cli("check", "--openapi", str(path), "--format", "json")
        assert done.returncode in (0, 1), done.stderr
        results.append(sorted(f["id"] for f in json.loads(done.stdout)["findings"]))
    assert results[0] == results[1] and "S302-FORBIDDEN" in results[0]


# -- the loader never raises anything but YamlError ---------------------------------------------------
PIECES = ["a", ": ", "- ", "\n", "  ", "&a ", "&b ", "*a", "*b", " *a", "[", "]", "{", "}", ", ", "<<: ",
          "? ", '"', "'", "!!str ", "!foo ", "---\n", "#", "\t", "\x00", "\u2028", "\ufeff", "%YAML 1.1\n"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_compose_raises_only_yaml_error_and_bounds_expansion(text: str) -> None:
    try:
        events = list(yaml.parse(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError:
        events = []
    anchored = any(getattr(e, "anchor", None) and not isinstance(e, yaml.AliasEvent) for e in events)
    if anchored and any(isinstance(e, yaml.AliasEvent) for e in events):  # the pre-check never misses
        assert yamlsafe._ANCHOR.search(text) and yamlsafe._ALIAS.search(text)
    try:
        node = yamlsafe.compose(text)
    except yamlsafe.YamlError as exc:
        assert exc.code in ("syntax", "aliases") and (exc.line is None or exc.line >= 1)
        return
    if node is not None:  # accepted: finite, and within the bound
        written = len(events)  # more than the values the text writes
        assert expanded(node, set()) <= written + max(yamlsafe.ALIAS_FLOOR, yamlsafe.ALIAS_RATIO * written)
    _ruleset, problems = loads(text, "yaml")
    assert all(p.code != "internal" for p in problems)


def expanded(node: yaml.Node, path: set[int]) -> int:
    assert id(node) not in path, "a recursive alias was accepted"
    if isinstance(node, yaml.ScalarNode):
        return 1
    inner = path | {id(node)}
    children = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
    return 1 + sum(expanded(child, inner) for child in children)
