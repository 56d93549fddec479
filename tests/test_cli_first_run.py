"""What a new user meets first (issue 12): a failed start changes nothing, read-only commands never
invent a database, errors in our words, exit codes as documented, output readable at 80 columns.
Everything runs the installed command as a subprocess against real SQLite files and real servers."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gateway_process import BIN, cli, free_port, start_serve

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "redirects.yaml"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
READ_ONLY = (("rules", "list"), ("rules", "stats"), ("rules", "test", "/x"), ("rules", "export"), ("keys", "list"))


def rules_json(database: str, cwd: Path | None = None) -> list[dict[str, object]]:
    done = cli("rules", "list", "--json", "--database", database, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def revision_of(database: str) -> int:
    done = cli("rules", "test", "/", "--json", "--allow-no-match", "--database", database)
    assert done.returncode == 0, done.stderr
    found = re.search(r"revision (\d+)", cli("rules", "test", "/", "--allow-no-match", "--database", database).stdout)
    assert found, "rules test names the table's revision"
    return int(found.group(1))


def no_library_text(text: str) -> None:
    for leak in ("Traceback", "sqlalche.me", "Background on this error", "OperationalError", "ValueError",
                 "Invalid IPv6 URL"):
        assert leak not in text, text


# -- 1. a failed start changes nothing ------------------------------------------------------------


def busy_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


@pytest.mark.parametrize("which", ["--admin-port", "--port"])
def test_a_start_that_cannot_listen_changes_nothing(tmp_path: Path, which: str) -> None:
    database = f"sqlite:///{tmp_path}/t.db"
    served = start_serve(tmp_path, "--rules", str(EXAMPLE), database=database)
    try:
        key = cli("keys", "create", "console", "--scope", "write", "--database", database).stdout.strip()
        rule = next(r for r in rules_json(database) if r["status"] == 307)
        auth = {"authorization": f"Bearer {key}"}
        url = f"{served.admin}/api/v1/rules/{rule['id']}"
        etag = httpx.get(url, headers=auth).headers["etag"]
        patched = httpx.patch(url, json={"status": 308}, headers={**auth, "if-match": etag,
                                                                  "content-type": "application/merge-patch+json"})
        assert patched.status_code == 200, patched.text
    finally:
        served.stop()
    before = rules_json(database)
    rev = revision_of(database)
    blocker, port = busy_port()
    other = str(free_port())
    ports = {"--admin-port": (other, str(port)), "--port": (str(port), other)}[which]
    with blocker:
        done = cli("serve", "--rules", str(EXAMPLE), "--database", database, "--port", ports[0],
                   "--admin-port", ports[1], timeout=60)
    assert done.returncode == 1
    assert f"cannot listen for {'the admin listener' if which == '--admin-port' else 'redirects'}" in done.stderr
    assert "applied" not in done.stdout + done.stderr
    assert rules_json(database) == before and revision_of(database) == rev  # the API's 308 is still there
    assert any(r["id"] == rule["id"] and r["status"] == 308 for r in before)


def test_a_bad_option_or_file_changes_nothing(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/t.db"
    assert cli("rules", "apply", str(EXAMPLE), "--database", database).returncode == 0
    rev = revision_of(database)
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - from: /a\n    to: /b\n    status: 302\n")
    for args in (("--server", "nope", "--rules", str(bad)), ("--server", "nope", "--rules", str(EXAMPLE)),
                 ("--rules", str(bad))):
        done = cli("serve", "--database", database, "--port", str(free_port()), "--admin-port", str(free_port()),
                   *args, timeout=60)
        assert done.returncode == 1, done.stderr
        assert revision_of(database) == rev


def test_the_plan_names_edits_made_outside_the_rule_file(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/t.db"
    served = start_serve(tmp_path, "--rules", str(EXAMPLE), database=database)
    try:
        key = cli("keys", "create", "console user", "--scope", "write", "--database", database).stdout.strip()
        auth = {"authorization": f"Bearer {key}"}
        created = httpx.post(f"{served.admin}/api/v1/rules", json={"from": "/made/in/console", "to": "/x",
                                                                   "status": 308}, headers=auth)
        assert created.status_code == 201, created.text
    finally:
        served.stop()
    dry = cli("rules", "apply", str(EXAMPLE), "--dry-run", "--database", database)
    assert dry.returncode == 0, dry.stderr
    assert "- remove /made/in/console" in dry.stdout
    assert re.search(r"/made/in/console -> 308 /x .*added by api:console user at .* \(revision 2\)", dry.stdout)
    # serve --rules says the same, and says it did it
    again = start_serve(tmp_path, "--rules", str(EXAMPLE), database=database)
    again.stop()
    log = again.output()
    assert "undid 1 edit(s) made outside the rule file" in log and "added by api:console user" in log
    assert not any(r.get("from") == "/made/in/console" for r in rules_json(database))
    # Once the file is the truth again, nothing is reported.
    quiet = cli("rules", "apply", str(EXAMPLE), "--dry-run", "--database", database)
    assert "outside the rule file" not in quiet.stdout


# -- 2. read-only commands never create a database ------------------------------------------------


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_commands_never_create_a_database(tmp_path: Path, command: tuple[str, ...]) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    for url, expected in (("sqlite:///tmp/x/g.db", work / "tmp/x/g.db"),
                          (f"sqlite:///{tmp_path}/nonexistent/x.db", tmp_path / "nonexistent/x.db"),
                          (None, work / "var/redirectory.db")):
        args = (*command, "--database", url) if url else command
        done = cli(*args, cwd=work, env={"REDIRECTORY_DATABASE_URL": ""} if url is None else None)
        if url is None:  # the default database, relative to the current directory
            done = cli(*command, cwd=work)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert f"no database at {expected}" in done.stderr
        no_library_text(done.stderr)
        assert list(work.iterdir()) == [] and not (tmp_path / "nonexistent").exists()


def test_a_file_that_is_not_a_redirectory_database_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    done = cli("rules", "list", "--database", f"sqlite:///{empty}")
    assert done.returncode == 1 and f"SQLite database {empty} holds no redirectory table" in done.stderr
    assert empty.read_bytes() == b""


def test_every_command_that_opens_a_database_names_it(tmp_path: Path) -> None:
    path = tmp_path / "named.db"
    url = f"sqlite:///{path}"
    applied = cli("rules", "apply", str(EXAMPLE), "--database", url)
    assert f"created SQLite database {path}" in applied.stderr and f"database: SQLite database {path}" in applied.stdout
    assert f"SQLite database {path}" in cli("rules", "list", "--database", url).stdout
    assert f"SQLite database {path}" in cli("rules", "stats", "--database", url).stdout
    assert f"SQLite database {path}" in cli("rules", "test", "/api/v1/users/1", "--database", url).stdout
    assert f"SQLite database {path}" in cli("rules", "export", "--verbose", "--database", url).stderr
    assert f"SQLite database {path}" in cli("keys", "list", "--database", url).stdout
    created = cli("keys", "create", "k", "--scope", "read", "--database", url)
    assert f"SQLite database {path}" in created.stderr
    key_id = json.loads(cli("keys", "list", "--json", "--database", url).stdout)[0]["id"]
    assert f"SQLite database {path}" in cli("keys", "revoke", key_id, "--database", url).stdout
    assert f"SQLite database {path}" in cli("db", "upgrade", "--database", url).stdout
    secret = "s3cret-pw"
    done = cli("rules", "list", "--database", f"postgresql://user:{secret}@127.0.0.1:1/nothing")
    assert done.returncode == 1 and "postgresql" in done.stderr and "***" in done.stderr
    assert secret not in done.stderr
    no_library_text(done.stderr)


def test_db_upgrade_says_what_it_did(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    first = cli("db", "upgrade", "--database", url)
    assert first.returncode == 0 and "created the schema" in first.stdout and "up to date" not in first.stdout
    second = cli("db", "upgrade", "--database", url)
    assert second.returncode == 0 and "is up to date" in second.stdout


# -- 7, 8: --format where a file is read; warnings once ---------------------------------------------

NGINX = """server {
    listen 80;
    location = /old { return 301 /new; }
    rewrite ^/docs/(.*)$ /manual/$1 permanent;
}
"""


def test_format_on_serve_and_rules_test(tmp_path: Path) -> None:
    site = tmp_path / "site.conf"
    site.write_text(NGINX)
    refused = cli("rules", "test", "/old", "--rules", str(site))
    assert refused.returncode == 1 and "--format nginx" in refused.stderr
    tested = cli("rules", "test", "/old", "--rules", str(site), "--format", "nginx")
    assert tested.returncode == 0 and "matched /old" in tested.stdout
    served = start_serve(tmp_path, "--rules", str(site), "--format", "nginx")
    try:
        answer = httpx.get(served.base + "/docs/a/b")
        assert (answer.status_code, answer.headers["location"]) == (301, "/manual/a/b")
    finally:
        served.stop()


def test_import_prints_each_warning_once(tmp_path: Path) -> None:
    rules = tmp_path / "w.yaml"
    rules.write_text("rules:\n  - from: /w/a\n    to: /w/b\n    status: 301\n  - from: /w/b\n    to: /w/c\n"
                     "    status: 308\n")
    done = cli("rules", "import", str(rules), "--database", f"sqlite:///{tmp_path}/t.db")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 2 and len(set(warnings)) == 2, done.stderr


# -- 10, 11: errors in our words; exit codes -------------------------------------------------------


def test_bad_urls_are_explained_in_our_words(tmp_path: Path) -> None:
    for url, words in (("http://[::1", "unbalanced '['"), ("http://h:99999/x", "port"),
                       ("ftp://h/x", "not http or https")):
        done = cli("rules", "test", url, "--rules", str(EXAMPLE))
        assert done.returncode == 2 and words in done.stderr, done.stderr
        no_library_text(done.stderr)


def test_rules_test_exit_status(tmp_path: Path) -> None:
    assert cli("rules", "test", "/api/v1/users/1", "--rules", str(EXAMPLE)).returncode == 0
    none = cli("rules", "test", "/nothing", "--rules", str(EXAMPLE))
    assert none.returncode == 1 and "no rule matches" in none.stdout
    assert cli("rules", "test", "/nothing", "--rules", str(EXAMPLE), "--allow-no-match").returncode == 0
    assert cli("rules", "test", "/nothing", "--rules", str(EXAMPLE), "--json").returncode == 1


def test_usage_errors_exit_2_and_failures_exit_1(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/t.db"
    assert cli("rules", "list", "--nope").returncode == 2
    assert cli("rules", "list", "--status", "302", "--database", database).returncode == 2
    assert cli("rules", "export", "--format", "xml", "--database", database).returncode == 2
    assert cli("keys", "create", "k", "--scope", "root", "--database", database).returncode == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - from: /a\n    to: /b\n    status: 302\n")
    assert cli("rules", "validate", str(bad)).returncode == 1
    assert cli("rules", "list", "--database", database).returncode == 1  # no such database


# -- 12: --version, completion, 80 columns ---------------------------------------------------------


def test_version_and_completion() -> None:
    from importlib.metadata import version

    done = cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"redirectory {version('redirectory')}"
    shown = cli("--show-completion", "bash", env={"SHELL": "/bin/bash"})
    assert shown.returncode == 0 and "complete" in shown.stdout and "redirectory" in shown.stdout


def command_paths() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = [(), ("rules",), ("keys",), ("db",), ("serve",), ("check",)]
    paths += [("rules", c) for c in ("validate", "apply", "import", "export", "test", "list", "stats")]
    paths += [("keys", c) for c in ("create", "list", "revoke")] + [("db", "upgrade")]
    return paths


def test_help_is_whole_at_80_columns() -> None:
    for path in command_paths():
        done = cli(*path, "--help", env={"COLUMNS": "80"})
        assert done.returncode == 0, path
        lines = done.stdout.splitlines()
        assert all(len(line) <= 80 for line in lines), (path, max(lines, key=len))
        assert "…" not in done.stdout and not any(line.rstrip().endswith("...") and not line.startswith("Usage:")
                                                    for line in lines), (path, done.stdout)
        for option in re.findall(r"--[a-z0-9-]+", done.stdout):
            assert re.search(rf"(^|\s|/|,){re.escape(option)}($|[\s=,./)\]]|`)", done.stdout), (path, option)


def test_lists_keep_ids_and_patterns_whole_at_80_columns(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/t.db"
    assert cli("rules", "apply", str(EXAMPLE), "--database", database).returncode == 0
    assert cli("keys", "create", "a key with a rather long descriptive name", "--scope", "admin",
               "--database", database).returncode == 0
    expected = rules_json(database)
    listing = cli("rules", "list", "--database", database, env={"COLUMNS": "80"}).stdout
    path = str(tmp_path / "t.db")  # the title names the database: a long path is the one long line
    assert all(len(line) <= 80 for line in listing.splitlines() if path not in line), listing
    for rule in expected:
        assert rule["id"] in listing  # the id column, whole
        assert str(rule.get("from") or rule.get("from_regex")) in listing
    keys = cli("keys", "list", "--database", database, env={"COLUMNS": "80"}).stdout
    ids = [k["id"] for k in json.loads(cli("keys", "list", "--json", "--database", database).stdout)]
    assert ids and all(i in keys for i in ids)
    assert all(len(line) <= 80 for line in keys.splitlines() if path not in line), keys
    wide = cli("rules", "list", "--database", database, env={"COLUMNS": "300"}).stdout
    assert all(rule["id"] in wide for rule in expected)


def test_the_command_is_where_the_tests_expect() -> None:
    assert BIN.exists()


# -- issue 13, point 12: a write waiting for another writer says so ---------------------------------

HOLD_LOCK = """import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


def hold_write_lock(path: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_locked_database_is_named_with_progress(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    database = f"sqlite:///{path}"
    assert cli("rules", "apply", str(EXAMPLE), "--database", database).returncode == 0
    rev = revision_of(database)
    changed = tmp_path / "one.yaml"
    changed.write_text("rules:\n  - from: /only\n    to: /this\n    status: 308\n")
    holder = hold_write_lock(path)
    try:
        done = cli("rules", "apply", str(changed), "--database", database, env={"REDIRECTORY_LOCK_TIMEOUT": "1"})
    finally:
        holder.communicate("\n", timeout=10)
    assert done.returncode == 1, done.stderr
    assert "waiting: another writer" in done.stderr or "is locked by another writer" in done.stderr
    assert f"SQLite database {path} is locked by another writer" in done.stderr and "nothing was changed" in done.stderr
    no_library_text(done.stderr)
    assert revision_of(database) == rev
    # Released while the command waits: it says it waited, then applies.
    holder = hold_write_lock(path)
    proc = subprocess.Popen([str(BIN), "rules", "apply", str(changed), "--database", database],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    assert proc.stderr is not None
    line = proc.stderr.readline()  # the first progress line: the command is waiting now
    assert "waiting: another writer" in line and str(path) in line, line
    holder.communicate("\n", timeout=10)
    out, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "applied: 1 added, 0 changed, 5 removed" in out


def test_db_prune_keeps_the_documented_window(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/t.db"
    one = tmp_path / "one.yaml"
    for target in ("/a", "/b", "/c", "/d"):
        one.write_text(f"rules:\n  - from: /x\n    to: {target}\n    status: 308\n")
        assert cli("rules", "apply", str(one), "--database", database).returncode == 0
    bad = cli("db", "prune", "--database", database, env={"REDIRECTORY_HISTORY_KEEP_REVISIONS": "many"})
    assert bad.returncode == 2 and "REDIRECTORY_HISTORY_KEEP_REVISIONS" in bad.stderr
    kept = cli("db", "prune", "--database", database)  # the defaults keep all four
    assert kept.returncode == 0 and "removed 0 revision(s)" in kept.stdout
    env = {"REDIRECTORY_HISTORY_KEEP_REVISIONS": "2", "REDIRECTORY_HISTORY_KEEP_DAYS": "0"}
    done = cli("db", "prune", "--database", database, env=env)
    assert done.returncode == 0 and "removed 2 revision(s)" in done.stdout and "starts at revision 3" in done.stdout
    assert revision_of(database) == 4 and rules_json(database)[0]["to"] == "/d"


def test_a_bad_lock_timeout_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/t.db"
    done = cli("rules", "apply", str(EXAMPLE), "--database", database, env={"REDIRECTORY_LOCK_TIMEOUT": "soon"})
    assert done.returncode == 2 and "REDIRECTORY_LOCK_TIMEOUT='soon'" in done.stderr and "0 to 604800" in done.stderr
    assert not (tmp_path / "t.db").exists()
