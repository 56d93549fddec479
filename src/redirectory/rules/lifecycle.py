"""An endpoint's lifecycle on a rule: `deprecation`, `sunset` and `links`, sent as headers. Pure.

Rules of this module:
- `deprecation: 2026-06-01T00:00:00Z` is sent as RFC 9745's `Deprecation: @1780272000` (a Structured
  Field Date: seconds since the epoch); `sunset:` as RFC 8594's `Sunset: Mon, 01 Jun 2026 00:00:00 GMT`
  (an IMF-fixdate). The sunset may not come before the deprecation (`parsing` says so);
- `links` maps a relation type to a URL, sent as one RFC 8288 `Link` header:
  `{successor-version: /api/v2/users, deprecation: https://docs.example/v1}` gives
  `Link: </api/v2/users>; rel="successor-version", <https://docs.example/v1>; rel="deprecation"`.
  A relation is a lower-case registered name (`successor-version`, `deprecation`, `sunset`,
  `latest-version`...); a URL is an absolute http(s) URL or an absolute path, with no space, quote,
  `<`, `>` or control character (nothing can break out of the header);
- the gateway adds these headers to the answers of the rule (its redirects, or the 404 of a rule that
  redirects nothing); the toolkit also adds them to the application's own responses for the paths of
  a rule that redirects nothing: the way to announce the end of an endpoint an app still serves;
- links are held as canonical JSON text (relations sorted); files and the admin API show the mapping.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

#: Most relations one rule may carry.
MAX_LINKS = 16
MAX_URL = 2048
_REL = re.compile(r"[a-z][a-z0-9.\-]{0,63}")
_URL = re.compile(r"(?:[hH][tT][tT][pP][sS]?://[^\x00-\x20\x7f\"<>\\^`{|}/?#]+|(?=/))[^\x00-\x20\x7f\"<>\\^`{|}]*")

Headers = tuple[tuple[str, str], ...]


class LinksError(ValueError):
    """`links` that cannot be read; the message says what would be valid."""


def parse_links(value: Any) -> str:
    """The canonical text of a file's or the API's `links` (a mapping, or its JSON text in CSV)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise LinksError("must be a mapping of relation to URL such as {successor-version: /api/v2/users} "
                             "(in CSV, its JSON text)") from None
    if not isinstance(value, Mapping) or not value:
        raise LinksError("must be a mapping of relation to URL such as {successor-version: /api/v2/users}")
    if len(value) > MAX_LINKS:
        raise LinksError(f"holds {len(value)} links; at most {MAX_LINKS}")
    out: dict[str, str] = {}
    for rel, url in value.items():
        if not isinstance(rel, str) or not _REL.fullmatch(rel):
            raise LinksError(f"{rel!r} is not a relation type: a lower-case name such as successor-version, "
                             "deprecation or sunset")
        if not isinstance(url, str) or len(url) > MAX_URL or not _URL.fullmatch(url):
            raise LinksError(f"the {rel} link must be an absolute http(s) URL or an absolute path, without "
                             f"spaces, quotes, < or > (at most {MAX_URL} characters), got {url!r}")
        out[rel] = url
    return json.dumps(out, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def links_shown(text: str) -> dict[str, str]:
    """The canonical text as the mapping files and the API show."""
    data: dict[str, str] = json.loads(text)
    return data


def deprecation_value(when: datetime) -> str:
    """RFC 9745: `@` and the seconds since the epoch."""
    return f"@{int(when.timestamp())}"


def sunset_value(when: datetime) -> str:
    """RFC 8594: an IMF-fixdate (`Mon, 01 Jun 2026 00:00:00 GMT`)."""
    return format_datetime(when.astimezone(UTC), usegmt=True)


@functools.lru_cache(maxsize=1024)
def link_value(text: str) -> str:
    """The `Link` header of canonical links text."""
    return ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links_shown(text).items())


def headers(deprecation: datetime | None, sunset: datetime | None, links: str | None) -> Headers:
    """The lifecycle headers of a rule (empty when it has none)."""
    out: list[tuple[str, str]] = []
    if deprecation is not None:
        out.append(("deprecation", deprecation_value(deprecation)))
    if sunset is not None:
        out.append(("sunset", sunset_value(sunset)))
    if links is not None:
        out.append(("link", link_value(links)))
    return tuple(out)
