"""API keys for the admin API: what a key is, its scopes, and how secrets are made and hashed.

A secret is `rdk_` followed by 32 random bytes in URL-safe base64 (47 characters). It is
shown once, when the key is created; the store keeps only its SHA-256 (hex) and its first
`PREFIX_LENGTH` characters (to recognise a key in listings). 32 random bytes cannot be
guessed, so a fast hash is enough: no salt, no key stretching, and the hash is the lookup key.

Scopes are hierarchical: `admin` allows everything `write` allows, which allows everything
`read` allows. This module is pure (no database): the `api_keys` table's SQL is
`redirectory.store.key_table`, and the `Store` methods (`create_key`, `list_keys`, `get_key`,
`revoke_key`, `verify_key`) delegate to it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from redirectory.rules.model import format_timestamp

__all__ = [
    "LAST_USED_RESOLUTION",
    "MAX_NAME_LENGTH",
    "PREFIX_LENGTH",
    "SCOPES",
    "SECRET_PREFIX",
    "ApiKey",
    "Scope",
    "hash_secret",
    "is_well_formed",
    "new_secret",
    "scope_allows",
    "validate_name",
    "validate_scope",
]

class Scope(StrEnum):
    """What an API key may do, weakest first: each one allows what the ones before it allow."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


#: Every scope's text, weakest first.
SCOPES: tuple[str, ...] = tuple(scope.value for scope in Scope)
#: What every secret starts with (recognisable in logs, config files and secret scanners).
SECRET_PREFIX = "rdk_"  # noqa: S105 - a public marker, not a password
#: How many leading characters of a secret are stored and listed (`rdk_` + 8 random ones).
PREFIX_LENGTH = 12
#: Longest key name.
MAX_NAME_LENGTH = 200
#: `last_used_at` is written at most this often per key (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)

_RANDOM_BYTES = 32
_SECRET_RE = re.compile(r"rdk_[A-Za-z0-9_-]{43}")
_RANK = {scope: rank for rank, scope in enumerate(SCOPES)}


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key as stored, without its secret or hash.

    `prefix` is the start of the secret (e.g. `rdk_AbCdEfGh`); `revoked_at` is None while
    the key is valid; `last_used_at` is None until it is first used, and then accurate to
    about `LAST_USED_RESOLUTION`. Times are aware UTC.
    """

    id: str
    name: str
    scope: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, needed: str) -> bool:
        """True when this key is not revoked and its scope covers `needed`."""
        return not self.revoked and scope_allows(self.scope, needed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, times as ISO 8601 UTC (`...Z`) or None."""
        return {
            "id": self.id,
            "name": self.name,
            "scope": self.scope,
            "prefix": self.prefix,
            "created_at": format_timestamp(self.created_at),
            "last_used_at": None if self.last_used_at is None else format_timestamp(self.last_used_at),
            "revoked_at": None if self.revoked_at is None else format_timestamp(self.revoked_at),
        }


def scope_allows(granted: str, needed: str) -> bool:
    """Whether a key with scope `granted` may do what needs scope `needed`.

    admin ⊇ write ⊇ read. An unknown scope on either side allows nothing.
    """
    have = _RANK.get(granted)
    want = _RANK.get(needed)
    return have is not None and want is not None and have >= want


def validate_scope(scope: object) -> str:
    """`scope` if it is one of SCOPES, else ValueError naming the valid ones."""
    if not isinstance(scope, str) or scope not in _RANK:
        raise ValueError(f"unknown scope {scope!r} (valid scopes: {', '.join(SCOPES)})")
    return scope


#: Characters a key name must not hold: controls, line and paragraph separators, bidirectional
#: overrides (they disguise names in listings) and unpaired surrogates.
_FORBIDDEN = "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069\\ud800-\\udfff"
#: What a key name may be: at least one non-space character and none of the above (this is also
#: the admin API's schema pattern).
NAME_PATTERN = rf"^[^{_FORBIDDEN}]*[^\s{_FORBIDDEN}][^{_FORBIDDEN}]*$"
_NAME = re.compile(NAME_PATTERN)


def validate_name(name: object) -> str:
    """`name` if it is 1-200 printable characters (see `NAME_PATTERN`) and not blank, else ValueError."""
    if not isinstance(name, str):
        raise ValueError(f"name must be text (got {type(name).__name__})")
    if not name.strip():
        raise ValueError("name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"name must be at most {MAX_NAME_LENGTH} characters (got {len(name)})")
    if not _NAME.fullmatch(name):
        raise ValueError("name must be printable text: no control characters, tabs, line breaks or "
                         "bidirectional overrides")
    return name


def new_secret() -> str:
    """A new secret: `rdk_` + 32 random bytes, URL-safe base64 without padding."""
    return SECRET_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)


def is_well_formed(secret: object) -> bool:
    """Whether `secret` looks like something `new_secret` makes (says nothing about validity)."""
    return isinstance(secret, str) and _SECRET_RE.fullmatch(secret) is not None


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of the secret's UTF-8 bytes (what `api_keys.secret_hash` holds)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
