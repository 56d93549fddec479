"""`redirectory.client.AsyncClient`: an httpx.AsyncClient that follows redirects the way the guide says."""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Unpack

import anyio.to_thread
import httpx

from redirectory.client._follow import Session, Settings, body_replayable, emit_warnings
from redirectory.client._shared import (
    DEFAULT_MAX_REDIRECTS,
    AuthTypes,
    CookieTypes,
    HeaderTypes,
    HttpxAsyncOptions,
    MemoryOption,
    QueryParamTypes,
    RedirectOptions,
    RequestContent,
    RequestData,
    RequestExtensions,
    RequestFiles,
    TimeoutTypes,
    UseClientDefault,
    memory_key_for,
    origin_auth,
)
from redirectory.client.memory import RedirectMemory
from redirectory.client.policy import DEFAULT_SENSITIVE_HEADERS, Policy, Redirect301, Redirect302, credentials_follow
from redirectory.client.response import Response, adopt

__all__ = ["AsyncClient"]

USE_CLIENT_DEFAULT = httpx.USE_CLIENT_DEFAULT


class AsyncClient(httpx.AsyncClient):
    """An httpx.AsyncClient whose redirects follow the REST guide, and which remembers permanent moves.

    Every httpx.AsyncClient option passes through (transport, auth, timeout, limits, mounts, proxy,
    event hooks...). Redirects are followed by default (`follow_redirects=True`), at most
    `max_redirects` (10) per request. The redirect options:

    - `redirect_302`: "historic" (POST becomes GET, with a RedirectWarning), "preserve" or "error";
    - `redirect_301`: "historic" (POST becomes GET, with a RedirectWarning) or "preserve";
    - `memory`: True (an in-memory RedirectMemory), False (remember nothing), a file path (a
      persistent RedirectMemory in that SQLite file) or a RedirectMemory to share between clients;
    - `allow_downgrade`: follow https -> http (refused by default with UnsafeRedirect);
    - `buffer_bodies`: read one-shot request bodies into memory so a 307/308 can re-send them
      (otherwise BodyNotReplayable);
    - `sensitive_headers`: dropped on hops to another origin (Authorization, Cookie, Proxy-Authorization).
    """

    def __init__(
        self,
        *,
        redirect_302: Redirect302 = "historic",
        redirect_301: Redirect301 = "historic",
        memory: MemoryOption = True,
        allow_downgrade: bool = False,
        buffer_bodies: bool = False,
        sensitive_headers: frozenset[str] | set[str] | tuple[str, ...] = DEFAULT_SENSITIVE_HEADERS,
        follow_redirects: bool = True,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        **httpx_options: Unpack[HttpxAsyncOptions],
    ) -> None:
        self._redirectory = RedirectOptions(redirect_302=redirect_302, redirect_301=redirect_301, memory=memory,
                                          allow_downgrade=allow_downgrade, buffer_bodies=buffer_bodies,
                                          sensitive_headers=sensitive_headers)
        super().__init__(follow_redirects=follow_redirects, max_redirects=max_redirects, **httpx_options)

    @property
    def policy(self) -> Policy:
        return self._redirectory.policy

    @property
    def memory(self) -> RedirectMemory | None:
        """The permanent-redirect memory (None with `memory=False`)."""
        return self._redirectory.memory

    @property
    def buffer_bodies(self) -> bool:
        return self._redirectory.buffer_bodies

    async def forget(self, url: httpx.URL | str) -> int:
        """Forget every remembered move from `url` (relative URLs join the base_url); returns how many."""
        memory = self.memory
        if memory is None:
            return 0
        count = memory.forget(memory_key_for(self.base_url, url), flush=False)
        await self._flush()
        return count

    async def _flush(self) -> None:
        memory = self.memory
        if memory is not None and memory.has_pending_writes:
            await anyio.to_thread.run_sync(memory.flush)

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> Response:
        """Send `request`, following redirects with redirectory's loop (httpx's own is never used)."""
        follow = self.follow_redirects if isinstance(follow_redirects, UseClientDefault) else follow_redirects
        settings = Settings(self.policy, self.memory, self.max_redirects)
        session = Session(settings, request, follow=follow, jar=self.cookies)
        if follow and self.buffer_bodies and not body_replayable(request):
            await request.aread()
        auth = origin_auth(self.auth, auth, request.url)
        current, warned = request, 0
        while True:
            to_send = session.prepare(current)
            await self._flush()
            hop_auth = auth if credentials_follow(request.url, to_send.url) else None
            response = await super().send(to_send, stream=True, auth=hop_auth, follow_redirects=False)
            try:
                if session.wants_body(response):
                    await response.aread()
                following = session.on_response(to_send, response)
                await self._flush()
                warned = emit_warnings(session, warned)
                if following is None:
                    if not stream:
                        await response.aread()
                    return adopt(response, session.finish(response))
            except BaseException:
                await self._flush()
                await response.aclose()
                raise
            await response.aclose()
            current = following

    async def aclose(self) -> None:
        await super().aclose()
        await self._close_memory()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await super().__aexit__(exc_type, exc_value, traceback)  # httpx's __aexit__ does not call aclose()
        await self._close_memory()

    async def _close_memory(self) -> None:
        """Close the memory's file if this client opened it (a RedirectMemory passed in stays open)."""
        if self._redirectory.owns_memory and self.memory is not None:
            await anyio.to_thread.run_sync(self.memory.close)

    # The httpx methods, typed to return redirectory's Response (they all go through send()).

    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        response = await super().request(method, url, content=content, data=data, files=files, json=json, params=params,
                                   headers=headers, cookies=cookies, auth=auth, follow_redirects=follow_redirects,
                                   timeout=timeout, extensions=extensions)
        assert isinstance(response, Response)
        return response

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> AsyncIterator[Response]:
        request = self.build_request(method, url, content=content, data=data, files=files, json=json, params=params,
                                     headers=headers, cookies=cookies, timeout=timeout, extensions=extensions)
        response = await self.send(request, auth=auth, follow_redirects=follow_redirects, stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    async def get(
        self,
        url: httpx.URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault | None = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        return await self.request("GET", url, params=params, headers=headers, cookies=cookies, auth=auth,
                            follow_redirects=follow_redirects, timeout=timeout, extensions=extensions)

    async def options(
        self,
        url: httpx.URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        return await self.request("OPTIONS", url, params=params, headers=headers, cookies=cookies, auth=auth,
                            follow_redirects=follow_redirects, timeout=timeout, extensions=extensions)

    async def head(
        self,
        url: httpx.URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        return await self.request("HEAD", url, params=params, headers=headers, cookies=cookies, auth=auth,
                            follow_redirects=follow_redirects, timeout=timeout, extensions=extensions)

    async def post(
        self,
        url: httpx.URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        return await self.request("POST", url, content=content, data=data, files=files, json=json, params=params,
                            headers=headers, cookies=cookies, auth=auth, follow_redirects=follow_redirects,
                            timeout=timeout, extensions=extensions)

    async def put(
        self,
        url: httpx.URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        return await self.request("PUT", url, content=content, data=data, files=files, json=json, params=params,
                            headers=headers, cookies=cookies, auth=auth, follow_redirects=follow_redirects,
                            timeout=timeout, extensions=extensions)

    async def patch(
        self,
        url: httpx.URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        return await self.request("PATCH", url, content=content, data=data, files=files, json=json, params=params,
                            headers=headers, cookies=cookies, auth=auth, follow_redirects=follow_redirects,
                            timeout=timeout, extensions=extensions)

    async def delete(
        self,
        url: httpx.URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        auth: AuthTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> Response:
        return await self.request("DELETE", url, params=params, headers=headers, cookies=cookies, auth=auth,
                            follow_redirects=follow_redirects, timeout=timeout, extensions=extensions)
