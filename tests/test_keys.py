"""API keys: the store on both backends (see the `store` fixture) and the `redirectory keys` CLI
(the installed command on real SQLite files). No mocks, except a fixed clock where time matters."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import func, inspect, select, text

from gateway_process import cli
from redirectory.rules.model import Rule, RuleSet
from redirectory.store import Store
from redirectory.store import database as database_module
from redirectory.store import store as store_module
from redirectory.store.keys import (
    PREFIX_LENGTH,
    SCOPES,
    ApiKey,
    hash_secret,
    is_well_formed,
    scope_allows,
    validate_name,
    validate_scope,
)
from redirectory.store.schema import api_keys
from redirectory.store.store import MIGRATIONS_DIR

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """Replaces the store's `_utcnow` so tests can move time."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, now: datetime = T0) -> None:
        self.now = now
        monkeypatch.setattr(store_module, "_utcnow", lambda: self.now)

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def raw_rows(store: Store) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(api_keys))]


def key_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(api_keys)) or 0)


# --------------------------------------------------------------------------- pure functions


def test_scope_allows_matrix() -> None:
    expected = {
        ("read", "read"): True,
        ("read", "write"): False,
        ("read", "admin"): False,
        ("write", "read"): True,
        ("write", "write"): True,
        ("write", "admin"): False,
        ("admin", "read"): True,
        ("admin", "write"): True,
        ("admin", "admin"): True,
    }
    for granted in SCOPES:
        for needed in SCOPES:
            assert scope_allows(granted, needed) is expected[granted, needed], (granted, needed)
    for bad in ("", "root", "ADMIN", "Admin", " admin", "admin "):
        for scope in SCOPES:
            assert scope_allows(bad, scope) is False
            assert scope_allows(scope, bad) is False


def test_validate_scope_names_the_valid_scopes() -> None:
    for scope in SCOPES:
        assert validate_scope(scope) == scope
    for bad in ("", "root", "Admin", "read,write", None, 1):
        with pytest.raises(ValueError, match="read, write, admin"):
            validate_scope(bad)


@pytest.mark.parametrize("name", ["a", "deploy bot", "ci: nightly (eu-1)", "é" * 200, "日本語のキー", "x" * 200])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 201, "at most 200"),
        ("a\tb", "printable"),
        ("a\nb", "printable"),
        ("a\x00b", "printable"),
        ("a\x1b[31mb", "printable"),
        ("a\u2028b", "printable"),
        ("a\udc80b", "printable"),
        (None, "text"),
    ],
)
def test_invalid_names(name: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_name(name)


def test_hash_is_hex_sha256() -> None:
    assert hash_secret("rdk_abc") == hashlib.sha256(b"rdk_abc").hexdigest()
    assert len(hash_secret("x")) == 64


# --------------------------------------------------------------------------- migration


def _migrate(store: Store, target: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with store.write_connection() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, target)


def test_upgrade_from_0001_keeps_the_rules_and_downgrade_drops_only_api_keys(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        # a table written by today's code, taken down to 0001 (rules' later columns dropped, rows kept)
        store.upgrade()
        store.apply(RuleSet(rules=(Rule(to="/new", source="/old"),)))
        _migrate(store, "0001", down=True)
        with store.engine.connect() as conn:
            assert "api_keys" not in inspect(conn).get_table_names()
            assert conn.execute(text("SELECT count(*) FROM rules")).scalar() == 1
        store.upgrade()
        assert store.rule_count() == 1 and store.revision() == 1
        key, secret = store.create_key("k", "admin")
        assert store.verify_key(secret) is not None
        _migrate(store, "0001", down=True)
        with store.engine.connect() as conn:
            assert "api_keys" not in inspect(conn).get_table_names()
        assert store.rule_count() == 1
        store.upgrade()
        assert store.list_keys() == [] and store.rule_count() == 1
    finally:
        store.close()


# --------------------------------------------------------------------------- store


def test_create_returns_the_key_and_a_secret_stored_only_as_its_hash(store: Store) -> None:
    key, secret = store.create_key("deploy bot", "write")
    assert isinstance(key, ApiKey)
    assert secret.startswith("rdk_") and len(secret) == 47 and is_well_formed(secret)
    assert key.name == "deploy bot" and key.scope == "write"
    assert key.prefix == secret[:PREFIX_LENGTH] and len(key.prefix) == 12
    assert key.revoked_at is None and key.last_used_at is None and not key.revoked
    assert key.created_at.tzinfo is not None
    assert not hasattr(key, "secret") and not hasattr(key, "secret_hash")
    assert secret not in repr(key) and secret not in json.dumps(key.to_dict())

    rows = raw_rows(store)
    assert len(rows) == 1
    row = rows[0]
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    # the secret (or any long piece of it beyond the listed prefix) appears in no column
    for value in row.values():
        text_ = str(value)
        assert secret not in text_
        assert secret[PREFIX_LENGTH:] not in text_
        assert secret[-20:] not in text_
    assert store.get_key(key.id) == key


def test_create_makes_distinct_keys(store: Store) -> None:
    made = [store.create_key(f"k{i}", "read") for i in range(5)]
    assert len({k.id for k, _ in made}) == 5
    assert len({s for _, s in made}) == 5
    assert len({k.prefix for k, _ in made}) == 5


@pytest.mark.parametrize(("name", "scope"), [("", "read"), ("a\nb", "read"), ("x" * 201, "admin"), ("ok", "root"), ("ok", "")])
def test_create_rejects_bad_input_and_writes_nothing(store: Store, name: str, scope: str) -> None:
    with pytest.raises(ValueError):
        store.create_key(name, scope)
    assert key_count(store) == 0


def test_verify(store: Store) -> None:
    key, secret = store.create_key("reader", "read")
    other, other_secret = store.create_key("admin", "admin")
    found = store.verify_key(secret)
    assert found is not None
    assert (found.id, found.scope, found.name) == (key.id, "read", "reader")
    assert found.allows("read") and not found.allows("write")
    found_admin = store.verify_key(other_secret)
    assert found_admin is not None and found_admin.id == other.id and found_admin.allows("admin")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # last character
        lambda s: s[:5] + ("A" if s[5] != "A" else "B") + s[6:],  # first random character
        lambda s: s[:-1],  # too short
        lambda s: s + "A",  # too long
        lambda s: s.upper(),
        lambda s: "rdx_" + s[4:],  # other marker
        lambda s: s[4:],  # no marker
        lambda s: " " + s,
        lambda s: s + "\n",
        lambda s: "",
        lambda s: "rdk_" + "\udc80" * 43,
        lambda s: hashlib.sha256(s.encode()).hexdigest(),  # the stored hash is no secret
    ],
)
def test_verify_refuses_wrong_and_malformed_secrets(store: Store, mangle: object) -> None:
    _, secret = store.create_key("k", "admin")
    wrong = mangle(secret)  # type: ignore[operator]
    assert wrong != secret
    assert store.verify_key(wrong) is None


def test_verify_refuses_non_text(store: Store) -> None:
    store.create_key("k", "admin")
    for value in (None, b"rdk_", 42):
        assert store.verify_key(value) is None  # type: ignore[arg-type]


def test_revoke(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    key, secret = store.create_key("k", "admin")
    _, kept_secret = store.create_key("kept", "read")
    clock.advance(minutes=5)
    revoked = store.revoke_key(key.id)
    assert revoked is not None and revoked.id == key.id
    assert revoked.revoked_at == clock.now and revoked.revoked
    assert not revoked.allows("read")
    assert store.verify_key(secret) is None
    assert store.verify_key(kept_secret) is not None
    # idempotent: the first revocation time stays
    first = clock.now
    clock.advance(hours=1)
    again = store.revoke_key(key.id)
    assert again is not None and again.revoked_at == first
    got = store.get_key(key.id)
    assert got is not None and got.revoked_at == first
    assert store.verify_key(secret) is None


def test_revoke_and_get_unknown_ids(store: Store) -> None:
    store.create_key("k", "read")
    for unknown in ("00000000-0000-4000-8000-000000000000", "", "x" * 100, "'; DROP TABLE api_keys; --",
                    "a\x00b", "\udc80", "é"):
        assert store.revoke_key(unknown) is None
        assert store.get_key(unknown) is None
    assert key_count(store) == 1


def test_list_newest_first_and_without_revoked(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    assert store.list_keys() == []
    first, _ = store.create_key("first", "read")
    clock.advance(seconds=1)
    second, _ = store.create_key("second", "write")
    clock.advance(seconds=1)
    third, _ = store.create_key("third", "admin")
    assert [k.name for k in store.list_keys()] == ["third", "second", "first"]
    assert store.list_keys() == [third, second, first]
    store.revoke_key(second.id)
    assert [k.name for k in store.list_keys()] == ["third", "second", "first"]
    assert [k.name for k in store.list_keys(include_revoked=False)] == ["third", "first"]
    listed = {k.id: k for k in store.list_keys()}
    assert listed[second.id].revoked_at == clock.now


def test_last_used_is_written_at_most_once_a_minute(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    key, secret = store.create_key("k", "read")
    assert store.get_key(key.id).last_used_at is None  # type: ignore[union-attr]

    first = store.verify_key(secret)
    assert first is not None and first.last_used_at == T0
    assert store.get_key(key.id).last_used_at == T0  # type: ignore[union-attr]

    writes: list[str] = []

    def count_writes() -> None:
        original = store.write_connection

        def spy():  # type: ignore[no-untyped-def]
            writes.append("write")
            return original()

        monkeypatch.setattr(store, "write_connection", spy)

    count_writes()
    for seconds in (1, 10, 30, 59):
        clock.now = T0 + timedelta(seconds=seconds)
        found = store.verify_key(secret)
        assert found is not None and found.last_used_at == T0
    assert writes == []  # no write per request
    assert store.get_key(key.id).last_used_at == T0  # type: ignore[union-attr]

    clock.now = T0 + timedelta(seconds=61)
    found = store.verify_key(secret)
    assert found is not None and found.last_used_at == clock.now
    assert writes == ["write"]
    assert store.get_key(key.id).last_used_at == clock.now  # type: ignore[union-attr]

    clock.advance(seconds=30)
    assert store.verify_key(secret) is not None
    assert writes == ["write"]


def test_last_used_is_not_touched_by_failed_verifications(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    Clock(monkeypatch)
    key, secret = store.create_key("k", "read")
    assert store.verify_key(secret[:-1] + "!") is None
    assert store.get_key(key.id).last_used_at is None  # type: ignore[union-attr]
    store.revoke_key(key.id)
    assert store.verify_key(secret) is None
    assert store.get_key(key.id).last_used_at is None  # type: ignore[union-attr]


def test_concurrent_verifications_write_last_used_once(store_url: str, store: Store) -> None:
    _, secret = store.create_key("k", "read")
    others = [Store.open(store_url) for _ in range(4)]
    results: list[ApiKey | None] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(others))

    def run(s: Store) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                results.append(s.verify_key(secret))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in others]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for s in others:
            s.close()
    assert errors == []
    assert len(results) == 20 and all(r is not None for r in results)
    stamps = {r.last_used_at for r in results if r is not None}
    stored = store.list_keys()[0].last_used_at
    assert stored is not None and stored in stamps


def test_a_locked_sqlite_database_skips_the_last_used_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    monkeypatch.setattr(database_module, "BUSY_TIMEOUT_MS", 100)  # applies to connections opened from now on
    url = f"sqlite:///{tmp_path}/locked.db"
    store = Store.open(url)
    other = Store.open(url)
    try:
        store.upgrade()
        _, secret = store.create_key("k", "read")
        with other.write_connection():  # another writer holds the lock: verifying still works
            found = store.verify_key(secret)
            assert found is not None and found.last_used_at is None
        found = store.verify_key(secret)
        assert found is not None and found.last_used_at == clock.now
    finally:
        other.close()
        store.close()


def test_keys_are_not_rule_revisions(store: Store) -> None:
    key, _ = store.create_key("k", "admin")
    store.revoke_key(key.id)
    assert store.revision() == 0


def test_timestamps_are_aware_utc(store: Store) -> None:
    key, secret = store.create_key("k", "admin")
    store.verify_key(secret)
    store.revoke_key(key.id)
    got = store.get_key(key.id)
    assert got is not None
    for value in (got.created_at, got.last_used_at, got.revoked_at):
        assert value is not None and value.utcoffset() == timedelta(0)
    data = got.to_dict()
    assert data["created_at"].endswith("Z") and data["revoked_at"].endswith("Z")


def test_secret_hash_is_unique(store: Store) -> None:
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    key, secret = store.create_key("k", "admin")
    row = raw_rows(store)[0]
    row["id"] = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(IntegrityError), store.write_connection() as conn:
        conn.execute(insert(api_keys).values(row))
    assert key_count(store) == 1


# --------------------------------------------------------------------------- CLI


def db(tmp: Path) -> str:
    return f"sqlite:///{tmp}/keys.db"


def listed(database: str) -> list[dict[str, object]]:
    done = cli("keys", "list", "--json", "--database", database)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def open_store(database: str) -> Store:
    store = Store.open(database)
    store.upgrade()
    return store


def test_cli_create_prints_a_secret_that_verifies(tmp_path: Path) -> None:
    database = db(tmp_path)
    done = cli("keys", "create", "first admin", "--scope", "admin", "--database", database)
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert done.stdout == secret + "\n"  # the secret, alone on stdout (easy to capture)
    assert is_well_formed(secret)
    assert "not be shown again" in done.stderr and "admin" in done.stderr
    assert secret not in done.stderr
    store = open_store(database)
    try:
        key = store.verify_key(secret)
        assert key is not None and key.scope == "admin" and key.name == "first admin"
        assert key.id in done.stderr
        for row in raw_rows(store):
            assert all(secret not in str(v) for v in row.values())
    finally:
        store.close()


def test_cli_list_never_shows_the_secret(tmp_path: Path) -> None:
    database = db(tmp_path)
    secrets_ = []
    for name, scope in (("reader", "read"), ("writer", "write")):
        done = cli("keys", "create", name, "--scope", scope, "--database", database)
        assert done.returncode == 0, done.stderr
        secrets_.append(done.stdout.strip())
    rows = listed(database)
    assert [r["name"] for r in rows] == ["writer", "reader"]
    assert set(rows[0]) == {"id", "name", "scope", "prefix", "created_at", "last_used_at", "revoked_at"}
    assert [r["prefix"] for r in rows] == [secrets_[1][:12], secrets_[0][:12]]
    table_ = cli("keys", "list", "--database", database)
    assert table_.returncode == 0, table_.stderr
    assert "reader" in table_.stdout and "writer" in table_.stdout and "2 key(s)" in table_.stdout
    for secret in secrets_:
        for output in (table_.stdout, table_.stderr, json.dumps(rows)):
            assert secret not in output
            assert secret[PREFIX_LENGTH:] not in output
            assert hash_secret(secret) not in output


def test_cli_revoke(tmp_path: Path) -> None:
    database = db(tmp_path)
    secret = cli("keys", "create", "k", "--scope", "write", "--database", database).stdout.strip()
    key_id = str(listed(database)[0]["id"])
    done = cli("keys", "revoke", key_id, "--database", database)
    assert done.returncode == 0, done.stderr
    assert "revoked" in done.stdout and key_id in done.stdout
    revoked_at = listed(database)[0]["revoked_at"]
    assert revoked_at is not None
    again = cli("keys", "revoke", key_id, "--database", database)
    assert again.returncode == 0, again.stderr
    assert "already revoked" in again.stdout
    assert listed(database)[0]["revoked_at"] == revoked_at
    store = open_store(database)
    try:
        assert store.verify_key(secret) is None
    finally:
        store.close()


def test_cli_revoke_unknown_id_is_an_error(tmp_path: Path) -> None:
    database = db(tmp_path)
    cli("keys", "create", "k", "--scope", "read", "--database", database)
    for unknown in ("00000000-0000-4000-8000-000000000000", "[/red]nope"):
        done = cli("keys", "revoke", unknown, "--database", database)
        assert done.returncode == 1
        assert "no API key" in done.stderr and unknown in done.stderr
        assert "Traceback" not in done.stderr + done.stdout
    assert listed(database)[0]["revoked_at"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("k", "--scope", "root"), "read, write, admin"),
        (("k", "--scope", "ADMIN"), "read, write, admin"),
        (("", "--scope", "read"), "name must not be empty"),
        (("a\nb", "--scope", "read"), "printable"),
        (("x" * 201, "--scope", "read"), "at most 200"),
    ],
)
def test_cli_create_bad_input_errors_and_writes_nothing(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    database = db(tmp_path)
    done = cli("keys", "create", *args, "--database", database)
    assert done.returncode == 2  # a usage error (a bad option value), as click's own
    assert done.stdout == ""
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "keys.db").exists()  # refused before the database was even opened


def test_cli_create_needs_a_scope(tmp_path: Path) -> None:
    database = db(tmp_path)
    done = cli("keys", "create", "k", "--database", database)
    assert done.returncode == 2
    assert "--scope" in done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "keys.db").exists()


def test_cli_keys_use_the_database_env_var(tmp_path: Path) -> None:
    env = {"REDIRECTORY_DATABASE_URL": db(tmp_path)}
    done = cli("keys", "create", "env", "--scope", "read", env=env)
    assert done.returncode == 0, done.stderr
    listed_ = cli("keys", "list", "--json", env=env)
    assert [r["name"] for r in json.loads(listed_.stdout)] == ["env"]


def test_cli_bad_database_url(tmp_path: Path) -> None:
    done = cli("keys", "list", "--database", "mysql://u@h/db")
    assert done.returncode == 2  # not a URL this build supports: a usage error
    assert "--database" in done.stderr and "Traceback" not in done.stderr
