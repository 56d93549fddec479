"""A rule's `query` policy: which of the request's query parameters reach the target. Pure.

Rules of this module:
- `keep` (the default) passes the request's query on, `drop` passes none: the two shorthands;
- the policy object says more:

      query:
        strip: [utm_*, gclid, fbclid]   # removed first: never matched (query_match, query_exact), never passed
        pass: unmatched                 # all (= keep) | none (= drop) | unmatched | [page, sort]

  `strip` names parameters, a trailing `*` standing for any end (`utm_*`); they are taken out of the
  request's query before the rule's query conditions are checked, so a tracking parameter never
  keeps an exact rule (`query_exact`) from answering, and they are never passed on. `pass: unmatched`
  passes every parameter but those the rule's `query_match` names (`?page_id=12&lang=en` to
  `/about?lang=en`); a list passes those names only (an allow-list);
- names are compared decoded (`utm%5Fsource` is `utm_source`); the parameters passed keep their
  order and their encoding as sent, and are merged into the target's query as `keep` merges them;
- a policy is held as one canonical text: `keep`, `drop`, or compact JSON with sorted keys
  (`{"pass":"unmatched","strip":["utm_*"]}`); files and the admin API show the object.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

KEEP = "keep"
DROP = "drop"
PASS_MODES = ("all", "none", "unmatched")
#: Most names `strip` or a `pass` list may hold.
MAX_NAMES = 64
_NAME = re.compile(r"[^\x00-\x20&=#]{1,128}")


class QueryPolicyError(ValueError):
    """A `query` that cannot be read; the message says what would be valid."""


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed policy. `passes`: "all", "none", "unmatched" or a tuple of names."""

    strip: tuple[str, ...] = ()
    passes: str | tuple[str, ...] = "all"

    def stripped(self, name: str) -> bool:
        return any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in self.strip)


_KEEP = Policy()
_DROP = Policy(passes="none")


def _names(value: Any, what: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or isinstance(items, bytes) or not items:
        raise QueryPolicyError(f"`{what}` must be a list of parameter names such as [utm_*, gclid]")
    if len(items) > MAX_NAMES:
        raise QueryPolicyError(f"`{what}` names {len(items)} parameters; at most {MAX_NAMES}")
    for item in items:
        if not isinstance(item, str) or not _NAME.fullmatch(item):
            raise QueryPolicyError(f"`{what}`: {item!r} is not a parameter name (1-128 characters, no space, "
                                   "&, = or #; a trailing * matches any end)")
    return tuple(items)


def parse(value: Any) -> str:
    """The canonical text of a file's or the API's `query` value (`keep`, `drop` or an object)."""
    if value in (KEEP, DROP):
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):  # a CSV cell, or the canonical text itself
            try:
                value = json.loads(text)
            except ValueError:
                raise QueryPolicyError("is not a JSON object: write keep, drop or {\"strip\": [...], "
                                       "\"pass\": ...}") from None
        else:
            raise QueryPolicyError(f"must be keep (pass the request's query on), drop (leave it out) or a "
                                   f"policy {{strip: [...], pass: all|none|unmatched|[names]}}, got {value!r}")
    if not isinstance(value, Mapping):
        raise QueryPolicyError("must be keep, drop or a policy {strip: [...], pass: all|none|unmatched|[names]}")
    unknown = [k for k in value if k not in ("strip", "pass")]
    if unknown:
        raise QueryPolicyError(f"unknown key {unknown[0]!r}: a query policy has `strip` and `pass`")
    out: dict[str, Any] = {}
    if value.get("strip") is not None:
        out["strip"] = sorted(set(_names(value["strip"], "strip")))
    passes = value.get("pass", "all")
    if isinstance(passes, str) and passes in PASS_MODES:
        if passes != "all":
            out["pass"] = passes
    elif isinstance(passes, str):
        raise QueryPolicyError(f"`pass` must be all, none, unmatched or a list of names, got {passes!r}")
    else:
        out["pass"] = sorted(set(_names(passes, "pass")))
    if not out:
        return KEEP
    if out == {"pass": "none"}:
        return DROP
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


@functools.lru_cache(maxsize=4096)
def policy(text: str) -> Policy:
    """The parsed canonical text."""
    if text == KEEP:
        return _KEEP
    if text == DROP:
        return _DROP
    data = json.loads(text)
    passes = data.get("pass", "all")
    return Policy(tuple(data.get("strip", ())), passes if isinstance(passes, str) else tuple(passes))


def shown(text: str) -> str | dict[str, Any]:
    """The canonical text as files and the API show it: `keep`, `drop` or the object."""
    if text in (KEEP, DROP):
        return text
    data: dict[str, Any] = json.loads(text)
    return data


def without_stripped(query: str, p: Policy) -> str:
    """A raw query without the pieces `p` strips (as sent otherwise)."""
    if not p.strip or not query:
        return query
    return "&".join(piece for piece in query.split("&")
                    if piece and not p.stripped(unquote_plus(piece.partition("=")[0])))


def passed(query: str, p: Policy, matched: Sequence[tuple[str, str]] = ()) -> str:
    """The raw pieces of a request's query the target gets (`matched`: the rule's `query_match`
    conditions, (name, value) pairs)."""
    if not query or p.passes == "none":
        return ""
    if p.passes == "all" and not p.strip:
        return query
    kept = []
    for piece in query.split("&"):
        if not piece:
            continue
        name = unquote_plus(piece.partition("=")[0])
        if p.stripped(name):
            continue
        if p.passes == "unmatched" and any(name == n for n, _v in matched):
            continue
        if isinstance(p.passes, tuple) and name not in p.passes:
            continue
        kept.append(piece)
    return "&".join(kept)
