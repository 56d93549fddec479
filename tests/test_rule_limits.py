"""Limits on a rule's text fields (`model.FIELD_LIMITS`, issue 13 points 6 and 9): sizes, item
counts and control characters, refused with the same field error by every way in: rule files in
every format, the CLI (`rules validate`, `apply`, `import`), and the admin API of the real
`serve` (POST, rules-bulk, rule-imports) on SQLite and PostgreSQL. A rule at the limits is
accepted and stored intact (a `from` of the largest size still fits PostgreSQL's index).
"""

from __future__ import annotations

import json
import os
import random
import re
import string
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from conftest import PG_ENV, postgres_base_url
from gateway_process import ServeProcess, cli, start_serve
from redirectory.rules.model import FIELD_LIMITS
from redirectory.rules.parsing import loads

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
SECONDS = 5.0  # generous for a loaded 2-core machine: refusing a 10 MB field is a length check


def at_size(name: str, size: int, char: str = "a") -> str:
    """A valid value of field `name` that is `size` UTF-8 bytes long (`char` repeated)."""
    prefix = {"from": "/", "to": "/", "from_regex": "^/"}.get(name, "")
    count, rest = divmod(size - len(prefix), len(char.encode()))
    return prefix + char * count + "b" * rest


def rule_with(name: str, value: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"from": "/limits", "to": "/elsewhere", "status": 308}
    if name == "from_regex":
        del rule["from"]
    rule[name] = value
    return rule


def problems_of(rule: dict[str, Any]) -> list[tuple[int | None, str, str]]:
    _ruleset, found = loads(json.dumps({"rules": [rule]}, indent=1), "json", "r.json")
    return [(p.line, p.field, p.code) for p in found]


def line_of(rule: dict[str, Any], name: str) -> int:
    """The line of field `name` in `problems_of`'s file."""
    lines = json.dumps({"rules": [rule]}, indent=1).splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.lstrip().startswith(f'"{name}":'))


# -- sizes, items and characters, field by field ---------------------------------------------------
@pytest.mark.parametrize("name", FIELD_LIMITS)
@pytest.mark.parametrize("char", ["a", "é", "😀"])  # 1, 2 and 4 bytes: the limits count UTF-8 bytes
def test_each_field_takes_its_limit_and_refuses_one_byte_more(name: str, char: str) -> None:
    limit = FIELD_LIMITS[name]

    def value(size: int) -> Any:
        text = at_size(name, size, "A" if name == "methods" else char)
        return [text] if limit.items is not None else text

    assert problems_of(rule_with(name, value(limit.size))) == []
    over = rule_with(name, value(limit.size + 1))
    assert problems_of(over) == [(line_of(over, name), name, "too-long")]


@pytest.mark.parametrize("name", [n for n, limit in FIELD_LIMITS.items() if limit.items is not None])
def test_list_fields_take_their_item_count_and_refuse_one_more(name: str) -> None:
    count = FIELD_LIMITS[name].items
    assert count is not None
    items = [f"X{i}" for i in range(count + 1)]
    assert problems_of(rule_with(name, items[:count])) == []
    found = problems_of(rule_with(name, items))
    assert [(f, code) for _line, f, code in found] == [(name, "too-many")]


@pytest.mark.parametrize("name", FIELD_LIMITS)
def test_control_characters_and_lone_surrogates_are_refused(name: str) -> None:
    limit = FIELD_LIMITS[name]
    for code in [*range(0x20), 0x7F, 0xD800, 0xDFFF]:
        char = chr(code)
        text = at_size(name, 8) + char + "z"
        rule = rule_with(name, [text] if limit.items is not None else text)
        found = problems_of(rule)
        if char in limit.controls:
            assert found == [], (name, code)
        else:
            assert [(f, c) for _line, f, c in found] == [(name, "control")], (name, code, found)


def test_a_refused_field_is_not_parsed_and_the_others_are_still_checked() -> None:
    # a 10 MB regex is not compiled (that would take seconds), and the 302 is still reported
    started = time.monotonic()
    found = problems_of({"from_regex": "^/(" + "a|" * 5_000_000 + "b)$", "to": "/x", "status": 302})
    assert time.monotonic() - started < SECONDS
    assert sorted((f, c) for _line, f, c in found) == [("from_regex", "too-long"), ("status", "status.302")]
    # the size is checked before the characters: a million line breaks (which a note may hold) are
    # not scanned one by one
    started = time.monotonic()
    assert [(f, c) for _l, f, c in problems_of(rule_with("note", "\n" * 1_000_000 + "x"))] == [("note", "too-long")]
    assert time.monotonic() - started < SECONDS


def test_the_docs_table_states_every_limit() -> None:
    text = DOCS.read_text()
    for name, limit in FIELD_LIMITS.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name}` |")
                    and "bytes" in line), None)
        assert row is not None, f"docs/rules.md has no limits row for `{name}`"
        numbers = [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", row)]
        assert limit.size in numbers and (limit.items is None or limit.items in numbers), row


# -- the CLI ---------------------------------------------------------------------------------------
BIG_TO = "/x" + "a" * (10 * 1024 * 1024)
CLI_CASES = {
    "10 MB to (yaml)": ("r.yaml", f"rules:\n  - from: /new\n    to: {BIG_TO}\n", 3, "to"),
    "10 MB to (json)": ("r.json", json.dumps({"rules": [{"from": "/new", "to": BIG_TO}]}, indent=1), 5, "to"),
    "NUL in a note (yaml)": ("r.yaml", 'rules:\n  - from: /new\n    to: /x\n    note: "a\\0b"\n', 4, "note"),
    "NUL in a note (csv)": ("r.csv", "from,to,note\n/new,/x,\"a\0b\"\n", 2, "note"),
}


def assert_refused(done: Any, path: Path, line: int, field: str, elapsed: float) -> None:
    """Exit 1 with one error line, `FILE:LINE: field: must ...`, short, fast, no traceback."""
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if re.match(rf"{re.escape(str(path))}:\d", ln)]
    assert len(lines) == 1 and lines[0].startswith(f"{path}:{line}: {field}: must "), lines
    assert len(lines[0]) < 300 and "Traceback" not in done.stderr
    assert elapsed < SECONDS, elapsed


def timed_cli(*args: str) -> tuple[Any, float]:
    started = time.monotonic()
    done = cli(*args)
    return done, time.monotonic() - started


def test_validate_refuses_with_one_line_naming_file_line_and_field(tmp_path: Path) -> None:
    for name, text, line, field in CLI_CASES.values():
        path = tmp_path / name
        path.write_text(text)
        done, elapsed = timed_cli("rules", "validate", str(path))
        assert_refused(done, path, line, field, elapsed)


def test_apply_and_import_refuse_the_same_and_change_nothing(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/t.db"
    good = tmp_path / "good.yaml"
    good.write_text("rules:\n  - {from: /kept, to: /there, status: 308}\n")
    assert cli("rules", "apply", str(good), "--database", database).returncode == 0
    before = cli("rules", "export", "--format", "json", "--database", database).stdout
    for case in ("10 MB to (yaml)", "NUL in a note (csv)"):
        name, text, line, field = CLI_CASES[case]
        path = tmp_path / name
        path.write_text(text)
        for command in ("apply", "import"):
            done, elapsed = timed_cli("rules", command, str(path), "--database", database)
            assert_refused(done, path, line, field, elapsed)
    assert cli("rules", "export", "--format", "json", "--database", database).stdout == before


def test_a_csv_cell_too_long_for_the_csv_reader_names_its_line(tmp_path: Path) -> None:
    _ruleset, found = loads(f"from,to\n/a,/b\n/new,{BIG_TO}\n", "csv", "r.csv")
    assert [(p.line, p.field, p.code) for p in found] == [(3, "file", "syntax")]
    assert "no field may hold more than 8192 bytes" in found[0].message


# -- the admin API, SQLite and PostgreSQL ----------------------------------------------------------------
@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp(f"limits-{request.param}")
    rules = tmp / "rules.yaml"
    rules.write_text("rules:\n  - {from: /kept, to: /there, status: 308}\n")
    if request.param == "sqlite":
        proc = start_serve(tmp, "--rules", str(rules))
        yield proc
        proc.stop()
        return
    base, reason = postgres_base_url()
    if base is None:
        if os.environ.get(PG_ENV):
            pytest.fail(reason)
        pytest.skip(reason)
    libpq = base.set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    try:
        proc = start_serve(tmp, "--rules", str(rules), database=url)
        yield proc
        proc.stop()
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module")
def api(served: ServeProcess) -> Iterator[httpx.Client]:
    done = cli("keys", "create", "limits", "--scope", "write", "--database", served.database)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1].strip()
    with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {key}"}, timeout=60,
                      follow_redirects=True) as client:
        yield client


def state(api: httpx.Client) -> tuple[int, list[dict[str, Any]]]:
    rules = api.get("/api/v1/rules", params={"limit": 1000}).json()["items"]
    return api.get("/api/v1/history", params={"limit": 1}).json()["items"][0]["revision"], rules


def refused_fields(r: httpx.Response) -> list[str]:
    assert r.status_code == 400, r.text
    assert "Traceback" not in r.text and "psycopg" not in r.text and "DataError" not in r.text
    return sorted(name for error in r.json()["errors"] for name in error["fields"])


OVER = {
    "to": {"from": "/o/1", "to": "/" + "a" * 100_000, "status": 308},
    "from": {"from": "/" + "a" * 3000, "to": "/x", "status": 308},
    "note": {"from": "/o/2", "to": "/x", "status": 308, "note": "n" * 1025},
    "tags": {"from": "/o/3", "to": "/x", "status": 308, "tags": [f"t{i}" for i in range(65)]},
    "note ": {"from": "/o/4", "to": "/x", "status": 308, "note": "a\x00b"},  # PostgreSQL cannot store NUL
    "note  ": {"from": "/o/5", "to": "/x", "status": 308, "note": "a\x01b"},
    "to ": {"from": "/o/6", "to": "/x\x7f", "status": 308},
}


def test_admin_writes_refuse_what_is_over_a_limit_with_400_naming_the_field(api: httpx.Client) -> None:
    before = state(api)
    for field, rule in OVER.items():
        assert refused_fields(api.post("/api/v1/rules", json=rule)) == [field.strip()], field
    # (a NUL anywhere in a JSON body is the admin API's own 400, for the whole body: not here)
    over = {field: rule for field, rule in OVER.items() if not any("\x00" in str(v) for v in rule.values())}
    bulk = api.post("/api/v1/rules-bulk", json={"items": [{"from": "/o/ok", "to": "/x", "status": 308},
                                                          *over.values()]})
    assert refused_fields(bulk) == sorted(f.strip() for f in over)
    assert sorted(e["index"] for e in bulk.json()["errors"]) == list(range(1, len(over) + 1))
    upload = b'rules:\n  - from: /o/imp\n    to: /x\n    note: "a\\0b"\n'
    posted = api.post("/api/v1/rule-imports", content=upload, headers={"content-type": "application/yaml"})
    assert posted.status_code == 202, posted.text
    deadline = time.monotonic() + 60
    while (report := api.get(posted.headers["location"]).json())["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert report["status"] == "FAILED" and [e["fields"] for e in report["errors"]] == [["note"]]
    assert report["errors"][0]["detail"].startswith("upload:4: note: must not hold control characters")
    assert state(api) == before


def test_admin_stores_a_rule_at_the_limits_intact(api: httpx.Client) -> None:
    noise = random.Random(13)
    source = "/" + "".join(noise.choice(string.ascii_letters) for _ in range(FIELD_LIMITS["from"].size - 1))
    rule = {"from": source, "to": at_size("to", FIELD_LIMITS["to"].size), "status": 308,
            "note": at_size("note", FIELD_LIMITS["note"].size - 2) + "\n\t",
            "tags": [f"{i:02d}" + "t" * (FIELD_LIMITS["tags"].size - 2) for i in range(64)]}
    made = api.post("/api/v1/rules", json=rule)
    assert made.status_code == 201, made.text
    stored = api.get(made.headers["location"]).json()
    assert {k: stored[k] for k in rule} == rule
