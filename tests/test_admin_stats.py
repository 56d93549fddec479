"""The admin API's `stats` resource, over real HTTP against the real `redirectory serve` process:
requests to the redirect port are counted, flushed, and show up per rule, per unmatched path and
per time bucket. Plus the store's bucket arithmetic on a real SQLite file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gateway_process import ServeProcess, cli, start_serve
from redirectory.store import Store
from redirectory.store.hits import MINUTE_BUCKETS_KEPT

RULES = """\
rules:
  - from: /hot
    to: /hot-target
    status: 308
  - from: /warm/{id}
    to: /warm-target/{id}
    status: 301
  - from: /cold
    to: /cold-target
    status: 307
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("admin-stats")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    proc = start_serve(tmp, "--rules", str(rules))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def reader(served: ServeProcess) -> Iterator[httpx.Client]:
    done = cli("keys", "create", "stats-reader", "--scope", "read", "--database", served.database)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1].strip()
    with httpx.Client(base_url=served.admin, headers={"x-api-key": key}, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def traffic(served: ServeProcess, reader: httpx.Client) -> dict[str, int]:
    """Send known traffic to the redirect port and wait until the gateway has flushed it."""
    sent = {"/hot": 7, "/warm/1": 2, "/warm/2": 1, "/nope/a": 3, "/nope/b": 1}
    with httpx.Client(base_url=served.base, timeout=10) as gw:
        for path, n in sent.items():
            for _ in range(n):
                gw.get(path)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = reader.get("/api/v1/stats").json()
        if body["hits"] == 10 and body["unmatchedHits"] == 4:
            break
        time.sleep(0.2)
    return sent


def test_stats_summary_counts_hits_and_unmatched(reader: httpx.Client, traffic: dict[str, int]) -> None:
    r = reader.get("/api/v1/stats")
    assert r.status_code == 200
    assert r.headers["cache-control"].startswith("no-cache, no-store")
    body = r.json()
    assert body["rules"] == 3 and body["rulesHit"] == 2 and body["rulesNeverHit"] == 1
    assert body["hits"] == 10 and body["unmatchedHits"] == 4 and body["unmatchedPaths"] == 2
    assert [(t["from"], t["hits"]) for t in body["topRules"]] == [("/hot", 7), ("/warm/{id}", 3)]
    assert [(p["path"], p["hits"]) for p in body["topUnmatchedPaths"]] == [("/nope/a", 3), ("/nope/b", 1)]
    assert body["lastHit"].endswith("Z")


def test_stats_rules_collection_is_paged_sorted_and_filters_unused(reader: httpx.Client, traffic: dict[str, int]) -> None:
    body = reader.get("/api/v1/stats/rules").json()
    assert [(i["from"], i["hits"]) for i in body["items"]] == [("/hot", 7), ("/warm/{id}", 3), ("/cold", 0)]
    assert body["items"][2]["lastHit"] is None
    assert body["metadata"]["sortedBy"] == [{"field": "hits", "order": "DESC"}]
    assert body["metadata"]["pagination"]["totalCount"] == 3
    assert set(body["metadata"]["etags"]) == {i["uuid"] for i in body["items"]}
    asc = reader.get("/api/v1/stats/rules", params={"sort": "hits+ASC", "limit": 2}).json()
    assert [i["hits"] for i in asc["items"]] == [0, 3]
    assert asc["metadata"]["pagination"]["nextOffset"] == 2
    unused = reader.get("/api/v1/stats/rules", params={"unused": "true"}).json()
    assert [i["from"] for i in unused["items"]] == ["/cold"]
    bad = reader.get("/api/v1/stats/rules", params={"sort": "color DESC"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["fields"] == ["sort"]


def test_stats_unmatched_paths_most_hit_first(reader: httpx.Client, traffic: dict[str, int]) -> None:
    body = reader.get("/api/v1/stats/unmatched-paths", params={"limit": 1}).json()
    assert body["items"] == [{"path": "/nope/a", "hits": 3, "lastHit": body["items"][0]["lastHit"]}]
    assert body["metadata"]["pagination"]["totalCount"] == 2


def test_stats_timeline_buckets_hold_the_traffic(reader: httpx.Client, traffic: dict[str, int]) -> None:
    body = reader.get("/api/v1/stats/timeline", params={"interval": "minute"}).json()
    assert body["interval"] == "minute" and len(body["buckets"]) in (60, 61)
    assert body["hits"] == 10 and body["unmatchedHits"] == 4
    assert sum(b["hits"] for b in body["buckets"]) == 10
    starts = [datetime.fromisoformat(b["start"]) for b in body["buckets"]]
    assert all(b - a == timedelta(minutes=1) for a, b in zip(starts, starts[1:], strict=False))
    day = reader.get("/api/v1/stats/timeline", params={"interval": "day"}).json()
    assert day["hits"] == 10 and len(day["buckets"]) in (30, 31)
    hot = reader.get("/api/v1/stats/rules", params={"limit": 1}).json()["items"][0]
    one = reader.get("/api/v1/stats/timeline", params={"ruleUuid": hot["uuid"]}).json()
    assert one["hits"] == 7 and one["unmatchedHits"] is None


def test_stats_timeline_rejects_bad_parameters_all_at_once(reader: httpx.Client) -> None:
    r = reader.get("/api/v1/stats/timeline", params={"interval": "week", "since": "yesterday", "ruleUuid": "x"})
    assert r.status_code == 400
    fields = sorted(f for e in r.json()["errors"] for f in e["fields"])
    assert fields == ["interval", "ruleUuid", "since"]
    assert reader.get("/api/v1/stats/timeline", params={"until": ""}).status_code == 400
    assert reader.get("/api/v1/stats/timeline", params={"since": "2026-11-24"}).status_code == 400


def test_stats_timeline_clamps_to_what_is_kept(reader: httpx.Client, traffic: dict[str, int]) -> None:
    # Asking for a year of minutes answers the minutes that are kept, at most 1,440 of them.
    r = reader.get("/api/v1/stats/timeline", params={"interval": "minute", "since": "2000-01-01T00:00:00Z"})
    assert r.status_code == 200
    body = r.json()
    assert 1 <= len(body["buckets"]) <= 1441 and body["hits"] == 10
    assert datetime.fromisoformat(body["since"]) >= datetime.fromisoformat(body["keptSince"]) - timedelta(minutes=1)
    # A range that ends before it starts, or lies in the past beyond what is kept, has no buckets.
    empty = reader.get("/api/v1/stats/timeline", params={"since": "2026-01-02T00:00:00+01:00",
                                                         "until": "2026-01-01T00:00:00Z"}).json()
    assert empty["buckets"] == [] and empty["hits"] == 0
    ancient = reader.get("/api/v1/stats/timeline", params={"since": "2000-01-03T14:00:54+00:00",
                                                           "until": "0003-01-18T19:19:00.0Z", "interval": "day"})
    assert ancient.status_code == 200 and ancient.json()["buckets"] == []
    far = reader.get("/api/v1/stats/timeline", params={"since": "0001-01-01T00:00:00-23:59",
                                                       "until": "9999-12-31T23:59:59+23:59", "interval": "day"})
    assert far.status_code == 200 and far.json()["hits"] == 10


def test_stats_needs_a_key_and_allows_only_reads(served: ServeProcess, reader: httpx.Client) -> None:
    assert httpx.get(served.admin + "/api/v1/stats").status_code == 401
    r = reader.post("/api/v1/stats", json={})
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, OPTIONS"
    r = reader.options("/api/v1/stats/timeline")
    assert r.status_code == 200 and r.headers["allow"] == "GET, HEAD, OPTIONS"


def test_store_buckets_add_up_across_flushes_and_are_pruned(store: Store) -> None:
    """On SQLite and PostgreSQL (the `store` fixture)."""
    now = datetime.now(UTC)
    store.record_hits({"r1": (3, now)}, {"/x": (2, now)}, unmatched_extra=5)
    store.record_hits({"r1": (4, now), "r2": (1, now - timedelta(hours=1))}, {})
    # A bucket older than the retention disappears at the next prune.
    old = now - MINUTE_BUCKETS_KEPT - timedelta(hours=1)
    store._last_prune = None
    store.record_hits({"r3": (9, old)}, {})
    minutes = store.timeline("minute", now - timedelta(hours=2), now + timedelta(minutes=1))
    assert sum(b.hits for b in minutes) == 8 and sum(b.unmatched for b in minutes) == 7
    assert sum(b.hits for b in store.timeline("minute", old - timedelta(minutes=1), old + timedelta(minutes=1))) == 0
    hours = store.timeline("hour", old - timedelta(hours=1), now + timedelta(hours=1))
    assert sum(b.hits for b in hours) == 17  # hour buckets are kept longer
    assert sum(b.hits for b in store.timeline("hour", now, now + timedelta(hours=1), "r1")) == 7
    assert store.stats_summary().unmatched_hits == 2  # the 5 extra count only in the buckets


def test_store_timeline_holds_the_bucket_until_falls_in(store: Store) -> None:
    """A timeline asked for in the first second of a minute holds that minute's hits (CI once asked
    at 06:17:00.4 and got none of the traffic of 06:17:00.2)."""
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    store.record_hits({"r1": (2, minute + timedelta(milliseconds=200))}, {})
    buckets = store.timeline("minute", minute - timedelta(minutes=1), minute + timedelta(milliseconds=400))
    assert [b.start for b in buckets] == [minute - timedelta(minutes=1), minute]
    assert sum(b.hits for b in buckets) == 2
    assert store.timeline("minute", minute - timedelta(minutes=1), minute)[-1].start < minute  # [since, until)
