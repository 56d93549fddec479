"""Shared fixtures.

`store_url` / `store` are parametrized over SQLite (a file under tmp_path) and PostgreSQL.
PostgreSQL runs when `REDIRECTORY_TEST_DATABASE_URL` is set (a failure to connect is then an
error) or when `postgresql://postgres@127.0.0.1:5432/test` (or user `root`) answers;
otherwise those cases are skipped with the reason. Each PostgreSQL test gets a fresh,
uniquely named schema (dropped afterwards), so runs are repeatable and may overlap.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy.engine import URL, make_url

from redirectory.store import Store

# No per-example deadline: the suite shares 2 cores with servers it starts, so an example's time
# says nothing about the code (performance is measured in bench/, never asserted by a test).
settings.register_profile("redirectory", deadline=None)
settings.load_profile("redirectory")

PG_ENV = "REDIRECTORY_TEST_DATABASE_URL"
PG_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@functools.cache
def postgres_base_url() -> tuple[URL | None, str]:
    """(a reachable PostgreSQL URL, "") or (None, why not)."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dev dependency
        return None, "psycopg is not installed"
    explicit = os.environ.get(PG_ENV)
    candidates = (explicit,) if explicit else PG_CANDIDATES
    errors = []
    for candidate in candidates:
        url = make_url(candidate)
        try:
            with psycopg.connect(_libpq(url), connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return url, ""
        except psycopg.Error as exc:
            errors.append(f"{url.render_as_string()}: {str(exc).strip().splitlines()[0]}")
    reason = "PostgreSQL not reachable (" + "; ".join(errors) + ")"
    if explicit:
        reason += f" although {PG_ENV} is set"
    else:
        reason += f"; set {PG_ENV} to run the PostgreSQL cases"
    return None, reason


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema (dropped afterwards)."""
    import psycopg

    base, reason = postgres_base_url()
    if base is None:
        if os.environ.get(PG_ENV):
            pytest.fail(reason)
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_libpq(base), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(base), autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for an empty, not yet migrated store (SQLite file or PG schema)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/db/redirectory.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated, empty Store on each backend."""
    opened = Store.open(store_url)
    opened.upgrade()
    try:
        yield opened
    finally:
        opened.close()
