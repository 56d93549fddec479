"""Flask / Werkzeug adapter: native responses, and the `conditional` view decorator."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import flask
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response as WerkzeugResponse

from redirectory.conditional import Preconditions, Validators, evaluate, outcome_response
from redirectory.rules.engine import Response
from redirectory.toolkit import wsgi
from redirectory.toolkit.redirects import RequestInfo

F = TypeVar("F", bound=Callable[..., Any])


class ExactResponse(WerkzeugResponse):
    """A Werkzeug response sent with exactly its own headers (Werkzeug would drop Last-Modified
    from a 304 and add Content-Type to an empty redirect)."""

    default_mimetype = None

    def get_wsgi_headers(self, environ: dict[str, Any]) -> Headers:
        return Headers(list(self.headers.items()))


def request_info(request: Any) -> RequestInfo:
    return wsgi.request_info(request.environ)


def to_response(response: Response) -> ExactResponse:
    """A Werkzeug (Flask-compatible) response with exactly these status, headers and body."""
    native = ExactResponse(response.body, status=response.status)
    native.headers = Headers(list(response.headers))
    return native


def conditional(
    validators: Callable[..., Validators],
    *,
    require_if_match: bool = False,
    headers: Iterable[tuple[str, str]] = (),
) -> Callable[[F], F]:
    """View decorator: `validators(**view_args)` runs before the view (cheap: a version or an
    update time); a 304, 412 or 428 answers instead of the view; otherwise the view runs and its
    response gets ETag / Last-Modified (and `headers`) unless it set them."""
    extra = list(headers)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            current = validators(*args, **kwargs)
            pre = Preconditions.from_headers(flask.request.headers.items())
            outcome = evaluate(flask.request.method, pre, current, require_if_match=require_if_match)
            added = [*current.headers(), *extra]
            # after a write the old validators would be wrong: the view sets the new ones
            kept = added if flask.request.method in ("GET", "HEAD") else extra
            if not outcome.proceed:
                return to_response(outcome_response(outcome, added))
            native = flask.make_response(view(*args, **kwargs))
            for name, value in kept:
                if name not in native.headers:
                    native.headers[name] = value
            return native

        return wrapper  # type: ignore[return-value]

    return decorate
