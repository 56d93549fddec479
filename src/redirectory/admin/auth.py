"""API keys: `Authorization: Bearer <key>` or `X-API-Key: <key>`; scopes read ⊂ write ⊂ admin.

No key -> 401 (with `WWW-Authenticate: Bearer`); a key without the scope a route needs -> 403.
Keys are stored hashed (see `store.keys`); a secret is never logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request

from redirectory.admin.errors import ApiError


def credentials(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    key = request.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def require(scope: str) -> Callable[[Request], Any]:
    """A FastAPI dependency: the caller's key, which must grant `scope`."""
    from redirectory.store.keys import scope_allows

    def dependency(request: Request) -> Any:
        secret = credentials(request)
        if secret is None:
            raise ApiError.one(401, "unauthorized",
                               "Send an API key in 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                               headers={"www-authenticate": 'Bearer realm="redirectory"'})
        key = request.app.state.store.verify_key(secret)
        if key is None:
            raise ApiError.one(401, "unauthorized", "The API key is unknown or revoked",
                               headers={"www-authenticate": 'Bearer realm="redirectory", error="invalid_token"'})
        if not scope_allows(key.scope, scope):
            raise ApiError.one(403, "forbidden", f"This key has scope '{key.scope}'; this operation needs '{scope}'")
        request.state.api_key = key
        return key

    return dependency
