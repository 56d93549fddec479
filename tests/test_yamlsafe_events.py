"""`yamlsafe.load_located`: the checker's YAML loader, straight from libyaml's events (issue 19).

It must give the data `yaml.safe_load` gives and the lines the node graph gives: the reference
here is what the checker did before, `compose` and a walk over its nodes (`reference` below),
kept in this file to compare against. Random documents come from `yaml.safe_dump` (block, flow
and mixed styles; shared values become anchors and aliases); hand-written ones cover merges,
tags, keys that are not strings and every error.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redirectory import yamlsafe

_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def convert(node: yaml.Node, pointer: str, lines: dict[str, int]) -> Any:
    """The checker's walk over the node graph before `load_located`: data and lines."""
    lines[pointer] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        merged: list[tuple[str, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                for source in value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]:
                    value = convert(source, pointer, {})
                    merged += value.items() if isinstance(value, dict) else []
                continue
            if key_node.tag == _STR:
                key = str(key_node.value)
            elif isinstance(key_node, yaml.ScalarNode):
                key = str(yamlsafe.scalar_value(key_node))
            else:
                key = str(key_node.value)
            out[key] = convert(value_node, f"{pointer}/{escape(key)}", lines)
        for key, value in merged:
            out.setdefault(key, value)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [convert(item, f"{pointer}/{i}", lines) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    return node.value if node.tag == _STR else yamlsafe.scalar_value(node)


def reference(text: str) -> tuple[Any, dict[str, int]] | None:
    node = yamlsafe.compose(text)
    if node is None:
        return None
    lines: dict[str, int] = {}
    return convert(node, "", lines), lines


def same_as_reference(text: str) -> tuple[Any, dict[str, int]]:
    loaded = yamlsafe.load_located(text)
    expected = reference(text)
    assert loaded is not None and expected is not None
    assert loaded[0] == expected[0]
    assert loaded[1] == expected[1]
    assert list(loaded[1]) == list(expected[1])  # the same order too: document order
    return loaded


# -- random documents by yaml.safe_dump ----------------------------------------------------------------
KEYS = st.one_of(st.text(max_size=8), st.sampled_from(["/", "~", "a/b~c", "<<", "yes", "no", "null", "1", "0x1",
                                                        "1.5", "2026-01-01", "-", "? x", "&a", "*a", "!t", "#"]))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20),
    st.sampled_from(["yes", "No", "on", "~", "", "0", "007", "0o17", "0x1F", "1_000", "12:30", "1e3", ".5", ".inf",
                     "<<", "=", "2026-01-01", "- a", "a: b", "#x", "'", '"', "\\", "\t", " x ", "x\ny", "é"]),
    st.dates(), st.datetimes(), st.binary(max_size=10),
)


def documents() -> st.SearchStrategy[Any]:
    tree = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                        max_leaves=25)

    @st.composite
    def with_shared(draw: st.DrawFn) -> Any:
        """A mapping of trees, some of which appear twice (safe_dump writes anchors and aliases)."""
        values = draw(st.lists(tree, min_size=1, max_size=4))
        shared = [v for v in values if isinstance(v, (dict, list))]
        out: dict[str, Any] = {f"k{i}": v for i, v in enumerate(values)}
        for i, value in enumerate(draw(st.lists(st.sampled_from(shared), max_size=3)) if shared else []):
            out[f"again{i}"] = value
            out[f"inside{i}"] = {"x": [value]}
        return out

    return with_shared()


STYLES = st.fixed_dictionaries({"default_flow_style": st.sampled_from([False, True, None]),
                                "width": st.sampled_from([20, 80, 1000]), "allow_unicode": st.booleans(),
                                "indent": st.sampled_from([2, 4]), "sort_keys": st.booleans()})


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), STYLES)
def test_random_documents_read_as_safe_load_and_the_node_graph(data: Any, style: dict[str, Any]) -> None:
    text = yaml.safe_dump(data, **style)
    loaded, lines = same_as_reference(text)
    as_strings = yaml.safe_load(text)  # keys here are strings already: KEYS are
    assert loaded == as_strings
    assert lines[""] == 1


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789+-._:eExXoObB aynN~<=", min_size=0, max_size=8), st.sampled_from(["", "'", '"']))
def test_plain_scalars_resolve_as_yaml_does(token: str, quote: str) -> None:
    """The fast path for plain strings and integers agrees with PyYAML's resolver and constructors."""
    text = f"k: {quote}{token}{quote}\n{quote}{token}{quote}: v\n"
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError:
        with pytest.raises(yamlsafe.YamlError):
            yamlsafe.load_located(text)
        return
    loaded = yamlsafe.load_located(text)
    assert loaded is not None
    data, lines = loaded
    assert data == {str(k): v for k, v in expected.items()}
    assert type(data["k"]) is type(expected["k"])
    assert lines == {"": 1, "/k": 1, **{f"/{escape(str(k))}": 2 for k in expected if k != "k"}}


# -- by hand -------------------------------------------------------------------------------------------
def test_merges_aliases_and_their_lines() -> None:
    text = """\
defaults: &d
  status: 308
  tags: [a, b]
other: &o {status: 301, extra: true}
rules:
  - <<: *d
    from: /a
  - <<: [*o, *d]
    status: 307
  - <<: {inline: 1}
    x: *o
  - &anchored
    <<: *d
    y: 1
  - *anchored
  - ? explicit
    : 2
    200: ok
    yes: no
    ~: null
    1.5: f
"""
    data, lines = same_as_reference(text)
    assert data["rules"][0] == {"from": "/a", "status": 308, "tags": ["a", "b"]}
    assert data["rules"][1] == {"status": 307, "extra": True, "tags": ["a", "b"]}
    assert data["rules"][2] == {"inline": 1, "x": {"status": 301, "extra": True}}
    assert data["rules"][4] == data["rules"][3] and data["rules"][4] is not data["rules"][3]
    assert data["rules"][4]["tags"] is not data["rules"][3]["tags"]  # each alias its own copy
    assert data["rules"][5] == {"explicit": 2, "200": "ok", "True": False, "None": None, "1.5": "f"}
    assert lines["/rules/2/x"] == 4 and lines["/rules/2/x/extra"] == 4  # an alias: its anchor's lines
    assert lines["/rules/4"] == 12 and lines["/rules/4/y"] == 14  # an anchored mapping: its anchor's line
    assert "/rules/0/status" not in lines  # merged values have none (the checker uses the mapping's)


def test_tags() -> None:
    text = "a: !!str 12\nb: !!int '12'\nc: !!binary aGk=\nd: ! 12\ne: !!float 1\nf: 2026-01-02\ng: !!set {x}\n"
    data, _lines = same_as_reference(text)
    assert data == {"a": "12", "b": 12, "c": b"hi", "d": 12, "e": 1.0, "f": datetime.date(2026, 1, 2),
                    "g": {"x": None}}


@pytest.mark.parametrize(("text", "line", "code"), [
    ("a: [1\n", 2, "syntax"),
    ("a: 1\n---\nb: 2\n", 2, "syntax"),  # two documents
    ("a: 1\nb: *nowhere\n", 2, "syntax"),  # an undefined alias
    ("a: &x 1\nb: &x 2\n", 2, "syntax"),  # an anchor defined twice
    ("a: !foo 1\n", 1, "syntax"),  # a tag the safe rules do not know
    ("a: !!int x\n", 1, "syntax"),
    ("a: &a [1, *a]\n", 1, "aliases"),  # recursive
    ("x: &x\n  <<: *x\n", 2, "aliases"),
    ("a: \x00\n", 1, "syntax"),
    ("? [a, b]\n: 1\n", 1, None),  # a list as a key: refused (the node graph's walk made up a key)
])
def test_errors_have_the_lines_compose_gives(text: str, line: int, code: str | None) -> None:
    with pytest.raises(yamlsafe.YamlError) as refused:
        yamlsafe.load_located(text)
    assert refused.value.line == line, refused.value.message
    if code is not None:
        assert refused.value.code == code
        with pytest.raises(yamlsafe.YamlError) as composed:
            reference(text)
        assert (composed.value.line, composed.value.code) == (line, code)


def test_empty_documents() -> None:
    assert yamlsafe.load_located("") is None and yamlsafe.load_located("# nothing\n") is None
    assert yamlsafe.load_located("---\n") == (None, {"": 2})  # the node graph's line


def laughs(levels: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_aliases_are_bounded_as_compose_bounds_them() -> None:
    def document(repeats: int) -> str:  # as in test_yaml_bombs: 104 values written, 100 n added
        return f"a: &a [{', '.join(['x'] * 99)}]\nb: [{', '.join(['*a'] * repeats)}]\n"

    assert len(same_as_reference(document(100))[0]["b"]) == 100
    for bomb in (document(101), laughs(), laughs(4, 30)):
        with pytest.raises(yamlsafe.YamlError) as refused:
            yamlsafe.load_located(bomb)
        with pytest.raises(yamlsafe.YamlError) as composed:
            yamlsafe.compose(bomb)
        assert (refused.value.message, refused.value.line, refused.value.code) == (
            composed.value.message, composed.value.line, "aliases")


def test_many_aliases_within_the_ratio_are_read() -> None:
    """Past ALIAS_FLOOR the whole document is counted before it is read (a second pass)."""
    schemas = "\n".join(f"  s{i}: &s{i} {{type: object, properties: {{id: {{type: integer}}, n{i}: {{type: string}}}}}}"
                        for i in range(300))
    uses = "\n".join(f"  /p{i}: {{get: {{responses: {{'200': {{schema: *s{i % 300}}}}}}}}}" for i in range(2000))
    text = f"schemas:\n{schemas}\npaths:\n{uses}\n"
    data, lines = same_as_reference(text)
    assert data == yaml.safe_load(text)
    assert lines["/paths/~1p1999/get/responses/200/schema/properties/n199"] == 201  # s199's


PIECES = ["a", ": ", "- ", "\n", "  ", "&a ", "&b ", "*a", "*b", " *a", "[", "]", "{", "}", ", ", "<<: ",
          "? ", '"', "'", "!!str ", "!foo ", "---\n", "#", "\t", "\x00", "\u2028", "\ufeff", "%YAML 1.1\n", "1", "~"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_any_text_reads_as_the_reference_or_raises_only_yaml_error(text: str) -> None:
    try:
        loaded = yamlsafe.load_located(text)
    except yamlsafe.YamlError as exc:
        assert exc.code in ("syntax", "aliases") and (exc.line is None or exc.line >= 1)
        try:
            expected = reference(text)
        except yamlsafe.YamlError:
            return
        # the reference accepts what the events refuse only for a list or mapping as a key
        assert "as a mapping key" in exc.message, (exc.message, expected)
        return
    assert loaded == reference(text)
