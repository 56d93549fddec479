"""YAML in, safely: every YAML document redirectory reads (rule files, imports, the checker's
OpenAPI documents) is read here, into PyYAML's node graph (nodes keep their line) or, for the
checker, straight into plain data and the line of each value.

- libyaml does the parsing when PyYAML has it (`CSafeLoader`): several times faster, and it
  refuses documents nested deeper than 1000 levels;
- aliases are bounded. An alias (`*name`) repeats its anchor's whole value, so a few lines of
  aliases of aliases ("billion laughs") stand for billions of values. The values aliases add
  to a document may be at most `ALIAS_RATIO` times the values it writes, or `ALIAS_FLOOR` if
  that is more; legitimate uses (a `<<: *defaults` merge in every rule, a schema reused in
  an OpenAPI document) stay far below. An alias inside the very value it names (a recursive
  alias) is refused too: its expansion has no end;
- every failure is a `YamlError` with a line, never a library exception.

`compose` gives the node graph (rule files); `load_located` gives the plain data and the line of
every value straight from libyaml's events, without the graph (the checker's big OpenAPI
documents: GitHub's 9.8 MB description in YAML reads in about 2 s instead of 8, in half the memory).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
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
from yaml.resolver import Resolver

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
    except (yaml.YAMLError, UnicodeError, RecursionError, ValueError, TypeError, MemoryError) as exc:
        raise _error(text, exc) from None


def load_located(text: str) -> tuple[Any, dict[str, int]] | None:
    """The data of the single YAML document in `text` and the 1-based line of each of its values,
    by JSON pointer ("" for the root, "/paths/~1users/get"); None when `text` holds no document.

    The data is what `compose` and `scalar_value` make of the text (`yaml.safe_load`'s, except
    that mapping keys are strings, `str()` of the value when it is not one, and that tags on
    lists and mappings are ignored); each alias is a copy of its anchor's value, `<<` merges are
    applied. The lines are the node graph's: a value's first line (for a block mapping, its
    first key's); an alias's values have their anchor's lines, and the values a `<<` merge
    brings have none. Aliases are bounded as in `compose`. Raises YamlError, and only YamlError."""
    try:
        try:
            return _build(text, ALIAS_FLOOR)
        except _PastFloor:  # rare in real documents: count them all, then build without a limit
            _check_aliases(text)
            return _build(text, None)
    except YamlError:
        raise
    except RecursionError:
        raise YamlError("nested too deeply to read", None) from None
    except (yaml.YAMLError, UnicodeError, ValueError, TypeError, MemoryError) as exc:
        raise _error(text, exc) from None


def _error(text: str, exc: BaseException) -> YamlError:
    """A library's exception while reading `text`, as a YamlError with its line."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(p for p in (exc.context, exc.problem) if p) or "syntax error"
        column = f" (column {mark.column + 1})" if mark is not None else ""
        return YamlError(what + column, mark.line + 1 if mark is not None else None)
    if isinstance(exc, yaml.reader.ReaderError):
        return YamlError(f"{exc.reason} (character {exc.character!r})", _line_of(text, exc.position))
    if isinstance(exc, UnicodeError):
        return YamlError("characters that cannot be encoded as UTF-8", _line_of(text, getattr(exc, "start", 0)))
    return YamlError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, None)


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


_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_RESOLVER = Resolver()
_resolve: Callable[[type, str, tuple[bool, bool]], str] = _RESOLVER.resolve
_MERGE: Any = object()  # the key of a `<<` merge, in a mapping being read


class _PastFloor(Exception):
    """Aliases add more than ALIAS_FLOOR values: whether that is allowed needs the whole count."""


def _build(text: str, limit: int | None) -> tuple[Any, dict[str, int]] | None:
    """`load_located`'s work, in one pass over libyaml's events; _PastFloor when aliases add more
    than `limit` values.

    A frame per list or mapping being read: [container, its pointer, the key whose value comes
    next (None: a key comes next), how many merges it is inside (values inside merges get no
    line), its merges, its anchor, where its lines start in `log`, `count` before it]."""
    lines: dict[str, int] = {}
    stack: list[list[Any]] = []
    root: Any = None
    frame: Any = None  # the open list or mapping the event's value goes in
    container: Any = None  # its list or dict
    documents = 0
    count = 0  # values read so far: scalars, lists and mappings, and the values aliases add
    added = 0  # the values aliases add
    done: dict[str, tuple[Any, int, list[tuple[str, int]]]] = {}  # anchor -> (value, size, lines under it)
    opened: list[str] = []  # the anchors of the lists and mappings being read
    log: list[tuple[str, int, int]] = []  # (pointer, line, merges) of each value read while an anchor is open
    resolvers = _RESOLVER.yaml_implicit_resolvers
    special = frozenset(resolvers) if None not in resolvers else None  # first characters that may not be str
    plain: dict[str, str] = {}  # the tags of short plain scalars resolved so far ("type", "true", "200", ...)

    def plain_tag(value: str) -> str:
        """The tag of a plain scalar that may be something else than a string: YAML's regular expressions."""
        tag = plain.get(value)
        if tag is None:
            tag = _resolve(ScalarNode, value, (True, False))
            if len(value) <= 64:
                plain[value] = tag
        return tag

    events: Iterator[Any] = yaml.parse(text, Loader=_Loader)  # Any: dispatched on type(), not isinstance
    for event in events:
        kind = type(event)
        if kind is MappingEndEvent or kind is SequenceEndEvent:
            frame = stack.pop()
            container = frame[0]
            if frame[4]:  # `<<` merges: the keys the mapping does not set itself, the first source first
                for merged in frame[4]:
                    for source in merged if type(merged) is list else [merged]:
                        if type(source) is dict:
                            for key, value in source.items():
                                container.setdefault(key, value)
            name = frame[5]
            if name is not None:
                start, cut, merges = frame[6], len(frame[1]), frame[3]
                done[name] = (container, count - frame[7],
                              [(pointer[cut:], line) for pointer, line, level in log[start:] if level == merges])
                opened.pop()
                if not opened:
                    log.clear()
            continue
        if kind is DocumentStartEvent:
            if documents:
                raise YamlError("expected a single document in the stream but found another document "
                                f"(column {event.start_mark.column + 1})", event.start_mark.line + 1)
            documents = 1
            continue
        if kind is not ScalarEvent and kind is not AliasEvent and kind is not MappingStartEvent \
                and kind is not SequenceStartEvent:
            continue  # the stream's and the document's other events
        line = event.start_mark.line + 1
        anchor = event.anchor
        if stack:
            frame = stack[-1]
            container = frame[0]
            if type(container) is dict:
                key = frame[2]
                if key is None:  # a mapping key: a string, never a line of its own
                    if kind is ScalarEvent:
                        count += 1
                        value, tag = event.value, event.tag
                        if tag is None or tag == "!":
                            if not event.implicit[0]:
                                tag = _STR  # quoted
                            elif special is not None and value and value[0] not in special:
                                tag = _STR  # plain, and nothing else than a string
                            else:
                                tag = plain_tag(value)
                        if tag == _STR:
                            key = value
                        elif tag == _MERGE_TAG:
                            key = _MERGE
                        else:
                            value = _scalar(event, tag)
                            key = value if type(value) is str else str(value)
                        if anchor is not None:
                            _anchor(anchor, line, done, opened)
                            done[anchor] = ("<<" if key is _MERGE else value, 1, [("", line)])
                    elif kind is AliasEvent:
                        value, size, _lines = _aliased(event, line, done, opened)
                        count += size
                        added += size
                        if limit is not None and added > limit:
                            raise _PastFloor
                        if type(value) is dict or type(value) is list:
                            raise YamlError("a list or mapping as a mapping key: use a plain key", line)
                        key = value if type(value) is str else str(value)
                    else:
                        raise YamlError("a list or mapping as a mapping key: use a plain key", line)
                    frame[2] = key
                    continue
                if key is _MERGE:
                    pointer, merges = frame[1] + "/<<", frame[3] + 1
                else:
                    if "~" in key or "/" in key:
                        key = key.replace("~", "~0").replace("/", "~1")
                    pointer, merges = frame[1] + "/" + key, frame[3]
            else:
                pointer, merges = f"{frame[1]}/{len(container)}", frame[3]
        else:
            frame, container = None, None
            pointer, merges = "", 0
        if kind is ScalarEvent:
            count += 1
            value, tag = event.value, event.tag
            if tag is None or tag == "!":
                if not event.implicit[0]:
                    pass  # quoted: a string
                elif special is not None and value and value[0] not in special:
                    pass  # plain, and nothing else than a string
                else:
                    tag = plain_tag(value)
                    if tag == _INT and value.isdigit() and value.isascii() and (value[0] != "0" or len(value) == 1):
                        value = int(value)
                    elif tag != _STR:
                        value = _scalar(event, tag)
            elif tag != _STR:
                value = _scalar(event, tag)
            if merges == 0:
                lines[pointer] = line
            if opened:
                log.append((pointer, line, merges))
            if anchor is not None:
                _anchor(anchor, line, done, opened)
                done[anchor] = (value, 1, [("", line)])
        elif kind is AliasEvent:
            value, size, under = _aliased(event, line, done, opened)
            count += size
            added += size
            if limit is not None and added > limit:
                raise _PastFloor
            if type(value) is dict or type(value) is list:
                value = _copy(value)
            for suffix, at in under:
                if merges == 0:
                    lines[pointer + suffix] = at
                if opened:
                    log.append((pointer + suffix, at, merges))
        else:
            count += 1
            value = {} if kind is MappingStartEvent else []
            if anchor is not None:
                _anchor(anchor, line, done, opened)
                opened.append(anchor)
            if merges == 0:
                lines[pointer] = line
            if opened:
                log.append((pointer, line, merges))
            stack.append([value, pointer, None, merges, None, anchor, len(log) - 1, count - 1])
        if frame is None:
            root = value
        elif type(container) is dict:
            if frame[2] is _MERGE:
                if frame[4] is None:
                    frame[4] = []
                frame[4].append(value)
            else:
                container[frame[2]] = value
            frame[2] = None
        else:
            container.append(value)
    return (root, lines) if documents else None


def _scalar(event: Any, tag: str) -> Any:
    """A scalar event's value, its tag resolved: `scalar_value` of the node it would make."""
    if tag == _STR:
        return event.value
    return scalar_value(ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style))


def _anchor(name: str, line: int, done: dict[str, Any], opened: list[str]) -> None:
    if name in done or name in opened:
        raise YamlError(f"the anchor &{name} is defined twice: give each anchor its own name", line)


def _aliased(event: Any, line: int, done: dict[str, tuple[Any, int, list[tuple[str, int]]]],
             opened: list[str]) -> tuple[Any, int, list[tuple[str, int]]]:
    """(value, size, lines) of the anchor an alias names; YamlError for a recursive or undefined alias."""
    name = event.anchor or ""
    found = done.get(name)
    if found is None:
        if name in opened:
            raise _recursive(name, line)
        raise YamlError(f"found undefined alias *{name} (column {event.start_mark.column + 1})", line)
    return found


def _copy(value: Any) -> Any:
    """A copy of lists and mappings (scalars are immutable): each alias its own value, as `compose`'s."""
    if type(value) is dict:
        return {key: _copy(item) for key, item in value.items()}
    if type(value) is list:
        return [_copy(item) for item in value]
    return value


def _recursive(name: str, line: int | None) -> YamlError:
    return YamlError(f"the alias *{name} stands for a list or mapping that contains it (a recursive alias, "
                     "whose expansion has no end): write the value out instead", line, "aliases")


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
                    raise _recursive(name, line)
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
