"""A client that follows redirects the way the REST guide says, and remembers permanent moves.

    from redirectory.client import Client

    with Client() as client:
        response = client.post("https://api.example/v1/users", json={"name": "Ada"})
        print(response.explain())

`Client` and `AsyncClient` are httpx clients (every httpx option and method works) whose
redirect loop is redirectory's: 303 -> GET, 307/308 keep method and body, 302 by policy, 301
and 308 remembered (bounded, thread- and task-safe, optionally in SQLite), loops and
https -> http downgrades refused, credentials kept on their origin. See docs/client.md.
"""

from redirectory.client.aio import AsyncClient
from redirectory.client.errors import (
    BodyNotReplayable,
    Redirect302Refused,
    RedirectError,
    RedirectLoop,
    RedirectWarning,
    TooManyRedirects,
    UnsafeRedirect,
)
from redirectory.client.memory import RedirectMemory, RememberedRedirect
from redirectory.client.policy import Decision, Policy, decide
from redirectory.client.response import Response
from redirectory.client.sync import Client
from redirectory.client.trace import Hop, Trace

__all__ = [
    "AsyncClient",
    "BodyNotReplayable",
    "Client",
    "Decision",
    "Hop",
    "Policy",
    "Redirect302Refused",
    "RedirectError",
    "RedirectLoop",
    "RedirectMemory",
    "RedirectWarning",
    "RememberedRedirect",
    "Response",
    "TooManyRedirects",
    "Trace",
    "UnsafeRedirect",
    "decide",
]
