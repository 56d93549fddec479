"""Load YAML or JSON keeping the line of every node: `(data, lines)` where `lines` maps a JSON
pointer ("" for the root, "/paths/~1users/get") to its 1-based line.

- JSON (text that starts with `{` or `[`) is read by `json` (C speed) and its lines come from
  one regular-expression pass over the text that records the line of every object member
  (members inside arrays fall back to their array's line): GitHub's 13 MB description loads in
  about a second instead of six;
- YAML is read by `redirectory.yamlsafe.load_located` (libyaml's events straight into data and
  lines, without PyYAML's node graph: GitHub's description as 9.8 MB of YAML loads in about 2 s
  instead of 8; aliases bounded), and JSON that `json` refuses is tried as YAML before its JSON
  error is reported;
- a file larger than `MAX_BYTES` is refused before it is read; a UTF-8 byte-order mark is
  accepted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from redirectory import yamlsafe

#: The largest document (one file) the checker reads; GitHub's description is 13 MB.
MAX_BYTES = 64 * 1024 * 1024
#: A JSON string (group 1, group 2 set when it is a member name) or a bracket.
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:)?|[{}\[\]]')


class SourceError(ValueError):
    """Unreadable or malformed file; the message starts with `FILE:LINE:`."""


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def json_lines(text: str) -> dict[str, int]:
    """The line of every object member of the JSON `text` (valid JSON: `json` has read it)."""
    lines: dict[str, int] = {"": 1}
    stack: list[str | None] = []  # the pointer of each open container (None: in an array, not indexed)
    current: str | None = None  # the open container's pointer
    member: str | None = ""  # the pointer of the member whose value comes next ("" before the root)
    line, last = 1, 0
    count = text.count
    for match in _TOKEN.finditer(text):
        if match.group(2) is not None:  # a member name
            if current is None:
                continue
            name = match.group(1)
            if "\\" in name:
                name = json.loads(f'"{name}"')
            start = match.start()
            line += count("\n", last, start)
            last = start
            member = f"{current}/{escape(name)}"
            lines[member] = line
            continue
        char = match.group(0)
        if char == "{":
            stack.append(current)
            current = member if (current is not None or not stack[:-1]) else None
            member = None
        elif char == "[":
            stack.append(current)
            current = member = None
        elif char in "}]":
            current = stack.pop() if stack else None
            member = None
    return lines


def read_text(path: Path, what: str = "file") -> str:
    """The text of `path` (UTF-8, a byte-order mark dropped), or SourceError naming it."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SourceError(f"{path}: the {what} is {size / 1048576:.0f} MiB; the largest read is "
                              f"{MAX_BYTES // 1048576} MiB")
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SourceError(f"{path}: is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read: {exc}") from None


def load(path: Path) -> tuple[Any, dict[str, int]]:
    text = read_text(path)
    json_error: json.JSONDecodeError | None = None
    if text.lstrip().startswith(("{", "[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            json_error = exc  # perhaps YAML's flow style: try YAML, report this if that fails too
        except (ValueError, RecursionError) as exc:
            raise SourceError(f"{path}:1: invalid JSON: {exc}") from None
        else:
            return data, json_lines(text)
    try:
        loaded = yamlsafe.load_located(text)
        if loaded is None:
            raise SourceError(f"{path}:1: the file is empty")
        return loaded
    except yamlsafe.YamlError as exc:
        if json_error is not None and exc.code == "syntax":
            raise SourceError(f"{path}:{json_error.lineno}: invalid JSON: {json_error.msg} "
                              f"(column {json_error.colno})") from None
        what = "invalid YAML: " if exc.code == "syntax" else ""
        raise SourceError(f"{path}:{exc.line or 1}: {what}{exc.message}") from None
    except RecursionError:
        raise SourceError(f"{path}:1: nested too deeply to read") from None
