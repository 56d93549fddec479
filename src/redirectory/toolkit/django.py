"""Django adapter: native responses, and the `conditional` view decorator."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse

from redirectory.conditional import Preconditions, Validators, evaluate, outcome_response
from redirectory.rules.engine import Response
from redirectory.toolkit import wsgi
from redirectory.toolkit.redirects import RequestInfo

F = TypeVar("F", bound=Callable[..., Any])


def request_info(request: HttpRequest) -> RequestInfo:
    return wsgi.request_info(request.META)


def to_response(response: Response) -> HttpResponse:
    """A Django HttpResponse with exactly these status, headers and body (no default Content-Type)."""
    native = HttpResponse(response.body, status=response.status)
    del native["Content-Type"]
    for name, value in response.headers:
        native[name] = value
    return native


def conditional(
    validators: Callable[..., Validators],
    *,
    require_if_match: bool = False,
    headers: Iterable[tuple[str, str]] = (),
) -> Callable[[F], F]:
    """View decorator: `validators(request, *args, **kwargs)` runs before the view; a 304, 412
    or 428 answers instead of it; otherwise the view's response gets ETag / Last-Modified (and
    `headers`) unless it set them. Evaluation follows RFC 9110 §13.2.2 (see `conditional`)."""
    extra = list(headers)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            current = validators(request, *args, **kwargs)
            pre = Preconditions.from_headers(request.headers.items())
            outcome = evaluate(request.method or "GET", pre, current, require_if_match=require_if_match)
            added = [*current.headers(), *extra]
            # after a write the old validators would be wrong: the view sets the new ones
            kept = added if request.method in ("GET", "HEAD") else extra
            if not outcome.proceed:
                return to_response(outcome_response(outcome, added))
            native = view(request, *args, **kwargs)
            for name, value in kept:
                if not native.has_header(name):
                    native[name] = value
            return native

        return wrapper  # type: ignore[return-value]

    return decorate
