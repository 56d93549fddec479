"""Load YAML or JSON keeping the line of every node: `(data, lines)` where `lines` maps a JSON
pointer ("" for the root, "/paths/~1users/get") to its 1-based line. Uses PyYAML's compose
API (node marks); JSON that YAML 1.1 cannot read falls back to `json` (lines then unknown)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


class SourceError(ValueError):
    """Unreadable or malformed file; the message starts with `FILE:LINE:`."""


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _scalar(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _convert(node: yaml.Node, pointer: str, lines: dict[str, int]) -> Any:
    lines[pointer] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node)) if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            out[key] = _convert(value_node, f"{pointer}/{escape(key)}", lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, f"{pointer}/{i}", lines) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    return _scalar(node)


def load(path: Path) -> tuple[Any, dict[str, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read: {exc}") from None
    lines: dict[str, int] = {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            raise SourceError(f"{path}:1: the file is empty")
        return _convert(node, "", lines), lines
    except yaml.YAMLError as exc:
        if path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "[")):
            try:
                return json.loads(text), {}
            except json.JSONDecodeError as jexc:
                raise SourceError(f"{path}:{jexc.lineno}: invalid JSON: {jexc.msg}") from None
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SourceError(f"{path}:{line}: invalid YAML: {problem}") from None
