"""The `api_keys` table: the SQL behind `Store.create_key`, `list_keys`, `get_key`, `revoke_key`
and `verify_key` (what a key is, its scopes and its secrets are `keys.py`).

Functions take a `Connection` in the transaction the `Store` opened for them (reads in a read
transaction, writes through `Store._write`, and the one-attempt `last_used_at` write of
`verify_key`); times are passed in, so the store's clock decides them. Keys are not part of the
rule table: nothing here writes a revision.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime

from sqlalchemy import Connection, insert, or_, select, update

from redirectory.store.codec import new_id
from redirectory.store.keys import (
    LAST_USED_RESOLUTION,
    PREFIX_LENGTH,
    ApiKey,
    hash_secret,
    is_well_formed,
    new_secret,
    validate_name,
    validate_scope,
)
from redirectory.store.schema import api_keys as api_keys_t

# Columns that make up an ApiKey, in its field order.
_KEY_COLUMNS = (
    api_keys_t.c.id,
    api_keys_t.c.name,
    api_keys_t.c.scope,
    api_keys_t.c.prefix,
    api_keys_t.c.created_at,
    api_keys_t.c.revoked_at,
    api_keys_t.c.last_used_at,
)

_KEY_ID_RE = re.compile(r"[0-9A-Za-z-]{1,36}")


def plausible_key_id(key_id: object) -> bool:
    """Could this be an `api_keys.id`? (Anything else, e.g. NUL or lone surrogates, which
    PostgreSQL rejects, is simply not found.)"""
    return isinstance(key_id, str) and _KEY_ID_RE.fullmatch(key_id) is not None


def new_key(name: str, scope: str, now: datetime) -> tuple[ApiKey, str]:
    """A new key created at `now` and its secret; ValueError for a bad name or an unknown scope."""
    validate_name(name)
    validate_scope(scope)
    secret = new_secret()
    key = ApiKey(
        id=new_id(),
        name=name,
        scope=scope,
        prefix=secret[:PREFIX_LENGTH],
        created_at=now,
        revoked_at=None,
        last_used_at=None,
    )
    return key, secret


def key_row(key: ApiKey, secret: str) -> dict[str, object]:
    """The `api_keys` row of a new key: the SHA-256 of its secret, never the secret."""
    return {
        "id": key.id,
        "name": key.name,
        "scope": key.scope,
        "prefix": key.prefix,
        "secret_hash": hash_secret(secret),
        "created_at": key.created_at,
        "revoked_at": None,
        "last_used_at": None,
    }


def insert_key(conn: Connection, row: dict[str, object]) -> None:
    """Insert a `key_row`."""
    conn.execute(insert(api_keys_t).values(row))


def list_keys(conn: Connection, include_revoked: bool) -> list[ApiKey]:
    """See `Store.list_keys`."""
    query = select(*_KEY_COLUMNS).order_by(api_keys_t.c.created_at.desc(), api_keys_t.c.id)
    if not include_revoked:
        query = query.where(api_keys_t.c.revoked_at.is_(None))
    return [ApiKey(*row) for row in conn.execute(query)]


def get_key(conn: Connection, key_id: str) -> ApiKey | None:
    """The key with this id, revoked or not; None if there is none (check `plausible_key_id` first)."""
    row = conn.execute(select(*_KEY_COLUMNS).where(api_keys_t.c.id == key_id)).first()
    return None if row is None else ApiKey(*row)


def revoke_key(conn: Connection, key_id: str, now: datetime) -> ApiKey | None:
    """Revoke the key at `now` unless it is revoked already; the key as it is then, None if absent."""
    conn.execute(
        update(api_keys_t)
        .where(api_keys_t.c.id == key_id, api_keys_t.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return get_key(conn, key_id)


def secret_digest(secret: object) -> str | None:
    """The hash to look `secret` up by; None when it is not text or not well formed (it is hashed
    before that check: the same work whatever part of it is wrong)."""
    if not isinstance(secret, str):
        return None
    digest = hash_secret(secret)
    if not is_well_formed(secret):
        return None
    return digest


def valid_key(conn: Connection, digest: str) -> ApiKey | None:
    """The unrevoked key whose secret hashes to `digest` (compared in constant time); None if none."""
    query = select(*_KEY_COLUMNS, api_keys_t.c.secret_hash).where(api_keys_t.c.secret_hash == digest)
    row = conn.execute(query).first()
    if row is None or not hmac.compare_digest(str(row[-1]), digest):
        return None
    key = ApiKey(*row[:-1])
    if key.revoked_at is not None:
        return None
    return key


def last_used_due(key: ApiKey, now: datetime) -> bool:
    """Whether `key.last_used_at` is older than `LAST_USED_RESOLUTION` at `now` (or unset)."""
    return key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION


def touch_last_used(conn: Connection, key_id: str, now: datetime) -> bool:
    """Set `last_used_at` to `now` unless someone set it within `LAST_USED_RESOLUTION` already
    (so concurrent verifiers write it once); whether this call wrote it."""
    cutoff = now - LAST_USED_RESOLUTION
    stmt = (
        update(api_keys_t)
        .where(
            api_keys_t.c.id == key_id,
            or_(api_keys_t.c.last_used_at.is_(None), api_keys_t.c.last_used_at <= cutoff),
        )
        .values(last_used_at=now)
    )
    return bool(conn.execute(stmt).rowcount)
