"""Load YAML or JSON keeping the line of every node: `(data, lines)` where `lines` maps a JSON
pointer ("" for the root, "/paths/~1users/get") to its 1-based line. Uses the node graph of
`redirectory.yamlsafe` (node marks; aliases bounded); JSON that YAML 1.1 cannot read falls back
to `json` (lines then unknown)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from redirectory import yamlsafe

_MERGE = "tag:yaml.org,2002:merge"


class SourceError(ValueError):
    """Unreadable or malformed file; the message starts with `FILE:LINE:`."""


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _convert(node: yaml.Node, pointer: str, lines: dict[str, int]) -> Any:
    lines[pointer] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        merged: list[tuple[str, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:  # `<<: *defaults`: the keys the mapping does not set itself
                for source in value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]:
                    value = _convert(source, pointer, {})
                    merged += value.items() if isinstance(value, dict) else []
                continue
            key = str(yamlsafe.scalar_value(key_node)) if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            out[key] = _convert(value_node, f"{pointer}/{escape(key)}", lines)
        for key, value in merged:
            out.setdefault(key, value)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, f"{pointer}/{i}", lines) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    return yamlsafe.scalar_value(node)


def load(path: Path) -> tuple[Any, dict[str, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read: {exc}") from None
    lines: dict[str, int] = {}
    try:
        node = yamlsafe.compose(text)
        if node is None:
            raise SourceError(f"{path}:1: the file is empty")
        return _convert(node, "", lines), lines
    except yamlsafe.YamlError as exc:
        if exc.code == "syntax" and (path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "["))):
            try:
                return json.loads(text), {}
            except json.JSONDecodeError as jexc:
                raise SourceError(f"{path}:{jexc.lineno}: invalid JSON: {jexc.msg}") from None
            except (ValueError, RecursionError) as jexc:
                raise SourceError(f"{path}: invalid JSON: {jexc}") from None
        what = "invalid YAML: " if exc.code == "syntax" else ""
        raise SourceError(f"{path}:{exc.line or 1}: {what}{exc.message}") from None
    except RecursionError:
        raise SourceError(f"{path}:1: nested too deeply to read") from None
