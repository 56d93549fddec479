"""`/api/v1/rule-imports`: import a rule file as a long-running operation (guide LRO + 303).

POST the file as the body (`?format=` one of `importers.IMPORT_FORMATS`, or a Content-Type
such as `application/yaml`, `text/csv`, `application/json`) -> 202 Accepted with `Location:
/api/v1/rule-imports/{uuid}`. GET that while it runs -> 202 with `{"status": "RUNNING",
"progress": {...}}`; once finished -> 303 See Other to `/api/v1/rule-imports/{uuid}/report`,
which holds what was added (or why nothing was), the new revision and the warnings.

An import adds rules (it is not a sync); it is validated together with the table and written in
one transaction, so a failed import changes nothing. Import jobs live in the admin process's
memory (the last 100 are kept; a restart forgets them, never the rules they wrote).

`?dryRun=true` makes the same job without its write: parsed and validated with the table exactly as
the import would be (`Store.check_add`, the store's own dry run of `Store.add`, inside the write lock
and rolled back), and its report is the plan: what would be added (the count and the first
`PLAN_ITEMS` rules, each with its line), the `allowed_hosts` change, every error and warning. An
import never changes or removes rules, so the plan's `changed` and `removed` are always empty.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from redirectory.admin.auth import require
from redirectory.admin.errors import NO_STORE, ApiError, ErrorItem
from redirectory.admin.openapi import COMMON, ERROR_ITEM, FILE_BODY, RULE_INPUT
from redirectory.admin.paging import FLAG_VALUES, query_flag
from redirectory.admin.representation import timestamp
from redirectory.admin.rules import _actor, api_value, problem_item
from redirectory.rules.model import FIELDS

router = APIRouter(prefix="/api/v1", responses=COMMON)
KEEP_JOBS = 100
#: How many of the rules a dry run would add its report lists (the count covers them all).
PLAN_ITEMS = 20
CONTENT_TYPES = {
    "application/yaml": "yaml", "application/x-yaml": "yaml", "text/yaml": "yaml", "text/x-yaml": "yaml",
    "application/json": "json", "text/csv": "csv",
}


def _formats() -> tuple[str, ...]:
    try:
        from redirectory.rules.importers import IMPORT_FORMATS

        return tuple(IMPORT_FORMATS)
    except ImportError:
        return ("yaml", "json", "csv")


def _load(text: str, fmt: str, source: str) -> Any:
    try:
        from redirectory.rules.importers import load_any
    except ImportError:
        from redirectory.rules.parsing import loads

        return loads(text, fmt, source)  # type: ignore[arg-type]
    return load_any(text, fmt, source)



class JobState(StrEnum):
    """An import job's `status` (the guide's long-running operation states)."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class JobPhase(StrEnum):
    """Where a running import is (`progress.phase`)."""

    PARSING = "parsing"
    VALIDATING = "validating"
    WRITING = "writing"
    FINISHED = "finished"


@dataclass
class ImportJob:
    id: str
    format: str
    actor: str
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: JobState = JobState.RUNNING
    phase: JobPhase = JobPhase.PARSING
    total: int | None = None
    done: int = 0
    finished: datetime | None = None
    revision: int | None = None
    added: int = 0
    warnings: list[ErrorItem] = field(default_factory=list)
    errors: list[ErrorItem] = field(default_factory=list)
    dry_run: bool = False
    #: A dry run's plan: the first `PLAN_ITEMS` rules it would add, and the allowed_hosts change.
    planned: list[dict[str, Any]] = field(default_factory=list)
    hosts_change: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def progress(self) -> dict[str, Any]:
        return {"phase": self.phase, "done": self.done, "total": self.total}

    def status_json(self) -> dict[str, Any]:
        return {"uuid": self.id, "status": self.status, "format": self.format, "dryRun": self.dry_run,
                "createdAt": timestamp(self.created), "progress": self.progress()}

    def report_json(self) -> dict[str, Any]:
        report = {
            "uuid": self.id, "status": self.status, "format": self.format, "dryRun": self.dry_run,
            "createdAt": timestamp(self.created), "finishedAt": timestamp(self.finished),
            "added": self.added, "changed": 0, "removed": 0, "revision": self.revision,
        }
        if self.dry_run:
            hosts = None if self.hosts_change is None else {
                "before": list(self.hosts_change[0]), "after": list(self.hosts_change[1])}
            report["plan"] = {"added": self.planned, "changed": [], "removed": [], "allowedHosts": hosts}
        report["errors"] = [e.to_json() for e in self.errors]
        report["metadata"] = {"warnings": [w.to_json() for w in self.warnings]}
        return report


class ImportRegistry:
    def __init__(self) -> None:
        self.jobs: OrderedDict[str, ImportJob] = OrderedDict()
        self.lock = threading.Lock()

    def add(self, job: ImportJob) -> None:
        with self.lock:
            self.jobs[job.id] = job
            while len(self.jobs) > KEEP_JOBS:
                oldest = next(iter(self.jobs))
                if self.jobs[oldest].status is JobState.RUNNING:
                    break
                self.jobs.popitem(last=False)

    def get(self, job_id: str) -> ImportJob | None:
        with self.lock:
            return self.jobs.get(job_id)


def _items(problems: list[Any]) -> list[ErrorItem]:
    """Problems as items; one repeated on more than 3 rules is one item whose detail gives the count
    and the first lines, and whose `detailKeyParameters` is [count] (`rules/grouping.py`)."""
    from redirectory.rules.grouping import ProblemGroup, group_problems

    items = []
    for entry in group_problems(problems):
        if isinstance(entry, ProblemGroup):
            item = problem_item(entry.problem, detail=entry.format())
            item.params = [str(entry.count)]
        else:
            item = problem_item(entry, index=entry.index, detail=entry.format())
        items.append(item)
    return items


def planned_rule(rule: Any) -> dict[str, Any]:
    """A rule a dry run would add, as the API writes rules (no uuid yet), with its place in the file."""
    return {"index": rule.position, "line": rule.line, **{f.api: api_value(f, getattr(rule, f.attr)) for f in FIELDS}}


def run_import(store: Any, job: ImportJob, text: str) -> None:
    """Parse, validate with the table, write in one transaction (or nothing); fills `job`.

    Every problem is reported at once: the parser's, the validator's for each rule that parsed
    (its fields, then its conflicts with the table and the rest of the file), each with `status`
    (400 or 422) and `index`, the rule's zero-based position in the file. A dry run
    (`job.dry_run`) takes the same steps but validates without writing (`Store.check_add`) and
    fills the plan instead.
    """
    from redirectory.store import ChangeRefused

    try:
        ruleset, problems = _load(text, job.format, "upload")
        job.phase, job.total = JobPhase.VALIDATING, len(ruleset.rules)
        current_hosts = store.allowed_hosts()
        hosts = tuple(dict.fromkeys(current_hosts + ruleset.allowed_hosts))
        new_hosts = hosts if hosts != current_hosts else None
        in_file = [r.position for r in ruleset.rules]  # the rule's place in the file (rules with errors are left out)

        def placed(found: list[Any]) -> list[Any]:
            return [replace(p, index=None if p.index is None or p.index >= len(in_file) else in_file[p.index])
                    for p in found]

        found: list[Any] = []
        written = False
        if job.dry_run or any(p.is_error for p in problems):  # report all at once; a dry run writes nothing
            found = store.check_add(ruleset.rules, allowed_hosts=new_hosts, source="upload")
        else:
            job.phase = JobPhase.WRITING

            def progress(done: int) -> None:
                job.done = done

            try:  # validated with the table inside the write (store/guard.py)
                job.revision = store.add(ruleset.rules, actor=job.actor, progress=progress,
                                         allowed_hosts=new_hosts, problems=found, source="upload")
                written = True
            except ChangeRefused as exc:
                found = exc.problems
        everything = sorted(problems + placed(found), key=lambda p: (p.line is not None, p.line or 0, p.index or 0))
        job.warnings = _items([p for p in everything if not p.is_error])
        if any(p.is_error for p in everything):
            job.errors = _items([p for p in everything if p.is_error])
            return
        if written or job.dry_run:
            job.added, job.done = len(ruleset.rules), len(ruleset.rules)
        if job.dry_run:
            job.planned = [planned_rule(rule) for rule in ruleset.rules[:PLAN_ITEMS]]
            job.hosts_change = None if new_hosts is None else (current_hosts, new_hosts)
    except Exception:  # noqa: BLE001 - reported as a failed import without internals
        import logging

        logging.getLogger("redirectory.admin").exception("import %s failed", job.id)
        job.errors = [ErrorItem("The import could not be written; nothing was changed", "importFailed")]
    finally:
        job.status = JobState.FAILED if job.errors else JobState.SUCCEEDED
        job.phase = JobPhase.FINISHED
        job.finished = datetime.now(UTC)


def _registry(request: Request) -> ImportRegistry:
    registry = getattr(request.app.state, "imports", None)
    if registry is None:
        registry = request.app.state.imports = ImportRegistry()
    return registry


_TIMESTAMP = {"type": "string", "format": "date-time"}
_COMMON_PROPS: dict[str, Any] = {
    "uuid": {"type": "string", "format": "uuid"},
    "format": {"type": "string"},
    "dryRun": {"type": "boolean", "description": "true: a dry run, whose report is the plan (nothing is written)"},
    "createdAt": _TIMESTAMP,
}
#: A job's status (a small job may be done before its 202 is sent: any state).
STATUS_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["uuid", "status", "format", "dryRun", "createdAt", "progress"],
    "properties": {**_COMMON_PROPS, "status": {"type": "string", "enum": list(JobState)},
                   "progress": {"type": "object", "required": ["phase", "done", "total"], "properties": {
                       "phase": {"type": "string", "enum": list(JobPhase)},
                       "done": {"type": "integer", "minimum": 0},
                       "total": {"type": ["integer", "null"], "minimum": 0}}}},
}
_COUNT = {"type": "integer", "minimum": 0}
_PLANNED_RULE = {
    "type": "object", "required": ["index", "line"],
    "description": "A rule the import would add, as the API writes rules (no uuid yet), with its place in the file",
    "properties": {"index": {"type": "integer", "minimum": 0, "description": "Its zero-based place in the file"},
                   "line": {"type": ["integer", "null"], "minimum": 1},
                   **{name: schema for name, schema in RULE_INPUT["properties"].items() if name != "uuid"}},
}
REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["uuid", "status", "format", "dryRun", "createdAt", "finishedAt", "added", "changed", "removed",
                 "revision", "errors", "metadata"],
    "properties": {
        **_COMMON_PROPS,
        "status": {"type": "string", "enum": [JobState.SUCCEEDED, JobState.FAILED],
                   "description": "FAILED: nothing was written (a dry run: the import would fail), see errors"},
        "finishedAt": _TIMESTAMP,
        "added": {**_COUNT, "description": "Rules added (a dry run: rules the import would add)"},
        "changed": {**_COUNT, "description": "Always 0: an import only adds rules"},
        "removed": {**_COUNT, "description": "Always 0: an import only adds rules"},
        "revision": {"type": ["integer", "null"], "description": "The revision the import wrote (null: none)"},
        "plan": {"type": "object", "required": ["added", "changed", "removed", "allowedHosts"],
                 "description": "A dry run's plan (only in a dry run's report)",
                 "properties": {
                     "added": {"type": "array", "maxItems": PLAN_ITEMS, "items": _PLANNED_RULE,
                               "description": f"The first {PLAN_ITEMS} rules the import would add"},
                     "changed": {"type": "array", "maxItems": 0}, "removed": {"type": "array", "maxItems": 0},
                     "allowedHosts": {"type": ["object", "null"], "required": ["before", "after"], "properties": {
                         "before": {"type": "array", "items": {"type": "string"}},
                         "after": {"type": "array", "items": {"type": "string"}}}}}},
        "errors": {"type": "array", "items": ERROR_ITEM},
        "metadata": {"type": "object", "properties": {"warnings": {"type": "array", "items": ERROR_ITEM}}},
    },
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_SELF = {"required": True, "description": "This status resource",
         "schema": {"type": "string", "format": "uri-reference"},
         "example": "/api/v1/rule-imports/3e1d5f6a-0c2b-4d7e-9f10-2a3b4c5d6e7f"}
_REPORT = {"required": True, "description": "The import's report",
           "schema": {"type": "string", "format": "uri-reference"},
           "example": "/api/v1/rule-imports/3e1d5f6a-0c2b-4d7e-9f10-2a3b4c5d6e7f/report"}


@router.post("/rule-imports", status_code=202, summary="Import a rule file, or plan its import (long-running)",
             dependencies=[Depends(require("write"))], openapi_extra=FILE_BODY,
             responses={202: {"description": "Started: poll the status resource at Location",
                              "headers": {"Location": _SELF}, "content": _json(STATUS_SCHEMA)}})
async def start_import(
    request: Request,
    fmt: Annotated[str | None, Query(alias="format", description="The file's format (empty or absent: from the "
                                     "Content-Type)", json_schema_extra={"enum": [*_formats(), ""]})] = None,
    dry_run: Annotated[str | None, Query(alias="dryRun", description="true: write nothing; the report is the plan "
                                         "(what would be added, every problem)", json_schema_extra={
                                             "enum": [*FLAG_VALUES, ""]})] = None,
) -> JSONResponse:
    dry = query_flag(dry_run, "dryRun") is True
    formats = _formats()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    chosen = fmt or CONTENT_TYPES.get(ctype)
    if chosen is None or chosen not in formats:
        raise ApiError.one(400, "unknownFormat",
                           f"Say the file's format with ?format= ({', '.join(formats)}) or a Content-Type such as "
                           "application/yaml or text/csv", fields=["format"])
    raw = await request.body()  # at most its limits.BODY_LIMITS size: a larger one was refused (413)
    if not raw.strip():
        raise ApiError.one(400, "emptyFile", "The body is empty: send the rule file itself")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError.one(400, "encoding", f"The file is not valid UTF-8 (byte offset {exc.start})") from None
    job = ImportJob(id=str(uuid.uuid4()), format=chosen, actor=_actor(request), dry_run=dry)
    _registry(request).add(job)
    threading.Thread(target=run_import, args=(request.app.state.store, job, text),
                     name=f"import-{job.id}", daemon=True).start()
    return JSONResponse(job.status_json(), status_code=202,
                        headers={"location": f"/api/v1/rule-imports/{job.id}", **NO_STORE})


@router.api_route("/rule-imports/{job_id}", methods=["GET", "HEAD"], summary="An import's status",
                  dependencies=[Depends(require("read"))], response_model=None,
                  responses={202: {"description": "Still running, with progress", "headers": {"Location": _SELF},
                                   "content": _json(STATUS_SCHEMA)},
                             303: {"description": "Finished: GET the report at Location",
                                   "headers": {"Location": _REPORT},
                                   "links": {"report": {
                                       "operationRef": "#/paths/~1api~1v1~1rule-imports~1{job_id}~1report/get",
                                       "parameters": {"job_id": "$request.path.job_id"}}}}},
                  # 202 -> 303 on the status resource is our long-running-operation design (guide
                  # checklist 35 [Ours]), not a controller's 303: that check does not apply here.
                  openapi_extra={"x-redirectory-ignore": ["S303-AFTER-UNSAFE"]})
def import_status(job_id: str, request: Request) -> Response:
    job = _registry(request).get(job_id)
    if job is None:
        raise ApiError.one(404, "importNotFound", f"No import has uuid {job_id[:64]}", fields=["uuid"])
    if job.status is JobState.RUNNING:
        return JSONResponse(job.status_json(), status_code=202,
                            headers={"location": f"/api/v1/rule-imports/{job.id}", **NO_STORE})
    return Response(status_code=303, headers={"location": f"/api/v1/rule-imports/{job.id}/report", **NO_STORE})


@router.api_route("/rule-imports/{job_id}/report", methods=["GET", "HEAD"],
                  summary="What an import did (a dry run: the plan)", dependencies=[Depends(require("read"))],
                  responses={200: {"description": "The report (a dry run's: the plan)",
                                   "content": _json(REPORT_SCHEMA)}})
def import_report(job_id: str, request: Request) -> JSONResponse:
    job = _registry(request).get(job_id)
    if job is None:
        raise ApiError.one(404, "importNotFound", f"No import has uuid {job_id[:64]}", fields=["uuid"])
    if job.status is JobState.RUNNING:
        raise ApiError.one(404, "importRunning", "The import is still running: poll its status resource",
                           fields=["uuid"])
    return JSONResponse(job.report_json(), headers=NO_STORE)


def _allow(methods: str) -> Response:
    return Response(status_code=200, headers={"allow": methods, **NO_STORE})


@router.options("/rule-imports", response_class=Response, summary="Methods allowed on imports")
def options_imports() -> Response:
    return _allow("POST, OPTIONS")


@router.options("/rule-imports/{job_id}", response_class=Response, summary="Methods allowed on an import",
                dependencies=[Depends(require("read"))])
def options_import(job_id: str, request: Request) -> Response:
    if _registry(request).get(job_id) is None:
        raise ApiError.one(404, "importNotFound", f"No import has uuid {job_id[:64]}", fields=["uuid"])
    return _allow("GET, HEAD, OPTIONS")


@router.options("/rule-imports/{job_id}/report", response_class=Response, summary="Methods allowed on a report",
                dependencies=[Depends(require("read"))])
def options_report(job_id: str, request: Request) -> Response:
    if _registry(request).get(job_id) is None:
        raise ApiError.one(404, "importNotFound", f"No import has uuid {job_id[:64]}", fields=["uuid"])
    return _allow("GET, HEAD, OPTIONS")
