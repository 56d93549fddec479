"""The gateway's bulk load: plain rules as tuples (`TableReader(plain=True)`, `Matcher.add_plain`).

Loading a table that way must give exactly the matcher `add` gives, rule by rule: the same rules,
the same answers. Hypothesis draws tables mixing plain rows with everything `add_plain` must hand
to `add` (patterns, host rules, odd paths, repeated paths and ids).
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from redirectory.rules.matcher import Matcher
from redirectory.rules.model import Rule
from redirectory.store import Store

SOURCES = st.sampled_from([
    "/a", "/a/", "/b/c", "/A", "/x/{id}", "/x/{rest:path}", "//h.example/a", "/a%20b", "/%7Euser",
    "/svc1/items/1", "/c:d", "/caf%C3%A9",
])
TARGETS = st.sampled_from(["/v2/a", "/v2/b/c", "/t", "https://new.example/a", "/v2/x/{id}", "/v2/svc1/items/1"])
IDS = st.sampled_from([f"{n:08x}-0000-4000-8000-000000000000" for n in range(6)] + ["plain-id", "rule-7"])
ROWS = st.lists(st.tuples(IDS, SOURCES, TARGETS, st.sampled_from([301, 307, 308]), st.integers(0, 50)),
                max_size=12)
PATHS = ["/a", "/a/", "/b/c", "/A", "/x/1", "/x/1/2", "/a b", "/a%20b", "/~user", "/svc1/items/1", "/c:d", "/café"]


def key(r: Rule) -> tuple[object, ...]:
    return (r.id, r.position, r.source, r.to, r.status)


def _usable(rows: list[tuple[str, str, str, int, int]]) -> list[tuple[str, str, str, int, int]]:
    """Rows whose target the matcher can compile for their source (placeholders it defines)."""
    return [r for r in rows if "{id}" not in r[2] or "{id}" in r[1]]


@settings(max_examples=300, deadline=None)
@given(ROWS)
def test_add_plain_builds_the_matcher_add_builds(rows: list[tuple[str, str, str, int, int]]) -> None:
    rows = _usable(rows)
    by_add = Matcher(compact=True)
    for rid, source, to, status, position in rows:
        by_add.add(Rule(to=to, source=source, status=status, id=rid, position=position))
    by_plain = Matcher(compact=True)
    by_plain.add_plain(rows)
    assert sorted(map(key, by_plain.rules())) == sorted(map(key, by_add.rules()))
    for path in PATHS:
        for host in (None, "h.example"):
            a = by_add.match(path, "GET", host)
            b = by_plain.match(path, "GET", host)
            assert (a and (a[0].id, a[1])) == (b and (b[0].id, b[1])), (path, host)
    full = Matcher()
    full.add_plain(rows)  # not compact: rule by rule
    assert sorted(map(key, full.rules())) == sorted(map(key, by_add.rules()))


def test_table_reader_gives_plain_rows_then_every_other_rule(tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/t.db")
    store.upgrade()
    window = datetime(2030, 1, 1, tzinfo=UTC)
    rules = [
        Rule(to="/p1", source="/plain1"),
        Rule(to="/p2", source="/plain2", status=308),
        Rule(to="/m", source="/methods", methods=("GET",)),
        Rule(to="/w", source="/window", starts=window),
        Rule(to="/c", source="/cache", cache=60),
        Rule(to="/pr", source="/priority", priority=3),
        Rule(to="/to-ci", source="/ci", case_insensitive=True),
        Rule(to="/off", source="/disabled", enabled=False),
        Rule(to="/q", source="/query", query="drop"),
        Rule(to="/r/{n}", source_regex="^/regex/(?P<n>[0-9]+)$"),
        Rule(to="/t", source="/tagged", tags=("x",), note="tags and notes do not matter to the gateway"),
    ]
    store.add(rules)
    reader = store.table_reader(ordered=False, plain=True)
    revision = reader.open()
    try:
        plain = []
        while batch := reader.fetch_plain(2):
            plain.extend(batch)
        others = []
        while more := reader.fetch(3):
            others.extend(more)
    finally:
        reader.close()
    assert revision == store.revision()
    assert sorted(r[1] for r in plain) == ["/plain1", "/plain2", "/tagged"]
    assert sorted(r.from_text for r in others) == sorted(
        r.from_text for r in rules if r.source not in ("/plain1", "/plain2", "/tagged"))
    _rev, table = store.load()
    assert {(r[0], r[1], r[2], r[3], r[4]) for r in plain} == {
        (r.id, r.source, r.to, r.status, r.position) for r in table.rules if r.source in ("/plain1", "/plain2", "/tagged")}
    store.close()
