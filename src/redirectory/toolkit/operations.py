"""Long-running operations (the guide's 202 Accepted): start, poll, then 303 to the result.

`Operations.submit(work, request)` runs `work()` on a thread pool and answers 202 Accepted with
`Location` of a status resource (`status_path`, `/operations/{id}` by default). Polling that
resource (`Operations.status(job_id, request)`) answers:
- 202 with `{"id", "state": "running", "progress"}` and `Retry-After` while the work runs
  (`report_progress(0.4)` inside `work` sets the progress, from 0 to 1);
- 303 See Other to the result resource once `work()` returned its URL (no body);
- 200 with `{"id", "state": "failed", "errors": [...]}` if `work()` raised (the message is
  logged, the client only learns that it failed);
- 404 in the guide's error format for an unknown id.

Jobs live in a `JobStore`: `InMemoryJobStore` (one process) or `SqlAlchemyJobStore` (any
SQLAlchemy URL; shared by every worker process, so any worker can answer a poll).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

import sqlalchemy as sa

from redirectory.rules.engine import Response, error_body
from redirectory.toolkit.redirects import DEFAULT_OPTIONS, RedirectOptions, RequestInfo, resolve_location

log = logging.getLogger("redirectory.toolkit.operations")

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    state: str = RUNNING
    progress: float = 0.0
    result: str | None = None  # the result resource's URL, once succeeded
    error: str | None = None
    created: datetime | None = None
    updated: datetime | None = None


class JobStore(Protocol):
    def create(self) -> Job: ...
    def get(self, job_id: str) -> Job | None: ...
    def update(self, job: Job) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC)


class InMemoryJobStore:
    """Jobs in a dict (one process; lost on restart). Keeps at most `limit` finished jobs."""

    def __init__(self, limit: int = 10_000):
        self.limit = limit
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def create(self) -> Job:
        job = Job(uuid.uuid4().hex, created=_now(), updated=_now())
        with self._lock:
            if len(self._jobs) >= self.limit:
                for old in [j.id for j in self._jobs.values() if j.state != RUNNING][: len(self._jobs) // 2]:
                    del self._jobs[old]
            self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def update(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = replace(job, updated=_now())


class SqlAlchemyJobStore:
    """Jobs in a `redirectory_jobs` table of any SQLAlchemy database (created if missing)."""

    def __init__(self, url: str | sa.Engine):
        self.engine = sa.create_engine(url) if isinstance(url, str) else url
        meta = sa.MetaData()
        self.table = sa.Table(
            "redirectory_jobs", meta,
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("progress", sa.Float, nullable=False),
            sa.Column("result", sa.Text),
            sa.Column("error", sa.Text),
            sa.Column("created", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        )
        meta.create_all(self.engine)

    def create(self) -> Job:
        job = Job(uuid.uuid4().hex, created=_now(), updated=_now())
        with self.engine.begin() as conn:
            conn.execute(self.table.insert().values(
                id=job.id, state=job.state, progress=job.progress, created=job.created, updated=job.updated))
        return job

    def get(self, job_id: str) -> Job | None:
        t = self.table
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == job_id)).mappings().first()
        return None if row is None else Job(**dict(row))

    def update(self, job: Job) -> None:
        t = self.table
        with self.engine.begin() as conn:
            conn.execute(t.update().where(t.c.id == job.id).values(
                state=job.state, progress=job.progress, result=job.result, error=job.error, updated=_now()))


_current: ContextVar[tuple[JobStore, str] | None] = ContextVar("redirectory_job", default=None)


def report_progress(fraction: float) -> None:
    """Inside a running operation: how far it got, from 0 to 1 (outside one: ValueError)."""
    current = _current.get()
    if current is None:
        raise ValueError("report_progress() is only available inside work started by Operations.submit")
    if not 0 <= fraction <= 1:
        raise ValueError(f"progress must be between 0 and 1, got {fraction}")
    store, job_id = current
    job = store.get(job_id)
    if job is not None:
        store.update(replace(job, progress=float(fraction)))


def _json(status: int, doc: dict[str, object], extra: tuple[tuple[str, str], ...] = ()) -> Response:
    body = json.dumps(doc, separators=(",", ":")).encode()
    return Response(status, (("content-type", "application/json"), ("content-length", str(len(body))),
                             ("cache-control", "no-store"), *extra), body)


class Operations:
    def __init__(
        self,
        store: JobStore | None = None,
        *,
        status_path: str = "/operations/{id}",
        max_workers: int = 4,
        retry_after: int = 1,
        options: RedirectOptions = DEFAULT_OPTIONS,
    ):
        if "{id}" not in status_path or not status_path.startswith("/"):
            raise ValueError("status_path must be a path with '{id}', such as /operations/{id}; "
                             f"got {status_path!r}")
        self.store: JobStore = store if store is not None else InMemoryJobStore()
        self.status_path = status_path
        self.retry_after = retry_after
        self.options = options
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="redirectory-op")

    def submit(self, work: Callable[[], str], request: RequestInfo | None = None) -> Response:
        """Start `work` (it returns the result's URL) and answer 202 Accepted."""
        job = self.store.create()
        self._pool.submit(self._run, job, work, request)
        location = resolve_location(self.status_path.format(id=job.id), request, self.options)
        return _json(202, self._doc(job), (("location", location), ("retry-after", str(self.retry_after))))

    def _run(self, job: Job, work: Callable[[], str], request: RequestInfo | None) -> None:
        token = _current.set((self.store, job.id))
        try:
            result = resolve_location(work(), request, self.options)
        except Exception as exc:  # noqa: BLE001 - recorded on the job
            log.exception("operation %s failed", job.id)
            current = self.store.get(job.id) or job
            self.store.update(replace(current, state=FAILED, error=type(exc).__name__))
        else:
            current = self.store.get(job.id) or job
            self.store.update(replace(current, state=SUCCEEDED, progress=1.0, result=result))
        finally:
            _current.reset(token)

    def status(self, job_id: str, request: RequestInfo | None = None) -> Response:
        """The status resource's answer: 202 (running), 303 (done), 200 (failed) or 404."""
        job = self.store.get(job_id)
        if job is None:
            body = error_body("urn:redirectory:error:", 404, "Not Found", "notFound",
                              f"No operation {job_id[:64]}", [job_id[:64]])
            return Response(404, (("content-type", "application/json"), ("content-length", str(len(body)))), body)
        if job.state == SUCCEEDED and job.result is not None:
            return Response(303, (("location", job.result), ("content-length", "0"), ("cache-control", "no-store")))
        if job.state == FAILED:
            return _json(200, self._doc(job))
        return _json(202, self._doc(job), (("retry-after", str(self.retry_after)),))

    @staticmethod
    def _doc(job: Job) -> dict[str, object]:
        doc: dict[str, object] = {"id": job.id, "state": job.state, "progress": round(job.progress, 4)}
        if job.state == FAILED:
            doc["errors"] = [{"detail": "The operation failed", "detailKey": "redirectory.errors.operationFailed",
                              "status": 500}]
        return doc

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)
