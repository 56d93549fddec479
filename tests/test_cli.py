"""The `redirectory` CLI, run as a user runs it (the installed command, real SQLite files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway_process import cli

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "redirects.yaml"


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def db(tmp: Path) -> str:
    return f"sqlite:///{tmp}/t.db"


def revision(database: str) -> int:
    from redirectory.store import Store

    store = Store.open(database)
    try:
        store.upgrade()
        return store.revision()
    finally:
        store.close()


def table(database: str) -> list[dict[str, object]]:
    done = cli("rules", "list", "--json", "--database", database)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_no_traceback(done) -> None:  # type: ignore[no-untyped-def]
    assert "Traceback" not in done.stderr + done.stdout


# -- validate ------------------------------------------------------------------------------
def test_validate_the_example_file() -> None:
    done = cli("rules", "validate", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert "5 rule(s) valid" in done.stdout


def test_validate_reports_every_problem_with_file_and_line(tmp_path: Path) -> None:
    f = write(tmp_path, "bad.yaml", """\
rules:
  - from: /a
    to: /b
    status: 302
  - from: /c
    to: /d
    colour: red
  - from: /e/{id}
    to: /f/{nope}
    status: 308
  - from: /g
    to: "/h i"
    status: 308
""")
    done = cli("rules", "validate", str(f))
    assert done.returncode == 1
    err = done.stderr
    assert f"{f}:4: status:" in err and "303 or 307" in err and "301 or 308" in err
    assert f"{f}:7: colour:" in err
    assert f"{f}:9: to:" in err and "{nope}" in err
    assert f"{f}:12: to:" in err
    assert_no_traceback(done)


def test_validate_loops_are_errors_and_chains_warnings(tmp_path: Path) -> None:
    loop = write(tmp_path, "loop.yaml", """\
rules:
  - from: /x
    to: /y
    status: 308
  - from: /y
    to: /x
    status: 308
""")
    done = cli("rules", "validate", str(loop))
    assert done.returncode == 1
    assert "loop" in done.stderr
    chain = write(tmp_path, "chain.yaml", """\
rules:
  - from: /a
    to: /b
    status: 308
  - from: /b
    to: /c
    status: 308
""")
    done = cli("rules", "validate", str(chain))
    assert done.returncode == 0
    assert f"{chain}:3: to: warning:" in done.stderr and "/c" in done.stderr
    strict = cli("rules", "validate", "--strict", str(chain))
    assert strict.returncode == 1


def test_validate_warns_about_301_for_every_method(tmp_path: Path) -> None:
    f = write(tmp_path, "w.yaml", "rules:\n  - from: /a\n    to: /b\n")
    done = cli("rules", "validate", str(f))
    assert done.returncode == 0
    assert "308" in done.stderr


def test_ambiguous_rules_are_an_error_naming_both(tmp_path: Path) -> None:
    f = write(tmp_path, "amb.yaml", """\
rules:
  - from: /p/{a}/q
    to: /one
    status: 308
  - from: /p/q/{b}
    to: /two
    status: 308
""")
    done = cli("rules", "validate", str(f))
    assert done.returncode == 1
    assert f"{f}:5: from:" in done.stderr and "line 2" in done.stderr


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("broken.yaml", "rules:\n  - from: /a\n    to: /b: c\n", 3),
        ("broken.json", '{"rules": [\n  {"from": "/a", "to": "/b"},\n  {"from": "/c" "to": "/d"}\n]}\n', 3),
        ("broken.csv", 'from,to,status\n/a,/b,308\n/c,/d,30x\n', 3),
    ],
)
def test_malformed_files_name_file_line_and_change_nothing(tmp_path: Path, name: str, text: str, line: int) -> None:
    database = db(tmp_path)
    good = write(tmp_path, "good.yaml", "rules:\n  - from: /keep\n    to: /kept\n    status: 308\n")
    assert cli("rules", "apply", str(good), "--database", database).returncode == 0
    before = (revision(database), table(database))
    f = write(tmp_path, name, text)
    done = cli("rules", "apply", str(f), "--database", database)
    assert done.returncode == 1
    assert f"{f}:{line}:" in done.stderr, done.stderr
    assert_no_traceback(done)
    assert (revision(database), table(database)) == before


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    done = cli("rules", "validate", str(tmp_path / "nope.yaml"))
    assert done.returncode == 1 and "cannot read" in done.stderr
    f = tmp_path / "latin.yaml"
    f.write_bytes(b"rules:\n  - from: /caf\xe9\n    to: /b\n")
    done = cli("rules", "validate", str(f))
    assert done.returncode == 1 and f"{f}:2:" in done.stderr and "UTF-8" in done.stderr
    assert_no_traceback(done)


# -- apply -----------------------------------------------------------------------------------
def test_apply_prints_the_plan_and_syncs(tmp_path: Path) -> None:
    database = db(tmp_path)
    f = write(tmp_path, "r.yaml", """\
rules:
  - from: /a
    to: /b
    status: 308
  - from: /c
    to: /d
    status: 307
""")
    done = cli("rules", "apply", str(f), "--database", database)
    assert done.returncode == 0, done.stderr
    assert "2 added, 0 changed, 0 removed" in done.stdout
    ids = {r["from"]: r["id"] for r in table(database)}
    again = cli("rules", "apply", str(f), "--database", database)
    assert "no changes" in again.stdout
    assert revision(database) == 1
    f.write_text("rules:\n  - from: /a\n    to: /b2\n    status: 308\n  - from: /e\n    to: /f\n    status: 303\n")
    dry = cli("rules", "apply", str(f), "--dry-run", "--database", database)
    assert dry.returncode == 0 and "1 added, 1 changed, 1 removed" in dry.stdout
    assert revision(database) == 1
    done = cli("rules", "apply", str(f), "--database", database)
    assert "1 added, 1 changed, 1 removed" in done.stdout
    after = {r["from"]: r for r in table(database)}
    assert set(after) == {"/a", "/e"}
    assert after["/a"]["id"] == ids["/a"] and after["/a"]["to"] == "/b2"
    assert revision(database) == 2


def test_apply_invalid_file_changes_nothing(tmp_path: Path) -> None:
    database = db(tmp_path)
    assert cli("rules", "apply", str(EXAMPLE), "--database", database).returncode == 0
    before = table(database)
    f = write(tmp_path, "r.yaml", "rules:\n  - from: /a\n    to: /b\n    status: 302\n")
    done = cli("rules", "apply", str(f), "--database", database)
    assert done.returncode == 1 and "nothing was changed" in done.stderr
    assert table(database) == before


# -- import ----------------------------------------------------------------------------------
def test_import_adds_all_or_nothing(tmp_path: Path) -> None:
    database = db(tmp_path)
    assert cli("rules", "apply", str(EXAMPLE), "--database", database).returncode == 0
    csv_file = write(tmp_path, "more.csv", "from,to,status,methods\n/x,/y,308,\n/old/{id},/new/{id},301,GET|HEAD\n")
    done = cli("rules", "import", str(csv_file), "--format", "csv", "--database", database)
    assert done.returncode == 0, done.stderr
    assert len(table(database)) == 7
    # a rule that loops with one already in the table: refused, nothing added
    bad = write(tmp_path, "bad.csv", "from,to,status\n/z,/zz,308\n/y,/x,308\n")
    before = table(database)
    done = cli("rules", "import", str(bad), "--format", "csv", "--database", database)
    assert done.returncode == 1 and "loop" in done.stderr
    assert table(database) == before


def test_import_large_file(tmp_path: Path) -> None:
    database = db(tmp_path)
    lines = ["from,to,status"] + [f"/bulk/{i},/moved/{i},308" for i in range(5000)]
    f = write(tmp_path, "big.csv", "\n".join(lines) + "\n")
    done = cli("rules", "import", str(f), "--database", database)
    assert done.returncode == 0, done.stderr
    assert "imported 5000 rule(s)" in done.stdout
    test = cli("rules", "test", "/bulk/4321", "--database", database)
    assert "/moved/4321" in test.stdout


# -- export ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["yaml", "json", "csv"])
def test_export_round_trips_through_apply(tmp_path: Path, fmt: str) -> None:
    source = db(tmp_path)
    assert cli("rules", "apply", str(EXAMPLE), "--database", source).returncode == 0
    out = tmp_path / f"export.{fmt}"
    done = cli("rules", "export", "--format", fmt, "--output", str(out), "--database", source)
    assert done.returncode == 0, done.stderr
    copy = f"sqlite:///{tmp_path}/copy.db"
    applied = cli("rules", "apply", str(out), "--database", copy)
    assert applied.returncode == 0, applied.stderr
    strip = lambda rows: sorted(json.dumps({k: v for k, v in r.items() if k not in ("id", "line")}, sort_keys=True) for r in rows)  # noqa: E731
    assert strip(table(copy)) == strip(table(source))


def test_export_nginx_writes_map_and_return_files(tmp_path: Path) -> None:
    source = db(tmp_path)
    assert cli("rules", "apply", str(EXAMPLE), "--database", source).returncode == 0
    done = cli("rules", "export", "--format", "nginx", "--output", str(tmp_path / "nginx"), "--database", source)
    assert done.returncode == 0, done.stderr
    assert "map " in (tmp_path / "nginx" / "redirectory-map.conf").read_text()
    assert "return 3" in (tmp_path / "nginx" / "redirectory-return.conf").read_text()


# -- test / list / stats ---------------------------------------------------------------------
def test_rules_test_explains_match_and_response(tmp_path: Path) -> None:
    database = db(tmp_path)
    assert cli("rules", "apply", str(EXAMPLE), "--database", database).returncode == 0
    done = cli("rules", "test", "http://api.example.com/api/v1/users/42?x=1", "--database", database)
    assert done.returncode == 0, done.stderr
    assert "matched /api/v1/users/{rest:path}" in done.stdout
    assert "HTTP/1.1 301 Moved Permanently" in done.stdout
    assert "location: /api/v2/users/42?x=1" in done.stdout
    post = cli("rules", "test", "/api/v1/users/42", "-X", "POST", "--database", database)
    assert "HTTP/1.1 308 Permanent Redirect" in post.stdout
    assert "skipped: method POST" in post.stdout
    miss = cli("rules", "test", "/nothing/here", "--database", database)
    assert "no rule matches" in miss.stdout and "HTTP/1.1 404" in miss.stdout
    as_json = json.loads(cli("rules", "test", "/legacy/items/7", "--json", "--database", database).stdout)
    assert as_json["response"]["status"] == 308
    assert ["location", "/api/v2/items/7"] in as_json["response"]["headers"]


def test_rules_test_against_a_file_and_a_host_header(tmp_path: Path) -> None:
    f = write(tmp_path, "h.yaml", "rules:\n  - from: //a.example/x\n    to: /from-a\n    status: 308\n"
                                  "  - from: /x\n    to: /from-any\n    status: 308\n")
    done = cli("rules", "test", "/x", "--rules", str(f), "-H", "Host: a.example")
    assert "location: /from-a" in done.stdout
    done = cli("rules", "test", "http://b.example/x", "--rules", str(f))
    assert "location: /from-any" in done.stdout


def test_list_filters(tmp_path: Path) -> None:
    database = db(tmp_path)
    assert cli("rules", "apply", str(EXAMPLE), "--database", database).returncode == 0
    assert {r["status"] for r in json.loads(cli("rules", "list", "--status", "307", "--json", "--database", database).stdout)} == {307}
    found = json.loads(cli("rules", "list", "--search", "legacy", "--json", "--database", database).stdout)
    assert len(found) == 1
    bad = cli("rules", "list", "--status", "302", "--database", database)
    assert bad.returncode == 2 and "303" in bad.stderr


def test_stats_on_a_fresh_table(tmp_path: Path) -> None:
    database = db(tmp_path)
    assert cli("rules", "apply", str(EXAMPLE), "--database", database).returncode == 0
    done = cli("rules", "stats", "--database", database)
    assert done.returncode == 0, done.stderr
    assert "hits per rule" in done.stdout


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    for url, code in (("nosuchdb://x", 2), ("sqlite:////proc/forbidden/x.db", 1)):
        done = cli("rules", "list", "--database", url)
        assert done.returncode == code  # 2: not a database URL (usage); 1: no such database
        assert "--database" in done.stderr
        assert_no_traceback(done)


def test_database_url_from_the_environment(tmp_path: Path) -> None:
    database = db(tmp_path)
    done = cli("rules", "apply", str(EXAMPLE), env={"REDIRECTORY_DATABASE_URL": database})
    assert done.returncode == 0
    assert len(table(database)) == 5


def test_help_lists_every_command() -> None:
    done = cli("--help")
    for name in ("serve", "rules", "db"):
        assert name in done.stdout
    sub = cli("rules", "--help")
    for name in ("validate", "apply", "import", "export", "test", "list", "stats"):
        assert name in sub.stdout


# -- serve: bad options never start anything -----------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--public-url", "ftp://x"], "--public-url"),
        (["--public-url", "not a url"], "--public-url"),
        (["--forwarded-allow-ips", "10.0.0.0/99"], "--forwarded-allow-ips"),
        (["--server", "apache"], "--server"),
        (["--port", "0"], "--port"),
        (["--port", "8001", "--admin-port", "8001"], "admin"),
    ],
)
def test_serve_refuses_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    done = cli("serve", "--database", db(tmp_path), *args, timeout=60)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
    assert_no_traceback(done)


def test_serve_refuses_a_busy_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = cli("serve", "--database", db(tmp_path), "--port", str(port), "--admin-port", str(port + 1 if port < 65535 else port - 1), timeout=60)
    assert done.returncode == 1
    assert f"127.0.0.1:{port}" in done.stderr and "redirects" in done.stderr


def test_serve_with_an_invalid_rule_file_starts_nothing(tmp_path: Path) -> None:
    f = write(tmp_path, "bad.yaml", "rules:\n  - from: /a\n    to: /b\n    status: 302\n")
    done = cli("serve", "--rules", str(f), "--database", db(tmp_path), timeout=60)
    assert done.returncode == 1
    assert f"{f}:4: status:" in done.stderr
