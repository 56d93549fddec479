"""Every exception (and the one warning) the redirect-following client raises.

They all derive from `RedirectError`, itself an `httpx.RequestError`, so code that already
catches `httpx.HTTPError` keeps working; `TooManyRedirects` and `RedirectLoop` are also
`httpx.TooManyRedirects`, which is what httpx raises for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from redirectory.client.trace import Trace

__all__ = [
    "BodyNotReplayable",
    "Redirect302Refused",
    "RedirectError",
    "RedirectLoop",
    "RedirectWarning",
    "TooManyRedirects",
    "UnsafeRedirect",
]


class RedirectError(httpx.RequestError):
    """A redirect the client refuses to follow. `trace` holds every hop up to the refusal."""

    def __init__(self, message: str, *, request: httpx.Request | None = None, trace: Trace | None = None) -> None:
        super().__init__(message, request=request)
        self.trace = trace

    @property
    def history(self) -> list[httpx.Response]:
        """The redirect responses received before the refusal (oldest first)."""
        return list(self.trace.responses) if self.trace is not None else []

    def explain(self) -> str:
        """Every hop up to the refusal, and why the client stopped."""
        head = f"refused: {self}"
        return head if self.trace is None else self.trace.explain() + "\n" + head


class TooManyRedirects(RedirectError, httpx.TooManyRedirects):
    """More redirects than the client's `max_redirects` (default 10)."""


class RedirectLoop(RedirectError, httpx.TooManyRedirects):
    """The same method and URL came back: following further would never end."""


class UnsafeRedirect(RedirectError):
    """A redirect from https to http (refused unless `allow_downgrade=True`), or to a non-HTTP URL."""


class BodyNotReplayable(RedirectError):
    """A 307/308 (or a preserved 301/302) must re-send a body that was a one-shot stream.

    Raised before anything is sent to the redirect target. Pass `buffer_bodies=True` to the
    client to read such bodies into memory first, so they can be re-sent.
    """


class Redirect302Refused(RedirectError):
    """A 302 arrived while the client runs with `redirect_302="error"` (the guide's strict mode)."""


class RedirectWarning(UserWarning):
    """The server answered in a way the guide forbids or discourages, and the client coped."""
