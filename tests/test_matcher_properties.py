"""Property tests: the compiled matcher agrees with a naive reference; normalisation is
idempotent; no placeholder value can change a target's scheme or host."""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
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


# -- mixed tables: exact, placeholder, regex, hosts, methods, windows, case, priority, disabled ---------
# Both matchers (compact and not) must agree with a reference that knows nothing of their structures:
# it tries every rule, keeps the ones whose `from` matches (a plain `re` translation), whose methods
# and window accept the request, and takes the first in the documented precedence order.

NOW = datetime(2026, 6, 1, tzinfo=UTC)
WINDOWS = [
    (None, None),
    (None, None),
    (None, None),
    (NOW - timedelta(days=1), None),  # started
    (NOW + timedelta(days=1), None),  # not yet
    (None, NOW),  # over (ends is exclusive)
    (NOW - timedelta(days=1), NOW + timedelta(days=1)),
]
#: Regexes valid and equivalent in RE2 and Python's `re` (with their reference translation).
REGEXES = [r"^/a/(?P<x>[^/]+)$", r"^/b", r"a", r"^/(a|b)/c/?$", r"^/A/.*$", r"^/$", r"x$"]


@st.composite
def mixed_rules(draw: st.DrawFn, count: int) -> list[Rule]:
    rules = []
    for i in range(count):
        kind = draw(st.sampled_from(["exact", "exact", "exact", "pattern", "regex"]))
        starts, ends = draw(st.sampled_from(WINDOWS))
        # unique ids, half of them UUIDs (the compact matcher stores those as ints)
        rule_id = str(uuid.UUID(int=draw(st.integers(0, 2**120 - 1)) << 8 | i)) if draw(st.booleans()) else f"r{i}"
        common: dict[str, Any] = {
            "to": draw(st.sampled_from([f"/t{i}", f"/t{i}/x", "https://example.com/t", "/t?x=1"])),
            "status": draw(st.sampled_from([301, 308, 307])),
            "methods": draw(st.sampled_from([None, None, ("GET",), ("POST", "PUT")])),
            "priority": draw(st.integers(0, 2)),
            "case_insensitive": draw(st.integers(0, 4)) == 0,
            "enabled": draw(st.integers(0, 6)) != 0,
            "starts": starts,
            "ends": ends,
            "cache": draw(st.sampled_from([None, 0, 60])),
            "id": rule_id,
            "position": i,
        }
        if kind == "regex":
            rules.append(Rule(source_regex=draw(st.sampled_from(REGEXES)), **common))
            continue
        if kind == "exact":
            segs = draw(st.lists(st.sampled_from(LITERALS), max_size=3))
            text = "/" + "/".join(segs) + ("/" if segs and draw(st.integers(0, 4)) == 0 else "")
            if draw(st.integers(0, 5)) == 0:
                text = text.replace("/", "//", 1) if len(text) > 1 else text  # not yet normal: same key
            host = draw(st.sampled_from([None, None, None, "h1.test"]))
            rules.append(Rule(source=("//" + host if host else "") + text, **common))
            continue
        rules.append(Rule(source=draw(pattern_texts()), **common))
    return rules


def reference_match(rules: list[Rule], path: str, method: str, host: str | None, now: datetime) -> str | None:
    found = []
    for rule in rules:
        if not rule.enabled or not rule.matches_method(method) or not rule.active_at(now):
            continue
        if rule.source_regex is not None:
            rx = re.compile(rule.source_regex, re.IGNORECASE if rule.case_insensitive else 0)
            if rx.search(path):
                found.append(((2, 0, 0, 0, 0), (-rule.priority, rule.position), rule.id))
            continue
        assert rule.source is not None
        source = rule.source
        rhost = None
        if source.startswith("//"):
            rhost, _, rest = source[2:].partition("/")
            source = "/" + rest
        source = re.sub("/+", "/", source)  # what normalisation makes of `//`
        rhost_first, rx = naive_regex(source, rule.case_insensitive)
        assert rhost_first is None
        if rhost is not None and rhost != host:
            continue
        if not rx.fullmatch(path):
            continue
        parts = [p for p in source.split("/")[1:] if p]
        placeholders = [p for p in parts if p.startswith("{")]
        literal_count = len(parts) - len(placeholders)
        found.append(
            (
                (0 if rhost else 1, 0 if not placeholders else 1, -literal_count,
                 1 if any(p.endswith(":path}") for p in placeholders) else 0, 0),
                (-rule.priority, rule.position),
                rule.id,
            )
        )
    # host, kind, literals, tail; then priority, file order (the host class outranks everything,
    # and regex rules come after every path rule of either host class)
    return min(found, key=lambda f: (f[0], f[1]))[2] if found else None


def both_matchers(rules: list[Rule]) -> list[Matcher]:
    return [Matcher(rules), Matcher(rules, compact=True)]


def answer(matcher: Matcher, path: str, method: str, host: str | None) -> str | None:
    found = matcher.match(path, method, host, NOW)
    return found[0].id if found else None


MIXED_PATHS = st.builds(
    lambda segs, trailing: "/" + "/".join(segs) + ("/" if trailing and segs else ""),
    st.lists(st.sampled_from(LITERALS + ["x", "B"]), max_size=4),
    st.booleans(),
)


@settings(max_examples=int(os.environ.get("HYPO_N", "300")), suppress_health_check=[HealthCheck.too_slow])
@given(mixed_rules(12), st.lists(st.tuples(MIXED_PATHS, st.sampled_from(METHODS),
                                           st.sampled_from([None, "h1.test", "other.test"])), min_size=1, max_size=8))
def test_compact_and_full_matchers_agree_with_the_reference_on_mixed_tables(rules, requests):
    matchers = both_matchers(rules)
    for path, method, host in requests:
        expected = reference_match(rules, path, method, host, NOW)
        for matcher in matchers:
            assert answer(matcher, path, method, host) == expected, (matcher.compact, path, method, host)


@settings(max_examples=int(os.environ.get("HYPO_N", "200")), suppress_health_check=[HealthCheck.too_slow])
@given(mixed_rules(10), st.data())
def test_random_add_and_remove_sequences_agree_with_the_reference(pool, data):
    """Rules added, replaced (same id, new content) and removed in any order: both matchers answer
    like the reference on the table as it stands, and hold the same rules."""
    matchers = [Matcher(), Matcher(compact=True)]
    table: dict[str, Rule] = {}
    # a few ids shared by several rules of the pool: adding one replaces another (new content, same id)
    ids = [str(uuid.UUID(int=k)) for k in range(3)] + ["a", "b"]
    pool = [r.with_id(data.draw(st.sampled_from(ids))) if data.draw(st.booleans()) else r for r in pool]
    ops = data.draw(st.lists(st.tuples(st.booleans(), st.sampled_from(pool)), min_size=1, max_size=25))
    for add, rule in ops:
        assert rule.id is not None
        if add:
            # a second rule under a taken id replaces the first (the pool reuses ids)
            table[rule.id] = rule
            for m in matchers:
                m.add(rule)
        else:
            gone = table.pop(rule.id, None)
            for m in matchers:
                removed = m.remove(rule.id)
                assert (removed is None) == (gone is None)
                if gone is not None and removed is not None:
                    assert (removed.from_text, removed.to, removed.methods) == (gone.from_text, gone.to, gone.methods)
        current = sorted(table.values(), key=lambda r: r.position)
        for path in data.draw(st.lists(MIXED_PATHS, min_size=1, max_size=3)):
            method = data.draw(st.sampled_from(METHODS))
            host = data.draw(st.sampled_from([None, "h1.test"]))
            expected = reference_match(current, path, method, host, NOW)
            for m in matchers:
                assert answer(m, path, method, host) == expected
        for m in matchers:
            assert len(m) == len(table)
            assert [r.id for r in m.rules()] == [r.id for r in current]
            for r in current:
                got = m.get(r.id or "")
                assert got is not None and got.rule == r.__class__(**{**_fields(r), "tags": (), "note": None})


def _fields(rule: Rule) -> dict[str, Any]:
    return {f: getattr(rule, f) for f in ("to", "source", "source_regex", "status", "methods", "query", "starts",
                                          "ends", "cache", "priority", "case_insensitive", "enabled", "tags", "note",
                                          "id", "position")}


@settings(max_examples=100)
@given(mixed_rules(12))
def test_compact_rules_release_and_explain_like_full_ones(rules):
    full, compact = both_matchers(rules)
    for path in ("/", "/a", "/a/b", "/A/b/", "/b/c"):
        for host in (None, "h1.test"):
            a = [(c.id, v) for c, v in full.candidates(path, host)]
            b = [(c.id, v) for c, v in compact.candidates(path, host)]
            assert a == b
    for m in (full, compact):
        for _ in m.release():
            pass
        assert len(m) == 0 and m.match("/a") is None and not m.has_host_rules and m.windows == 0
