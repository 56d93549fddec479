"""Alembic environment for the redirectory store.

Two ways in:

* programmatically (what `Store.upgrade()` does): the caller puts an open SQLAlchemy
  `Connection` in `config.attributes["connection"]`, already inside a transaction;
* from the command line (`alembic -c src/redirectory/store/alembic.ini ...`, developers
  only): the URL comes from `-x url=...`, `REDIRECTORY_DATABASE_URL` or `sqlalchemy.url`.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from redirectory.store.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copes
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return

    from redirectory.store.store import Store  # local: avoids an import cycle

    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("REDIRECTORY_DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise SystemExit("no database URL: pass -x url=... or set REDIRECTORY_DATABASE_URL")
    store = Store.open(url)
    try:
        with store.write_connection() as conn:
            _run(conn)
    finally:
        store.close()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
