"""Property tests: the compiled matcher agrees with a naive reference; normalisation is
idempotent; no placeholder value can change a target's scheme or host."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redirectory.rules.engine import Engine, Request
from redirectory.rules.matcher import Matcher
from redirectory.rules.model import Rule
from redirectory.rules.normalise import InvalidPath, normalise_path
from redirectory.rules.patterns import parse_target

LITERALS = ["a", "b", "c", "A"]
METHODS = ["GET", "POST", "PUT"]


@st.composite
def pattern_texts(draw: st.DrawFn) -> str:
    n = draw(st.integers(0, 3))
    parts: list[str] = []
    for i in range(n):
        if draw(st.booleans()):
            parts.append(draw(st.sampled_from(LITERALS)))
        else:
            parts.append(f"{{p{i}}}")
    if draw(st.booleans()):
        parts.append("{rest:path}")
    elif n == 0 or draw(st.integers(0, 4)) == 0:
        parts.append("")  # trailing slash
    host = draw(st.sampled_from([None, None, "h1.test"]))
    return ("//" + host if host else "") + "/" + "/".join(parts)


@st.composite
def rule_tables(draw: st.DrawFn) -> list[Rule]:
    texts = draw(st.lists(pattern_texts(), min_size=1, max_size=12))
    rules = []
    for i, text in enumerate(texts):
        methods = draw(st.sampled_from([None, None, ("GET",), ("POST", "PUT")]))
        rules.append(
            Rule(
                source=text,
                to=f"/t{i}",
                status=308,
                methods=methods,
                priority=draw(st.integers(0, 2)),
                case_insensitive=draw(st.integers(0, 5)) == 0,
                id=f"r{i}",
                position=i,
            )
        )
    return rules


@st.composite
def request_paths(draw: st.DrawFn) -> str:
    segs = draw(st.lists(st.sampled_from(LITERALS + ["x", "a"]), max_size=4))
    trailing = draw(st.booleans())
    return "/" + "/".join(segs) + ("/" if trailing and segs else "")


def naive_regex(text: str, case_insensitive: bool) -> tuple[str | None, re.Pattern[str]]:
    host = None
    path = text
    if text.startswith("//"):
        host, _, rest = text[2:].partition("/")
        path = "/" + rest
    parts = path.split("/")[1:]
    out = ""
    for part in parts:
        if part == "{rest:path}":
            out += "(?:/(?P<rest>.*))?"
        elif part.startswith("{"):
            out += f"/(?P<{part[1:-1]}>[^/]+)"
        else:
            out += "/" + re.escape(part)
    if path.endswith("/{rest:path}") and out == "(?:/(?P<rest>.*))?":
        out = "/(?P<rest>.*)"
    return host, re.compile(out, re.IGNORECASE if case_insensitive else 0)


def naive_match(rules: list[Rule], path: str, method: str, host: str | None) -> str | None:
    """Documented precedence, implemented independently: collect every match, then sort."""
    found = []
    for rule in rules:
        assert rule.source is not None
        rhost, rx = naive_regex(rule.source, rule.case_insensitive)
        if rhost is not None and rhost != host:
            continue
        if not rx.fullmatch(path):
            continue
        if rule.methods is not None and method not in rule.methods:
            continue
        placeholders = re.findall(r"\{(\w+)(:path)?\}", rule.source)
        literal_count = len([p for p in rule.source.split("/")[1:] if p and not p.startswith("{")])
        if rule.source.startswith("//"):
            literal_count -= 1  # the host part is not a segment
        exact = not placeholders
        has_tail = any(p[1] for p in placeholders)
        found.append(
            (
                0 if rhost else 1,
                0 if exact else 1,
                -literal_count,
                1 if has_tail else 0,
                -rule.priority,
                rule.position,
                rule.id,
            )
        )
    return min(found)[-1] if found else None


@settings(max_examples=int(__import__("os").environ.get("HYPO_N", "400")), suppress_health_check=[HealthCheck.too_slow])
@given(rule_tables(), request_paths(), st.sampled_from(METHODS), st.sampled_from([None, "h1.test", "other.test"]))
def test_compiled_matcher_agrees_with_naive_reference(rules, path, method, host):
    matcher = Matcher(rules)
    got = matcher.match(path, method, host)
    expected = naive_match(rules, path, method, host)
    assert (got[0].rule.id if got else None) == expected


@settings(max_examples=200)
@given(rule_tables(), st.data())
def test_incremental_updates_equal_a_fresh_build(rules, data):
    """Removing and re-adding rules in place gives the same answers as compiling anew."""
    matcher = Matcher(rules)
    removed = data.draw(st.lists(st.sampled_from(rules), unique_by=lambda r: r.id, max_size=len(rules)))
    for rule in removed:
        matcher.remove(rule.id)
    kept = [r for r in rules if r not in removed or r.id not in {x.id for x in removed}]
    fresh = Matcher(kept)
    for path in data.draw(st.lists(request_paths(), min_size=1, max_size=10)):
        a = matcher.match(path, "GET")
        b = fresh.match(path, "GET")
        assert (a[0].rule.id if a else None) == (b[0].rule.id if b else None)
    for rule in removed:
        matcher.add(rule)
    again = Matcher(rules)
    for path in data.draw(st.lists(request_paths(), min_size=1, max_size=10)):
        a = matcher.match(path, "POST")
        b = again.match(path, "POST")
        assert (a[0].rule.id if a else None) == (b[0].rule.id if b else None)


PATH_CHARS = st.sampled_from(list("ab/.%2F5e~ -_") + ["%2f", "%41", "é", "\\", "%zz", "//", "..", "%2E"])


@settings(max_examples=1000)
@given(st.lists(PATH_CHARS, max_size=20).map("".join))
def test_normalisation_is_idempotent(raw):
    try:
        once = normalise_path(raw)
    except InvalidPath:
        return
    assert normalise_path(once) == once
    assert once.startswith("/")
    assert "//" not in once
    assert not re.search(r"[\s\x00-\x1f\x7f\\]", once)


TEMPLATES = [
    "https://example.com/{x}",
    "https://example.com/a/{x}/b?q={y}#{z}",
    "/{x}",
    "/a/{x}",
    "/{x}/{y}",
    "/a?next={x}",
    "http://example.com:8080/{x}",
]


@settings(max_examples=1500)
@given(st.sampled_from(TEMPLATES), st.text(max_size=30), st.one_of(st.none(), st.text(max_size=30)), st.text(max_size=10))
def test_no_placeholder_value_changes_the_target_host(template, x, y, z):
    target = parse_target(template)
    rendered = target.render({"x": x, "y": y, "z": z})
    assert not re.search(r"[\x00-\x20\x7f\\]", rendered), rendered
    parts = urlsplit(rendered)
    if target.origin:
        assert rendered.startswith(target.origin)
        assert f"{parts.scheme}://{parts.netloc}" == target.origin
    else:
        assert rendered.startswith("/") and not rendered.startswith("//")
        assert parts.scheme == "" and parts.netloc == ""


@settings(max_examples=500)
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40))
def test_engine_location_never_leaves_the_site(tail):
    engine = Engine([Rule(source="/r/{rest:path}", to="/{rest}", status=308), Rule(source="/s/{x}", to="/{x}", status=308)])
    for prefix in ("/r/", "/s/"):
        raw = prefix + tail
        try:
            normalise_path(raw)
        except InvalidPath:
            continue
        decision = engine.decide(Request("GET", raw))
        if decision.location is None:
            continue
        parts = urlsplit(decision.location)
        assert parts.netloc == "" and parts.scheme == "", decision.location
        assert not decision.location.startswith("//")
        assert not re.search(r"[\x00-\x20\x7f\\]", decision.location)


def test_placeholders_are_refused_in_scheme_or_host():
    import pytest

    from redirectory.rules.patterns import PatternError

    for template in ("http://example.com:8080{x}", "https://{x}.example.com/", "https://{x}/", "{x}/a", "//{x}/a"):
        with pytest.raises(PatternError):
            parse_target(template)
