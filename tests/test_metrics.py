"""`GET /metrics` on the admin listener: a real `redirectory serve --workers 2`, real requests, the
exposition parsed with prometheus-client's own parser, counts summed over the workers."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway_process import ServeProcess, raw_request, start_serve

RULES = """\
rules:
  - from: /old/{rest:path}
    to: /new/{rest}
    status: 301
    methods: [GET, HEAD]
  - from: /exact
    to: /there
    status: 308
  - from_regex: '^/r/(?P<id>[0-9]+)$'
    to: /v2/{id}
    status: 307
  - from: /off
    to: /elsewhere
    status: 308
    enabled: false
"""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(served: ServeProcess, accept: str | None = None) -> Samples:
    headers = {"accept": accept} if accept else {}
    response = httpx.get(served.admin + "/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(served: ServeProcess, check: Callable[[Samples], bool], timeout: float = 20) -> Samples:
    """Scrape until `check` holds (the workers publish at their one-second flush)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(served)
        if check(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


REQUESTS = "redirectory_gateway_requests_total"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("metrics")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    process = start_serve(tmp, "--rules", str(rules), "--workers", "2")
    try:
        yield process
    finally:
        process.stop()


def test_gateway_requests_are_summed_over_every_worker(served: ServeProcess) -> None:
    before = wait_for(served, lambda s: value(s, "redirectory_gateway_workers") == 2)
    assert value(before, "redirectory_gateway_workers") == 2
    sent = {("301", "redirect"): 0, ("308", "redirect"): 0, ("307", "redirect"): 0,
            ("404", "unmatched"): 0, ("400", "bad_request"): 0}
    for i in range(30):  # a new connection each: the kernel hands them to either worker
        assert httpx.get(f"{served.base}/old/item/{i}").status_code == 301
        sent["301", "redirect"] += 1
    for _ in range(4):
        assert httpx.post(f"{served.base}/exact").status_code == 308
        sent["308", "redirect"] += 1
    for i in range(5):
        assert httpx.get(f"{served.base}/r/{i}").status_code == 307
        sent["307", "redirect"] += 1
    for i in range(7):
        assert httpx.get(f"{served.base}/nothing/{i}").status_code == 404
        sent["404", "unmatched"] += 1
    for raw in (b"GET /%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # the engine refuses the path
                b"NOT HTTP AT ALL\r\n\r\n"):  # the parser refuses the request
        assert raw_request(served.port, raw).startswith(b"HTTP/1.1 400 ")
        sent["400", "bad_request"] += 1

    def delta(samples: Samples, status: str, outcome: str) -> float:
        return (value(samples, REQUESTS, status=status, outcome=outcome)
                - value(before, REQUESTS, status=status, outcome=outcome))

    after = wait_for(served, lambda s: all(delta(s, *key) == n for key, n in sent.items()))
    assert {key: delta(after, *key) for key in sent} == sent
    unmatched = "redirectory_gateway_unmatched_requests_total"
    assert value(after, unmatched) - value(before, unmatched) == 7
    redirects = 30 + 4 + 5
    histogram = "redirectory_gateway_redirect_duration_seconds"
    assert value(after, histogram + "_count") - value(before, histogram + "_count") == redirects
    assert value(after, histogram + "_bucket", le="+Inf") == value(after, histogram + "_count")
    assert value(after, histogram + "_sum") > value(before, histogram + "_sum")
    # serve's own readiness probe is not traffic
    assert sum(v for (name, _), v in after.items() if name == REQUESTS) - sum(
        v for (name, _), v in before.items() if name == REQUESTS) == sum(sent.values())
    # the hits were flushed to the database, and timed
    assert value(after, "redirectory_hit_flush_duration_seconds_count") >= 1
    for operation in ("sync", "hit_flush", "heartbeat", "metrics_read"):
        assert value(after, "redirectory_database_errors_total", operation=operation) == 0


def test_table_figures(served: ServeProcess) -> None:
    samples = wait_for(served, lambda s: ("redirectory_table_revision", frozenset()) in s)
    assert {kind: value(samples, "redirectory_rules", kind=kind)
            for kind in ("exact", "pattern", "regex", "disabled")} == {
        "exact": 1, "pattern": 1, "regex": 1, "disabled": 1}
    revision = served.health()["revision"]
    assert value(samples, "redirectory_database_revision") == revision
    assert value(samples, "redirectory_table_revision") == revision
    assert value(samples, "redirectory_table_revisions_behind") == 0
    assert value(samples, "redirectory_table_sync_age_seconds") >= 0
    assert value(samples, "redirectory_worker_restarts_total") == 0


def test_admin_requests_by_route_template_and_status(served: ServeProcess) -> None:
    rule_id = "0c9e2b1e-6a6f-4c51-9d55-5b1d6bb0b7a3"
    for _ in range(3):
        assert httpx.get(served.admin + "/healthz").status_code == 200
    assert httpx.get(f"{served.admin}/api/v1/rules/{rule_id}").status_code == 401  # no key
    assert httpx.get(served.admin + "/no/such/thing").status_code == 404
    samples = scrape(served)
    admin = "redirectory_admin_requests_total"
    assert value(samples, admin, route="/healthz", method="GET", status="200") >= 3
    assert value(samples, admin, route="/api/v1/rules/{rule_id}", method="GET", status="401") == 1
    assert value(samples, admin, route="none", method="GET", status="404") == 1
    labels = {v for (_, pairs) in samples for _, v in pairs}
    assert not any(rule_id in label or "/no/such" in label for label in labels), labels  # never a raw path
    # the OpenMetrics format when a scraper asks for it
    response = httpx.get(served.admin + "/metrics",
                         headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_a_restarted_worker_keeps_the_counters(served: ServeProcess) -> None:
    before = wait_for(served, lambda s: value(s, "redirectory_gateway_workers") == 2)
    total = sum(v for (name, _), v in before.items() if name == REQUESTS)
    health = served.health()
    pids = [p["pid"] for p in health["processes"] if p["serve"] == health["serve"] and not p["stale"]]
    victim = next(pid for pid in pids if pid != served.proc.pid)
    os.kill(victim, signal.SIGKILL)
    after = wait_for(served, lambda s: value(s, "redirectory_worker_restarts_total") == 1
                     and value(s, "redirectory_gateway_workers") == 2)
    assert value(after, "redirectory_worker_restarts_total") == 1
    assert value(after, "redirectory_gateway_workers") == 2
    assert sum(v for (name, _), v in after.items() if name == REQUESTS) == total  # no counter went down
    assert httpx.get(f"{served.base}/exact").status_code == 308


def test_asgi_servers_count_too_and_metrics_can_be_turned_off(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    uvicorn = start_serve(tmp_path, "--rules", str(rules), "--server", "uvicorn")
    try:
        assert httpx.get(f"{uvicorn.base}/exact").status_code == 308
        assert httpx.get(f"{uvicorn.base}/nothing").status_code == 404
        samples = wait_for(uvicorn, lambda s: value(s, REQUESTS, status="404", outcome="unmatched") == 1
                           and value(s, REQUESTS, status="308", outcome="redirect") == 1)
        assert value(samples, REQUESTS, status="308", outcome="redirect") == 1
        assert value(samples, REQUESTS, status="404", outcome="unmatched") == 1
    finally:
        uvicorn.stop()
    off = start_serve(tmp_path, "--no-metrics", database=uvicorn.database)
    try:
        assert httpx.get(off.admin + "/metrics").status_code == 404
        assert httpx.get(f"{off.base}/exact").status_code == 308
    finally:
        assert off.stop() == 0
