"""The guide's redirects and conditional requests inside FastAPI, Starlette, Flask and Django apps.

Framework-neutral core (no framework import): `conditional` (RFC 9110 §13 preconditions),
`validators` (ETags, HTTP dates), `redirects` (safe Location, redirect responses), `guard`
(302 guard decisions), `operations` (202 + status resource + 303), `ruletable` (the rule table
in an app). Middlewares: `redirectory.toolkit.asgi` and `redirectory.toolkit.wsgi`. Adapters,
imported only when used: `starlette`, `fastapi`, `flask`, `django`.
"""

from redirectory.conditional import Outcome, Preconditions, Validators, evaluate
from redirectory.toolkit.guard import Guard, GuardMode, RedirectGuardError
from redirectory.toolkit.helpers import (
    accepted,
    configure,
    moved_permanently,
    not_modified,
    operation_status,
    permanent_redirect,
    redirect,
    see_other,
    temporary_redirect,
)
from redirectory.toolkit.operations import InMemoryJobStore, Operations, SqlAlchemyJobStore, report_progress
from redirectory.toolkit.redirects import ForbiddenStatus, InvalidLocation, RedirectOptions, RequestInfo
from redirectory.toolkit.ruletable import RuleTable, RuleTableError
from redirectory.validators import EntityTag

__all__ = [
    "EntityTag",
    "ForbiddenStatus",
    "Guard",
    "GuardMode",
    "InMemoryJobStore",
    "InvalidLocation",
    "Operations",
    "Outcome",
    "Preconditions",
    "RedirectGuardError",
    "RedirectOptions",
    "RequestInfo",
    "RuleTable",
    "RuleTableError",
    "SqlAlchemyJobStore",
    "Validators",
    "accepted",
    "configure",
    "evaluate",
    "moved_permanently",
    "not_modified",
    "operation_status",
    "permanent_redirect",
    "redirect",
    "report_progress",
    "see_other",
    "temporary_redirect",
]
