"""What an admin request's URL may not hold: an API key, or control characters.

- A key goes in `Authorization: Bearer` or `X-API-Key`, never in the URL (URLs end up in logs,
  proxies and browser histories). A query parameter with a credential's name (`KEY_NAMES`,
  compared without case, `-`, `_` or `.`: `API_KEY`, `Api-Key` and `apikey` are one name), or any
  query name, value or path that looks like one of our secrets (`rdk_` and 8 or more key
  characters, whatever the parameter is called), is refused with 400 `keyInUrl` naming the
  parameter (a secret used as a name is shown as `rdk_...`); the key should be revoked.
- No query parameter of this API can hold a control character (U+0000-U+001F, U+007F): one
  that does is refused with 400 `invalidCharacter` naming it (PostgreSQL could not even compare
  a NUL). A path with one names no resource: 404, without looking it up.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Query

from redirectory.store.keys import SECRET_PREFIX

#: Query parameter names that carry credentials, normalised by `_normalise`.
KEY_NAMES = frozenset({
    "apikey", "key", "token", "accesstoken", "authtoken", "idtoken", "bearer", "auth", "authorization",
    "secret", "clientsecret", "password", "xapikey",
})
#: Something that looks like one of our secrets (`store.keys`: `rdk_` + 43 URL-safe characters).
KEY_LIKE = re.compile(re.escape(SECRET_PREFIX) + r"[A-Za-z0-9_-]{8,}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: The same, as a JSON Schema pattern for the OpenAPI document's string parameters.
NO_CONTROL_PATTERN = r"^[^\u0000-\u001f\u007f]*$"

Problem = tuple[int, str, str, list[str] | None]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.\s]", "", name).lower()


def shown(text: str) -> str:
    """`text` with its control characters escaped (`\\u0000`), for an error message."""
    return CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)[:100]


def url_problem(scope: MutableMapping[str, Any]) -> Problem | None:
    """(status, key, detail, fields) for a URL this API refuses, else None."""
    query = scope.get("query_string", b"").decode("latin-1")
    pairs = parse_qsl(query, keep_blank_values=True)
    path = scope["path"]
    leaked = sorted({KEY_LIKE.sub(SECRET_PREFIX + "...", shown(name)) for name, value in pairs
                     if _normalise(name) in KEY_NAMES or KEY_LIKE.search(name) or KEY_LIKE.search(value)})
    if leaked or KEY_LIKE.search(path):
        return (400, "keyInUrl", "API keys are accepted only in the Authorization (Bearer) or X-API-Key header, "
                "never in the URL; this key should be revoked", leaked or ["path"])
    controlled = sorted({shown(name) for name, value in pairs if CONTROL.search(name) or CONTROL.search(value)})
    if controlled:
        return (400, "invalidCharacter", f"{', '.join(controlled)}: query parameters cannot hold control "
                "characters (U+0000-U+001F, U+007F)", controlled)
    if CONTROL.search(path):  # a valid URL, naming nothing (and never looked up)
        return (404, "notFound", f"Nothing at {shown(path)}: no resource has a control character in its name",
                None)
    return None


def text_query(description: str) -> Any:
    """A free-text query parameter, documented with `NO_CONTROL_PATTERN` (enforced above)."""
    return Query(description=description, json_schema_extra={"pattern": NO_CONTROL_PATTERN})
