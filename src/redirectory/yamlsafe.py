"""YAML in, safely: every YAML document redirectory reads (rule files, imports, the checker's
OpenAPI documents) is composed here, into PyYAML's node graph (nodes keep their line).

- libyaml does the parsing when PyYAML has it (`CSafeLoader`): several times faster, and it
  refuses documents nested deeper than 1000 levels;
- aliases are bounded. An alias (`*name`) repeats its anchor's whole value, so a few lines of
  aliases of aliases ("billion laughs") stand for billions of values. The values aliases add
  to a document may be at most `ALIAS_RATIO` times the values it writes, or `ALIAS_FLOOR` if
  that is more; legitimate uses (a `<<: *defaults` merge in every rule, a schema reused in
  an OpenAPI document) stay far below. An alias inside the very value it names (a recursive
  alias) is refused too: its expansion has no end;
- every failure is a `YamlError` with a line, never a library exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import Node, ScalarNode

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

#: Aliases may add at most this many times the values a document writes...
ALIAS_RATIO = 10
#: ...or this many values, if that is more.
ALIAS_FLOOR = 10_000

_CONSTRUCTOR = SafeConstructor()
#: Where an anchor (`&a`) or an alias (`*a`) could begin: the start of a line, after white space
#: (\s includes YAML's other line breaks), a flow indicator or a `:`. Text with no place for both
#: has no alias, and skips the pass over its events.
_ANCHOR = re.compile(r"(?:^|[\s\[{,:])&", re.MULTILINE)
_ALIAS = re.compile(r"(?:^|[\s\[{,:])\*", re.MULTILINE)


class YamlError(ValueError):
    """Why a YAML text cannot be read, with its 1-based line (None when unknown).

    `code` is "syntax" (not YAML) or "aliases" (YAML whose aliases are refused)."""

    def __init__(self, message: str, line: int | None, code: str = "syntax") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.code = code


def compose(text: str) -> Node | None:
    """The node graph of the single YAML document in `text` (None when it holds none).

    Raises YamlError, and only YamlError."""
    try:
        if _ANCHOR.search(text) and _ALIAS.search(text):
            _check_aliases(text)
        return yaml.compose(text, Loader=_Loader)
    except YamlError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(p for p in (exc.context, exc.problem) if p) or "syntax error"
        column = f" (column {mark.column + 1})" if mark is not None else ""
        raise YamlError(what + column, mark.line + 1 if mark is not None else None) from None
    except yaml.reader.ReaderError as exc:
        raise YamlError(f"{exc.reason} (character {exc.character!r})", _line_of(text, exc.position)) from None
    except UnicodeError as exc:
        raise YamlError("characters that cannot be encoded as UTF-8",
                        _line_of(text, getattr(exc, "start", 0))) from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, MemoryError) as exc:
        raise YamlError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, None) from None


def scalar_value(node: ScalarNode) -> Any:
    """A scalar's value by YAML 1.1's safe rules (`yes` is True, `2026-01-01` a date, ...).

    Raises YamlError for a tag the safe rules do not know (such as `!foo`)."""
    construct = _CONSTRUCTOR.yaml_constructors.get(node.tag)
    if construct is None or node.tag in ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"):
        raise YamlError(f"unknown tag {node.tag!r}: use plain values", node.start_mark.line + 1)
    try:
        return construct(_CONSTRUCTOR, node)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        raise YamlError(f"{node.value[:60]!r} cannot be read as {node.tag}: {exc}",
                        node.start_mark.line + 1) from None


def _check_aliases(text: str) -> None:
    """Refuse recursive aliases, and aliases that add more values than the bound.

    One pass over the parser's events: each anchor's expanded size (in values: scalars, lists
    and mappings) is known when its value ends, and an alias adds that size again."""
    added = 0  # values the aliases add
    sizes: dict[str, int] = {}  # anchor -> its value's expanded size
    totals = [0]  # expanded size so far of each collection being read (the first: the stream)
    anchors: list[str | None] = [None]  # their anchors
    past_floor: list[tuple[int, int | None, str]] = []  # (added so far, line, alias) once added > ALIAS_FLOOR
    events: Iterator[Any] = yaml.parse(text, Loader=_Loader)  # Any: dispatched on type(), not isinstance
    for event in events:
        kind = type(event)
        if kind is ScalarEvent:
            totals[-1] += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            totals.append(1)
            anchors.append(event.anchor)
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            total, anchor = totals.pop(), anchors.pop()
            if anchor is not None:
                sizes[anchor] = total
            totals[-1] += total
        elif kind is AliasEvent:
            name = event.anchor or ""
            line = event.start_mark.line + 1 if event.start_mark is not None else None
            size = sizes.get(name)
            if size is None:
                if name in anchors:
                    raise YamlError(
                        f"the alias *{name} stands for a list or mapping that contains it (a recursive alias, "
                        "whose expansion has no end): write the value out instead", line, "aliases")
                continue  # an undefined alias: composing reports it
            added += size
            totals[-1] += size
            if added > ALIAS_FLOOR:
                past_floor.append((added, line, name))
        elif kind is DocumentStartEvent:
            sizes.clear()
    written = totals[0] - added
    bound = max(ALIAS_FLOOR, ALIAS_RATIO * written)
    for so_far, line, name in past_floor:
        if so_far > bound:
            raise YamlError(
                f"the alias *{name} takes the values this document's aliases add past {bound} (the document "
                f"writes {written} values; aliases may add {ALIAS_RATIO} times that, or {ALIAS_FLOOR}, "
                "whichever is more): repeat fewer values through aliases", line, "aliases")


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, max(0, offset)) + 1
