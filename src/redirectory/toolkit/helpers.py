"""Response helpers for any supported framework: the request says which one.

Each helper takes the native request first (Starlette/FastAPI `Request`, Flask `request` or a
Werkzeug `Request`, Django `HttpRequest`) and returns that framework's native response. The
adapter module is imported only when its kind of request shows up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

from redirectory.conditional import Outcome, Validators, outcome_response
from redirectory.rules.engine import Response
from redirectory.toolkit.operations import Operations
from redirectory.toolkit.redirects import RedirectOptions, RequestInfo, checked_headers, redirect_response

_options = RedirectOptions()


def configure(options: RedirectOptions) -> None:
    """Set the RedirectOptions (public URL, trusted proxies, allowed hosts) the helpers use."""
    global _options
    if not isinstance(options, RedirectOptions):
        raise TypeError(f"configure() takes RedirectOptions, got {type(options).__name__}")
    _options = options


def _adapter(request: Any) -> Any:
    if hasattr(request, "scope"):
        return importlib.import_module("redirectory.toolkit.starlette")
    if hasattr(request, "META"):
        return importlib.import_module("redirectory.toolkit.django")
    if hasattr(request, "environ"):
        return importlib.import_module("redirectory.toolkit.flask")
    raise TypeError(f"unsupported request {type(request).__name__}: pass a Starlette/FastAPI Request, "
                    "a Flask/Werkzeug request or a Django HttpRequest")


def _native(request: Any, build: Callable[[RequestInfo], Response]) -> Any:
    adapter = _adapter(request)
    return adapter.to_response(build(adapter.request_info(request)))


def redirect(request: Any, location: str, status: int, *, headers: Iterable[tuple[str, str]] = (),
             options: RedirectOptions | None = None) -> Any:
    """A redirect with any status the guide allows (301, 303, 307, 308); 302 raises ForbiddenStatus."""
    return _native(request, lambda info: redirect_response(status, location, info, options or _options, headers))


def moved_permanently(request: Any, location: str, *, headers: Iterable[tuple[str, str]] = (),
                      options: RedirectOptions | None = None) -> Any:
    """301: the resource moved for good (use it for GET/HEAD; clients may turn POST into GET)."""
    return redirect(request, location, 301, headers=headers, options=options)


def permanent_redirect(request: Any, location: str, *, headers: Iterable[tuple[str, str]] = (),
                       options: RedirectOptions | None = None) -> Any:
    """308: moved for good, and the method and body are kept."""
    return redirect(request, location, 308, headers=headers, options=options)


def see_other(request: Any, location: str, *, headers: Iterable[tuple[str, str]] = (),
              options: RedirectOptions | None = None) -> Any:
    """303: the work is done; GET the result at `location`. No body."""
    return redirect(request, location, 303, headers=headers, options=options)


def temporary_redirect(request: Any, location: str, *, headers: Iterable[tuple[str, str]] = (),
                       options: RedirectOptions | None = None) -> Any:
    """307: send the same request (method and body) to `location`, this time only."""
    return redirect(request, location, 307, headers=headers, options=options)


def not_modified(request: Any, validators: Validators | None = None, *,
                 headers: Iterable[tuple[str, str]] = ()) -> Any:
    """304: the client's copy is current. Only the §15.4.5 headers are kept; no body."""
    extra = [*(validators.headers() if validators else []), *checked_headers(headers)]
    return _native(request, lambda info: outcome_response(Outcome(304), extra))


def accepted(request: Any, operations: Operations, work: Callable[[], str]) -> Any:
    """202 Accepted with Location of the status resource; `work()` runs in the background and
    returns the URL of the result resource."""
    return _native(request, lambda info: operations.submit(work, info))


def operation_status(request: Any, operations: Operations, job_id: str) -> Any:
    """The status resource: 202 with progress while running, then 303 See Other to the result."""
    return _native(request, lambda info: operations.status(job_id, info))
