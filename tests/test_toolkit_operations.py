"""Long-running operations: 202 + status resource, progress, 303 to the result; both job stores."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from redirectory.rules.engine import Response
from redirectory.toolkit import (
    InMemoryJobStore,
    Operations,
    RedirectOptions,
    RequestInfo,
    SqlAlchemyJobStore,
    report_progress,
)


def poll(ops: Operations, job_id: str, request: RequestInfo | None = None, timeout: float = 5) -> list[Response]:
    seen: list[Response] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = ops.status(job_id, request)
        seen.append(response)
        if response.status != 202:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"still running after {timeout}s")


@pytest.fixture(params=["memory", "sqlalchemy"])
def ops(request: pytest.FixtureRequest, tmp_path: Path) -> Operations:
    store = InMemoryJobStore() if request.param == "memory" else SqlAlchemyJobStore(f"sqlite:///{tmp_path}/jobs.db")
    return Operations(store, max_workers=2)


def test_202_then_progress_then_303(ops: Operations) -> None:
    def work() -> str:
        for step in (0.25, 0.5, 0.75):
            report_progress(step)
            time.sleep(0.03)
        return "/reports/7"

    accepted = ops.submit(work)
    headers = dict(accepted.headers)
    assert accepted.status == 202 and headers["location"].startswith("/operations/")
    assert headers["retry-after"] == "1" and headers["content-type"] == "application/json"
    job_id = headers["location"].rsplit("/", 1)[1]
    assert json.loads(accepted.body) == {"id": job_id, "state": "running", "progress": 0.0}
    seen = poll(ops, job_id)
    done = seen[-1]
    assert done.status == 303 and dict(done.headers)["location"] == "/reports/7" and done.body == b""
    progress = [json.loads(r.body)["progress"] for r in seen[:-1]]
    assert progress == sorted(progress)


def test_failure_is_reported_without_details(ops: Operations) -> None:
    def work() -> str:
        raise RuntimeError("database password is hunter2")

    job_id = dict(ops.submit(work).headers)["location"].rsplit("/", 1)[1]
    failed = poll(ops, job_id)[-1]
    assert failed.status == 200
    doc = json.loads(failed.body)
    assert doc["state"] == "failed" and "hunter2" not in failed.body.decode()


def test_unknown_job_and_absolute_locations_behind_a_proxy() -> None:
    proxy = RedirectOptions(trusted_proxies=("127.0.0.1",))
    ops = Operations(options=proxy)
    missing = ops.status("nope")
    assert missing.status == 404 and b"notFound" in missing.body
    request = RequestInfo("POST", "/reports", client_ip="127.0.0.1",
                          headers=(("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com")))
    accepted = ops.submit(lambda: "/reports/1", request)
    location = dict(accepted.headers)["location"]
    assert location.startswith("https://api.example.com/operations/")
    done = poll(ops, location.rsplit("/", 1)[1], request)[-1]
    assert dict(done.headers)["location"] == "https://api.example.com/reports/1"


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="only available inside work"):
        report_progress(0.5)
    with pytest.raises(ValueError, match="status_path must be a path with '{id}'"):
        Operations(status_path="/operations")


def test_sqlalchemy_store_is_shared(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    first = Operations(SqlAlchemyJobStore(url))
    job_id = dict(first.submit(lambda: "/done").headers)["location"].rsplit("/", 1)[1]
    poll(first, job_id)
    other = Operations(SqlAlchemyJobStore(url))  # another worker process would do the same
    assert other.status(job_id).status == 303


def test_in_memory_store_forgets_old_finished_jobs() -> None:
    store = InMemoryJobStore(limit=4)
    jobs = [store.create() for _ in range(4)]
    for job in jobs:
        store.update(job.__class__(job.id, state="succeeded", result="/r"))
    store.create()
    assert sum(store.get(j.id) is not None for j in jobs) == 2
