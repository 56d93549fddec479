"""A sharded RE2 set: which of many regexes match a text, at any count, in linear time.

One `re2.Set` of every regex rule stops compiling at a few thousand patterns (RE2's memory budget,
`max_mem`, bounds the compiled program) and its compilation cost grows with the whole table. Here
the patterns are kept in precedence order (by a sort key the caller gives) and cut into shards,
contiguous runs of that order, each of at most SHARD_PATTERNS patterns and SHARD_BYTES of pattern
text, compiled into its own set with a memory budget of SHARD_MAX_MEM:

- a shard that RE2 refuses to compile is split in two, again and again; a pattern that cannot be
  compiled into a set even alone is tried on its own (`re2.compile(...).search`, with at least RE2's
  default budget), and a pattern
  that RE2 cannot compile at all matches nothing (validated rules never hold one);
- every set holds one more pattern, the empty one, which matches every text: a set whose DFA runs
  out of memory while matching answers "no match" (RE2 does not fall back to the NFA for sets),
  so a result without it is known to be a failure, and that shard's patterns are then tried one
  by one instead of silently matching nothing;
- changes are cheap: `add` and `remove` put one pattern into (out of) its shard, in order, and mark
  the shard stale; a stale shard is compiled again on the next `match` (or by `prepare`, a step at
  a time). Loading 100,000 patterns costs no compilation until the first match.

`match` returns the values of every matching pattern, in key order. Everything stays RE2: matching
time is linear in the text for every pattern.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import re2

V = TypeVar("V")

#: Most patterns in one shard (more shards: more sets to run per text; bigger shards: a longer
#: compilation after a change and more DFA states).
SHARD_PATTERNS = 16384
#: Most pattern text (characters) in one shard: RE2's program grows with it.
SHARD_BYTES = 1024 * 1024
#: RE2's memory budget for one shard: the compiled program plus its DFA cache.
SHARD_MAX_MEM = 128 << 20
#: RE2's own default budget (`re2.Options().max_mem`), the least a pattern tried alone gets.
RE2_DEFAULT_MAX_MEM = 8 << 20


def _options(max_mem: int) -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = max_mem
    return options


@dataclass(slots=True, eq=False)
class _Shard(Generic[V]):
    keys: list[Any] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    values: list[V] = field(default_factory=list)
    size: int = 0  # characters of pattern text
    # Compiled form, None when stale: a list of (set or None, first index, patterns' own regexes).
    parts: list[_Part] | None = None


@dataclass(slots=True, eq=False)
class _Part:
    """Some of a shard's patterns (`indices`, ascending): one compiled set, or (`rset` None) one
    pattern tried alone."""

    indices: list[int]
    rset: Any  # re2 Set, or None
    alone: Any  # the pattern compiled alone (rset None), or None when it cannot be compiled
    singles: list[Any] | None = None  # each pattern compiled alone, after the set failed once


class RegexSet(Generic[V]):
    """Patterns with unique, ordered keys; `match(text)` gives the matching ones' values in key order.

    Not thread-safe for writers (like the matcher that holds it).
    """

    def __init__(
        self,
        *,
        shard_patterns: int = SHARD_PATTERNS,
        shard_bytes: int = SHARD_BYTES,
        max_mem: int = SHARD_MAX_MEM,
    ):
        if shard_patterns < 1 or shard_bytes < 1:
            raise ValueError("shard_patterns and shard_bytes must be positive")
        self.shard_patterns = shard_patterns
        self.shard_bytes = shard_bytes
        self.max_mem = max_mem
        self._options = _options(max_mem)
        # A pattern tried alone gets at least RE2's default budget: what validation compiled it with.
        self._alone_options = _options(max(max_mem, RE2_DEFAULT_MAX_MEM))
        self._shards: list[_Shard[V]] = []
        self._lasts: list[Any] = []  # the last key of each shard (for bisection)
        self._len = 0
        self.failures = 0  # matches whose set ran out of memory (answered pattern by pattern)

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    @property
    def shards(self) -> int:
        return len(self._shards)

    # -- changes -------------------------------------------------------------------------
    def add(self, key: Any, pattern: str, value: V) -> None:
        """Add a pattern under a new key (keys must be unique and mutually comparable)."""
        shards = self._shards
        if not shards:
            shards.append(_Shard())
            self._lasts.append(key)
        i = bisect_left(self._lasts, key)
        if i == len(shards):
            i -= 1  # after every key: the last shard takes it
        shard = shards[i]
        j = bisect_left(shard.keys, key)
        if j < len(shard.keys) and shard.keys[j] == key:
            raise KeyError(f"duplicate key {key!r}")
        shard.keys.insert(j, key)
        shard.patterns.insert(j, pattern)
        shard.values.insert(j, value)
        shard.size += len(pattern)
        shard.parts = None
        self._lasts[i] = shard.keys[-1]
        self._len += 1
        if len(shard.keys) > self.shard_patterns or (shard.size > self.shard_bytes and len(shard.keys) > 1):
            self._split(i)

    def remove(self, key: Any) -> V:
        """Remove the pattern under `key` and return its value; KeyError if there is none."""
        i = bisect_left(self._lasts, key)
        if i == len(self._shards):
            raise KeyError(key)
        shard = self._shards[i]
        j = bisect_left(shard.keys, key)
        if j == len(shard.keys) or shard.keys[j] != key:
            raise KeyError(key)
        del shard.keys[j]
        shard.size -= len(shard.patterns.pop(j))
        value = shard.values.pop(j)
        shard.parts = None
        self._len -= 1
        if not shard.keys:
            del self._shards[i]
            del self._lasts[i]
        else:
            self._lasts[i] = shard.keys[-1]
        return value

    def clear(self) -> None:
        self._shards.clear()
        self._lasts.clear()
        self._len = 0

    def values(self) -> Iterator[V]:
        """Every value, in key order."""
        for shard in self._shards:
            yield from shard.values

    def _split(self, i: int) -> None:
        shard = self._shards[i]
        half = len(shard.keys) // 2
        right: _Shard[V] = _Shard(shard.keys[half:], shard.patterns[half:], shard.values[half:])
        right.size = sum(len(p) for p in right.patterns)
        del shard.keys[half:], shard.patterns[half:], shard.values[half:]
        shard.size -= right.size
        self._shards.insert(i + 1, right)
        self._lasts[i] = shard.keys[-1]
        self._lasts.insert(i + 1, right.keys[-1])

    # -- compilation ---------------------------------------------------------------------
    def prepare(self) -> Iterator[None]:
        """Compile every stale shard now, one shard per step (so a caller can interleave other work)."""
        for shard in list(self._shards):
            if shard.parts is None:
                shard.parts = self._compile(shard.patterns, 0, len(shard.patterns))
                yield

    def _compile(self, patterns: list[str], start: int, stop: int) -> list[_Part]:
        """Parts covering patterns[start:stop]: a pattern RE2 cannot parse alone, then one set of
        the others if RE2 compiles it, else halves, recursively."""
        parts: list[_Part] = []
        usable: list[int] = []
        probe = re2.Set.SearchSet(self._options)
        for k in range(start, stop):
            try:
                probe.Add(patterns[k])
            except re2.error:
                parts.append(_Part([k], None, _alone(patterns[k], self._alone_options)))
            else:
                usable.append(k)
        return parts + self._sets(patterns, usable)

    def _sets(self, patterns: list[str], indices: list[int]) -> list[_Part]:
        if not indices:
            return []
        rset = re2.Set.SearchSet(self._options)
        try:
            for k in indices:
                rset.Add(patterns[k])
            rset.Add("")  # the sentinel: matches every text (see the module docstring)
            rset.Compile()
        except re2.error:
            if len(indices) == 1:
                return [_Part(indices, None, _alone(patterns[indices[0]], self._alone_options))]
            mid = len(indices) // 2
            return self._sets(patterns, indices[:mid]) + self._sets(patterns, indices[mid:])
        return [_Part(indices, rset, None)]

    # -- matching ------------------------------------------------------------------------
    def match(self, text: str) -> list[V]:
        """The values of every pattern that matches somewhere in `text`, in key order."""
        found: list[V] = []
        encoded = text.encode("utf-8", "surrogateescape")
        for shard in self._shards:
            parts = shard.parts
            if parts is None:
                parts = shard.parts = self._compile(shard.patterns, 0, len(shard.patterns))
            values = shard.values
            if len(parts) == 1 and parts[0].rset is not None:  # the common case: one set
                part = parts[0]
                hits = part.rset.Match(encoded)
                if hits is not None and len(hits) == 1 and hits[0] == len(part.indices):
                    continue  # only the sentinel
                matched = self._hits(shard, part, hits, encoded)
                matched.sort()
            else:
                matched = []
                for part in parts:
                    if part.rset is None:
                        if part.alone is not None and part.alone.search(encoded) is not None:
                            matched.append(part.indices[0])
                    else:
                        matched += self._hits(shard, part, part.rset.Match(encoded), encoded)
                matched.sort()
            found += [values[k] for k in matched]
        return found

    def _hits(self, shard: _Shard[V], part: _Part, hits: list[int] | None, encoded: bytes) -> list[int]:
        """The shard indices a set's answer means (pattern by pattern when the set failed)."""
        indices = part.indices
        sentinel = len(indices)
        if hits is None or sentinel not in hits:
            self.failures += 1
            if part.singles is None:
                part.singles = [_alone(shard.patterns[k], self._alone_options) for k in indices]
            return [k for k, rx in zip(indices, part.singles, strict=True)
                    if rx is not None and rx.search(encoded) is not None]
        return [indices[h] for h in hits if h != sentinel]


def _alone(pattern: str, options: Any) -> Any:
    try:
        return re2.compile(pattern.encode("utf-8", "surrogateescape"), options)
    except re2.error:
        return None
