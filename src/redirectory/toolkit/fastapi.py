"""FastAPI adapter: the `conditional` dependency and `install` (exact 304/412/428 responses).

No `from __future__ import annotations` here: FastAPI reads the dependency's annotations at
runtime, and they name a closure variable."""

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response as StarletteResponse

from redirectory.conditional import Preconditions, Validators, evaluate, outcome_response
from redirectory.rules.engine import Response
from redirectory.toolkit.starlette import to_response


class ConditionalResponseError(HTTPException):
    """Raised by the `conditional` dependency for 304, 412 and 428. With `install(app)` the
    client gets exactly `response`; without it, Starlette's HTTPException handler answers."""

    def __init__(self, response: Response):
        headers = {k: v for k, v in response.headers if k not in ("content-length", "content-type")}
        super().__init__(response.status, response.body.decode() or None, headers)
        self.response = response


def install(app: FastAPI) -> None:
    """Answer ConditionalResponseError with its exact response (guide-format 412/428 bodies)."""

    async def handler(request: Request, exc: Exception) -> StarletteResponse:
        assert isinstance(exc, ConditionalResponseError)
        return to_response(exc.response)

    app.add_exception_handler(ConditionalResponseError, handler)


def conditional(
    validators: Callable[..., Validators | Awaitable[Validators]],
    *,
    require_if_match: bool = False,
    headers: Iterable[tuple[str, str]] = (),
) -> Callable[..., Awaitable[Validators]]:
    """A dependency: `validators` (itself a dependency: it may take path parameters, a session...)
    gives the resource's validators before the handler runs; 304/412/428 stop the request;
    otherwise the response gets ETag / Last-Modified (and `headers`).

        @app.get("/items/{item_id}")
        def read(item_id: int, v: Validators = Depends(conditional(item_validators))): ...
    """
    extra = list(headers)

    async def dependency(
        request: Request, response: StarletteResponse, current: Annotated[Any, Depends(validators)]
    ) -> Validators:
        if inspect.isawaitable(current):
            current = await current
        if not isinstance(current, Validators):
            raise TypeError(f"{getattr(validators, '__name__', validators)!r} must return Validators, "
                            f"got {type(current).__name__}")
        outcome = evaluate(request.method, Preconditions.from_headers(request.headers.items()), current,
                           require_if_match=require_if_match)
        added = [*current.headers(), *extra]
        # after a write the old validators would be wrong: the handler sets the new ones
        kept = added if request.method in ("GET", "HEAD") else extra
        if not outcome.proceed:
            raise ConditionalResponseError(outcome_response(outcome, added))
        for name, value in kept:
            response.headers[name] = value
        return current

    return dependency
