"""`redirectory.client.Response`: an `httpx.Response` that can explain how it was reached."""

from __future__ import annotations

import httpx

from redirectory.client.trace import Trace

__all__ = ["Response", "adopt"]


class Response(httpx.Response):
    """An httpx.Response with the redirect trace of the request that produced it.

    Every response the redirectory clients return is one of these (`isinstance(r, httpx.Response)`
    still holds). `history` holds the redirect responses received, oldest first; remembered
    moves send no request, so they appear in `explain()` and `trace`, not in `history`.
    """

    _redirectory_trace: Trace | None = None

    @property
    def trace(self) -> Trace:
        if self._redirectory_trace is None:
            return Trace(self.request.method, str(self.request.url), final_status=self.status_code,
                         final_method=self.request.method, final_url=str(self.request.url))
        return self._redirectory_trace

    def explain(self) -> str:
        """Every hop, and why it was followed, ending with this response's status."""
        return self.trace.explain()


_COMBINED: dict[type[httpx.Response], type[Response]] = {}


def _redirectory_class(cls: type[httpx.Response]) -> type[Response]:
    """Response itself, or (for a transport's own Response subclass) a class that is both."""
    if cls is httpx.Response:
        return Response
    combined = _COMBINED.get(cls)
    if combined is None:
        combined = _COMBINED.setdefault(cls, type(cls.__name__, (Response, cls), {"__module__": cls.__module__}))
    return combined


def adopt(response: httpx.Response, trace: Trace) -> Response:
    """Turn the transport's httpx.Response into a redirectory Response (same object, same stream).

    Response adds no state of its own besides the trace, so changing the class of the live object
    keeps the stream, the connection and every httpx attribute exactly as they were. A transport
    returning its own Response subclass gets a class that is both (isinstance holds for each).
    """
    if not isinstance(response, Response):
        response.__class__ = _redirectory_class(type(response))
    assert isinstance(response, Response)
    response._redirectory_trace = trace
    return response
