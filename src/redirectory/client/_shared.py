"""Construction shared by Client and AsyncClient: options, memory, policy."""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from typing import TypedDict

import httpx

# httpx publishes these aliases only in its private modules; they are what its own signatures use.
from httpx._client import EventHook, UseClientDefault
from httpx._types import (
    AuthTypes,
    CertTypes,
    CookieTypes,
    HeaderTypes,
    ProxyTypes,
    QueryParamTypes,
    RequestContent,
    RequestData,
    RequestExtensions,
    RequestFiles,
    TimeoutTypes,
)

from redirectory.client.memory import RedirectMemory
from redirectory.client.policy import Policy, Redirect301, Redirect302, memory_key

__all__ = [
    "DEFAULT_MAX_REDIRECTS",
    "AuthTypes",
    "CookieTypes",
    "HeaderTypes",
    "HttpxAsyncOptions",
    "HttpxOptions",
    "MemoryOption",
    "QueryParamTypes",
    "RedirectOptions",
    "RequestContent",
    "RequestData",
    "RequestExtensions",
    "RequestFiles",
    "TimeoutTypes",
    "UseClientDefault",
    "build_memory",
    "memory_key_for",
    "origin_auth",
]

#: Hop limit (RFC 9110 §15.4 asks clients to detect loops; httpx allows 20, we stop at 10).
DEFAULT_MAX_REDIRECTS = 10

MemoryOption = RedirectMemory | bool | str | os.PathLike[str]


class _CommonOptions(TypedDict, total=False):
    auth: AuthTypes | None
    params: QueryParamTypes | None
    headers: HeaderTypes | None
    cookies: CookieTypes | None
    verify: ssl.SSLContext | str | bool
    cert: CertTypes | None
    trust_env: bool
    http1: bool
    http2: bool
    proxy: ProxyTypes | None
    timeout: TimeoutTypes
    limits: httpx.Limits
    event_hooks: Mapping[str, list[EventHook]] | None
    base_url: httpx.URL | str
    default_encoding: str | Callable[[bytes], str]


class HttpxOptions(_CommonOptions, total=False):
    """Every httpx.Client option except follow_redirects and max_redirects (ours have other defaults)."""

    mounts: Mapping[str, httpx.BaseTransport | None] | None
    transport: httpx.BaseTransport | None


class HttpxAsyncOptions(_CommonOptions, total=False):
    """Every httpx.AsyncClient option except follow_redirects and max_redirects."""

    mounts: Mapping[str, httpx.AsyncBaseTransport | None] | None
    transport: httpx.AsyncBaseTransport | None


class RedirectOptions:
    """The redirect settings of a client, built once from its keyword arguments."""

    def __init__(
        self,
        *,
        redirect_302: Redirect302,
        redirect_301: Redirect301,
        memory: MemoryOption,
        allow_downgrade: bool,
        buffer_bodies: bool,
        sensitive_headers: frozenset[str] | set[str] | tuple[str, ...],
    ) -> None:
        self.policy = Policy(redirect_302=redirect_302, redirect_301=redirect_301, allow_downgrade=allow_downgrade,
                             sensitive_headers=frozenset(sensitive_headers))
        self.memory, self.owns_memory = build_memory(memory)
        self.buffer_bodies = buffer_bodies


def build_memory(memory: MemoryOption) -> tuple[RedirectMemory | None, bool]:
    """(the memory to use, whether the client owns it and closes it)."""
    if isinstance(memory, RedirectMemory):
        return memory, False
    if memory is True:
        return RedirectMemory(), True
    if memory is False:
        return None, False
    return RedirectMemory(path=memory), True



def origin_auth(client_auth: httpx.Auth | None, auth: AuthTypes | UseClientDefault | None,
                url: httpx.URL) -> AuthTypes | UseClientDefault | None:
    """The auth for hops on the request's own origin: as given, or the URL's user:password as httpx
    would derive it for the first hop (so that remembered hops, which change the URL, keep it)."""
    if isinstance(auth, UseClientDefault) and client_auth is None and (url.username or url.password):
        return httpx.BasicAuth(url.username, url.password)
    return auth


def memory_key_for(base_url: httpx.URL, url: httpx.URL | str) -> str:
    """`url` as the memory keys it; a relative URL is merged with `base_url` the way httpx does."""
    target = httpx.URL(url)
    if target.is_relative_url and base_url:
        base = base_url if base_url.raw_path.endswith(b"/") else base_url.copy_with(
            raw_path=base_url.raw_path + b"/")
        target = base.copy_with(raw_path=base.raw_path + target.raw_path.lstrip(b"/"))
    return memory_key(target)
