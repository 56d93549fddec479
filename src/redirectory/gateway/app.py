"""The redirect gateway as an ASGI application (served by uvicorn or granian).

A thin adapter: it turns an ASGI request into `rules.engine.Request`, sends the engine's
response, counts hits in memory, and keeps the table current by reading the store's change log.

Hot path: a decision for (method, raw path, query[, host]) is cached until the table changes, so
a repeated request costs one dict probe. Tables with time windows skip the cache (a decision may
change with the clock); so do requests whose origin comes from a trusted proxy.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from redirectory.gateway.config import READY_PROBE_PATH, GatewayConfig
from redirectory.gateway.counters import HitCounters
from redirectory.gateway.forwarded import TrustedProxies, forwarded_origin, origin_of
from redirectory.rules.engine import Engine, EngineOptions, Request, Response
from redirectory.rules.model import RuleSet
from redirectory.store import Store

log = logging.getLogger("redirectory.gateway")

#: Changes applied one by one on the event loop below this size; above it, a new engine is
#: built off the loop and swapped in.
INCREMENTAL_LIMIT = 2000
CACHE_LIMIT = 100_000

Scope = dict[str, Any]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class Gateway:
    """Engine + store sync + counters for one worker process."""

    def __init__(self, config: GatewayConfig, render: Callable[[Response], Any] | None = None):
        self.config = config
        #: Turns an engine Response into what the server adapter sends (cached per request key).
        self.render: Callable[[Response], Any] = render or render_asgi
        self.options = EngineOptions(default_permanent_max_age=config.default_permanent_max_age)
        self.public_origin = origin_of(config.public_url) if config.public_url else None
        self.proxies = TrustedProxies(config.forwarded_allow_ips)
        self.store: Store | None = None
        self.engine = Engine((), self.options)
        self.revision = 0
        self.counters = HitCounters()
        self.cache: dict[tuple[Any, ...], tuple[Any, str | None]] = {}
        self.healthy = True
        self.last_error: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ---------------------------------------------------------------------
    def load(self) -> None:
        self.store = Store.open(self.config.database)
        revision, ruleset = self.store.load()
        self.engine = Engine(ruleset, self.options)
        self.revision = revision
        self.cache.clear()
        log.info("worker %s loaded %d rules at revision %d", os.getpid(), len(self.engine), revision)

    async def startup(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.load)
        self._tasks = [
            asyncio.create_task(self._sync_forever()),
            asyncio.create_task(self._flush_forever()),
        ]

    async def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110 - shutting down
                pass
        await self.flush()
        if self.store is not None:
            self.store.close()

    # -- keeping the table current -------------------------------------------------------
    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll_interval)
            try:
                await self.sync()
                self.healthy, self.last_error = True, None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep serving the last table
                if self.healthy:
                    log.warning("cannot read the change log, serving revision %d: %s", self.revision, exc)
                self.healthy, self.last_error = False, type(exc).__name__

    async def sync(self) -> None:
        store = self.store
        assert store is not None
        loop = asyncio.get_running_loop()
        latest = await loop.run_in_executor(None, store.revision)
        if latest <= self.revision:
            return
        changes = await loop.run_in_executor(None, store.changes_since, self.revision)
        if len(changes) > INCREMENTAL_LIMIT:
            revision, ruleset = await loop.run_in_executor(None, store.load)
            engine = await loop.run_in_executor(None, Engine, ruleset, self.options)
            self.engine, self.revision = engine, revision
            self.cache.clear()
            return
        # Applied without awaiting in between: no request sees half a change.
        engine = self.engine
        for change in changes:
            if change.rule_id is not None:
                engine.remove(change.rule_id)
                if change.after is not None:
                    engine.add(change.after)
        self.revision = max(c.revision for c in changes) if changes else latest
        self.cache.clear()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - counts are kept for the next try
                log.warning("cannot flush hit counts: %s", exc)

    async def flush(self) -> None:
        if not self.counters or self.store is None:
            return
        counters, self.counters = self.counters, HitCounters()
        rules, paths = counters.batches()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.store.record_hits, rules, paths, counters.unmatched_overflow)
        except Exception:
            self.counters.unmatched_overflow += counters.unmatched_overflow
            # Put the counts back so none are lost.
            for rule_id, n in counters.hits.items():
                self.counters.hits[rule_id] = self.counters.hits.get(rule_id, 0) + n
                self.counters.last.setdefault(rule_id, counters.last[rule_id])
            for path, n in counters.unmatched.items():
                self.counters.unmatched[path] = self.counters.unmatched.get(path, 0) + n
                self.counters.unmatched_last.setdefault(path, counters.unmatched_last[path])
            raise

    # -- answering -----------------------------------------------------------------------
    def answer(
        self,
        method: str,
        raw_path: bytes,
        query: bytes,
        host: str | None = None,
        fwd_proto: str | None = None,
        fwd_host: str | None = None,
        client_ip: str | None = None,
    ) -> tuple[Any, str | None]:
        """The rendered response (see `render`) and the id of the rule that answered, if any."""
        engine = self.engine
        origin = self.public_origin
        cacheable = not engine.matcher.windows
        if fwd_host and origin is None and self.proxies and self.proxies.trusts(client_ip):
            forwarded = forwarded_origin(fwd_proto, fwd_host)
            if forwarded:
                origin = forwarded
                host = fwd_host.split(",")[0].strip()
                cacheable = False
        key = (method, raw_path, query, host if engine.matcher.has_host_rules else None)
        if cacheable:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        decision = engine.decide(Request(method, _text(raw_path), _text(query), host, origin))
        result = (self.render(decision.response), decision.rule_id)
        if decision.outcome == "redirect":
            if cacheable:
                if len(self.cache) >= CACHE_LIMIT:
                    self.cache.clear()
                self.cache[key] = result
        elif decision.path is not None and decision.path != READY_PROBE_PATH:
            self.counters.miss(decision.path, time.time())
        return result

    @property
    def wants_headers(self) -> bool:
        """Whether answers depend on request headers (Host for host rules, X-Forwarded-*)."""
        return self.engine.matcher.has_host_rules or bool(self.proxies)


def render_asgi(response: Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return (
        response.status,
        [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers],
        response.body,
    )


class GatewayApp:
    """ASGI entry point: lifespan loads the table; http requests get the engine's answer."""

    def __init__(self, config: GatewayConfig | None = None):
        self.gateway = Gateway(config or GatewayConfig.from_env())

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            gateway = self.gateway
            host = fwd_proto = fwd_host = None
            if gateway.wants_headers:
                for name, value in scope["headers"]:
                    if name == b"host":
                        host = value.decode("latin-1")
                    elif name == b"x-forwarded-host":
                        fwd_host = value.decode("latin-1")
                    elif name == b"x-forwarded-proto":
                        fwd_proto = value.decode("latin-1")
            client = scope.get("client")
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            (status, headers, body), rule_id = gateway.answer(
                scope["method"], raw_path, scope["query_string"], host, fwd_proto, fwd_host,
                client[0] if client else None,
            )
            if rule_id is not None:
                self.gateway.counters.hit(rule_id, time.time())
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send(
                {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
            )
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.gateway.startup()
                except Exception as exc:  # noqa: BLE001 - reported to the server, which exits
                    log.error("gateway cannot start: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.gateway.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app() -> GatewayApp:
    """Factory used by the servers (each worker builds its own app from the environment)."""
    return GatewayApp()


__all__ = ["Gateway", "GatewayApp", "RuleSet", "create_app"]
