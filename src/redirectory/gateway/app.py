"""The redirect gateway as an ASGI application (served by uvicorn or granian).

A thin adapter: it turns an ASGI request into `rules.engine.Request`, sends the engine's
response, counts hits in memory, and keeps the table current by reading the store's change log.

Keeping current: every worker reads the change log by revision (`Store.changes_since`). On
PostgreSQL a LISTEN thread (`listen.py`) wakes the sync as soon as any writer commits, and the
change log is also polled every `safety_poll_interval` seconds (every `poll_interval` while the
LISTEN connection is down); on SQLite it is polled every `poll_interval`. Whatever was missed
(restart, lost connection) is caught up from the worker's last revision. Each flush also writes
the worker's heartbeat (`store/processes.py`) for `/healthz`.

Hot path: a redirect for (method, raw path, query[, host]) is cached until the table changes, so
a repeated request costs one dict probe. Tables with time windows skip the cache (a decision may
change with the clock); so do requests whose origin comes from a trusted proxy. The cache is
bounded in bytes, not entries, since a client chooses the size of every key and, through
placeholders, of every Location: an entry over CACHE_ENTRY_MAX_BYTES is never cached, and the
cache starts over when its entries would pass CACHE_BYTES (docs/gateway.md, "Limits").
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from redirectory.forwarded import TrustedProxies, forwarded_origin, forwarded_scheme, origin_of
from redirectory.gateway import access, reload
from redirectory.gateway.config import READY_PROBE_PATH, GatewayConfig, configure_logging
from redirectory.gateway.metrics import WorkerMetrics
from redirectory.rules.engine import DecisionOutcome, Engine, EngineOptions, Request, Response
from redirectory.rules.model import RuleSet
from redirectory.store import Change, HistoryPruned, Store
from redirectory.store import processes as process_table
from redirectory.store.counters import HitCounters
from redirectory.store.retention import Pruner

log = logging.getLogger("redirectory.gateway")

#: Changes applied one by one on the event loop, all at once (~25 us each at 100k rules: ~12 ms);
#: above this many, the whole table is read anew in slices and swapped in (`reload.py`).
INCREMENTAL_LIMIT = 500
#: The response cache's bound per worker: its entries' bytes together (then it starts over)...
CACHE_BYTES = 64 * 1024 * 1024
#: ...and one entry's (request key + response): a larger one is answered without being cached.
CACHE_ENTRY_MAX_BYTES = 4096
#: What an entry holds beyond the bytes of its key and response: Python objects and the dict slot
#: (measured with tracemalloc: about 450 bytes on the default server, 900 on uvicorn/granian).
CACHE_ENTRY_OVERHEAD = 1024

Scope = dict[str, Any]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _one_more_line(previous: str | None, line: bytes) -> str:
    """A list field's value with one more field line: the lines are one list, in order (RFC 9110 §5.3)."""
    text = line.decode("latin-1")
    return text if previous is None else f"{previous},{text}"


#: Rules read from the store at a time while a worker loads its table.
LOAD_BATCH = 5000


class Gateway:
    """Engine + store sync + counters for one worker process."""

    def __init__(self, config: GatewayConfig, render: Callable[[Response], Any] | None = None):
        self.config = config
        #: Turns an engine Response into what the server adapter sends (cached per request key).
        self.render: Callable[[Response], Any] = render or render_asgi
        # compact: exact rules as small records (rules/matcher.py), the gateway never lists or explains them
        self.options = EngineOptions(default_permanent_max_age=config.default_permanent_max_age, compact=True)
        self.public_origin = origin_of(config.public_url) if config.public_url else None
        #: the scheme of a request no trusted proxy names one for: --public-url's, else this listener's
        self.scheme = self.public_origin.partition(":")[0] if self.public_origin else "http"
        self.proxies = TrustedProxies(config.forwarded_allow_ips)
        self.store: Store | None = None
        self.engine = Engine((), self.options)
        self.revision = 0
        self.counters = HitCounters()
        self.cache: dict[tuple[Any, ...], tuple[Any, str | None]] = {}
        self.cache_bytes = 0
        #: with timed rules, the cached answers hold until this time (`Matcher.next_change`); 0: unknown
        self.cache_until = 0.0
        self.healthy = True
        self.last_error: str | None = None
        self.last_sync: datetime | None = None
        self.started_at = datetime.now(UTC)
        host = process_table.hostname()
        self.process_id = f"{host}:{os.getpid()}:{self.started_at.timestamp():.3f}"
        self.serve_id = config.extra.get("serve_id") or f"{host}:{os.getpid()}"
        self.listener: Any = None  # a ListenThread on PostgreSQL
        #: Prunes the history to the retention of this process's environment (`store/retention.py`).
        self.pruner = Pruner.from_env()
        access.configure(config.log_format, config.access_log_query)
        #: Counts for /metrics (None when `serve --no-metrics`, or outside `serve`): gateway/metrics.py
        self.metrics = WorkerMetrics.from_config(config)
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ---------------------------------------------------------------------
    def load(self) -> None:
        self.store = Store.open(self.config.database)
        with reload.collection_paused():  # no later collection walks the table (reload.py)
            # Streamed from one snapshot into the engine: the whole table is never held twice.
            reader = self.store.table_reader(ordered=False, plain=True)
            revision = reader.open()
            try:
                engine = Engine((), self.options)
                add_plain = engine.matcher.add_plain  # most of a big table: no Rule built per row
                while plain := reader.fetch_plain(LOAD_BATCH):
                    add_plain(plain)
                add = engine.matcher.add
                while rules := reader.fetch(LOAD_BATCH):
                    for rule in rules:
                        add(rule)
            finally:
                reader.close()
            for _shard in engine.matcher.prepare():  # regex sets compiled now, not by the first request
                pass
            self.engine = engine
            self.revision = revision
            self.cache.clear()
            self.cache_until = 0.0  # the new table's timed rules say until when
        log.info("worker %s loaded %d rules at revision %d", os.getpid(), len(self.engine), revision)

    async def startup(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.load)
        self.last_sync = datetime.now(UTC)
        wake = self._wake = asyncio.Event()
        assert self.store is not None
        if self.store.dialect == "postgresql":
            from redirectory.gateway.listen import ListenThread

            def from_thread() -> None:
                try:
                    loop.call_soon_threadsafe(wake.set)
                except RuntimeError:  # the loop is closed: shutting down
                    pass

            self.listener = ListenThread(self.store.engine, from_thread)
            self.listener.start()
        self._tasks = [
            asyncio.create_task(self._sync_forever()),
            asyncio.create_task(self._flush_forever()),
        ]

    async def shutdown(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110 - shutting down
                pass
        access.flush()
        try:
            await self.flush()
        finally:
            await self.publish_metrics()
            if self.store is not None:
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        None, process_table.forget, self.store, self.process_id)
                except Exception as exc:  # noqa: BLE001 - the row goes stale on its own
                    log.warning("cannot remove this worker's heartbeat: %s", type(exc).__name__)
                self.store.close()

    # -- keeping the table current -------------------------------------------------------
    @property
    def listening(self) -> bool:
        """Whether a LISTEN connection is up (PostgreSQL); False on SQLite."""
        return bool(self.listener is not None and self.listener.connected)

    def _interval(self) -> float:
        if self.listening:
            return max(self.config.poll_interval, self.config.safety_poll_interval)
        return self.config.poll_interval

    async def _sync_forever(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            try:
                await asyncio.wait_for(wake.wait(), self._interval())
            except TimeoutError:
                pass
            wake.clear()
            try:
                await self.sync()
                if not self.healthy:
                    log.warning("change log readable again, at revision %d", self.revision)
                self.healthy, self.last_error = True, None
                self.last_sync = datetime.now(UTC)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep serving the last table
                if self.healthy:
                    log.warning("cannot read the change log, serving revision %d: %s",
                                self.revision, type(exc).__name__)
                if self.metrics is not None:
                    self.metrics.database_error("sync")
                self.healthy, self.last_error = False, type(exc).__name__

    async def sync(self) -> None:
        """Apply every change after `self.revision` (one read of the change log)."""
        store = self.store
        assert store is not None
        loop = asyncio.get_running_loop()
        latest, count = await loop.run_in_executor(None, reload.pending, store, self.revision)
        if latest <= self.revision:
            return
        if count > INCREMENTAL_LIMIT:  # not worth reading the change log: the table is read anew
            await self._reload()
            return
        # One snapshot: revisions commit in order, so it holds every change up to `latest`.
        changes: list[Change] | None
        try:
            latest, changes = await loop.run_in_executor(None, store.catch_up, self.revision)
        except HistoryPruned as exc:  # behind the history kept: the changes it needs are gone
            log.info("worker %s: %s; loading the whole table", os.getpid(), exc)
            changes = None
        else:
            if latest <= self.revision:
                return
        if changes is None or len(changes) > INCREMENTAL_LIMIT:
            await self._reload()
            return
        # Applied without awaiting in between: no request sees half a change.
        engine = self.engine
        for change in changes:
            if change.rule_id is not None:
                engine.remove(change.rule_id)
                if change.after is not None:
                    engine.add(change.after)
        self.revision = max([latest, *(c.revision for c in changes)])
        self.cache.clear()
        self.cache_until = 0.0  # the new table's timed rules say until when

    async def _reload(self) -> None:
        """Read the whole table anew and swap it in, never stalling the redirect port for long
        (`reload.py`: built on the event loop in slices, the collector paused, the old table freed
        in slices)."""
        assert self.store is not None
        started = time.monotonic()
        with reload.collection_paused():
            revision, engine = await reload.build_engine(self.store, self.options)
            old, self.engine, self.revision = self.engine, engine, revision
            self.cache.clear()
            self.cache_until = 0.0  # the new table's timed rules say until when
        log.info("worker %s loaded %d rules at revision %d in %.1f s", os.getpid(), len(engine), revision,
                 time.monotonic() - started)
        await reload.release(old)

    async def _flush_forever(self) -> None:
        failing = beat_failing = False
        while True:
            await asyncio.sleep(self.config.flush_interval)
            access.flush()
            await self.publish_metrics()
            try:
                await self.flush()
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - counts are kept for the next try
                if self.metrics is not None:
                    self.metrics.database_error("hit_flush")
                if not failing:
                    log.warning("cannot flush hit counts (kept for the next try): %s", type(exc).__name__)
                failing = True
                continue
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.heartbeat)
                beat_failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - /healthz shows this process as stale
                if self.metrics is not None:
                    self.metrics.database_error("heartbeat")
                if not beat_failing:
                    log.warning("cannot write this worker's heartbeat (is the schema upgraded?): %s",
                                type(exc).__name__)
                beat_failing = True
            if self.store is not None:  # never raises; at most RUN_SECONDS of work per flush
                await asyncio.get_running_loop().run_in_executor(None, self.pruner.tick, self.store, self.revision)

    def state(self) -> process_table.ProcessState:
        """This worker as `/healthz` lists it."""
        healthy = self.healthy and (self.listener is None or self.listening)
        last_error = self.last_error or (None if self.listener is None else self.listener.last_error)
        return process_table.ProcessState(
            self.process_id, process_table.hostname(), os.getpid(), self.serve_id, self.revision,
            healthy, self.listening, last_error, self.started_at, self.last_sync, datetime.now(UTC),
        )

    async def publish_metrics(self) -> None:
        """Write this worker's totals for /metrics (gateway/metrics.py); never raises."""
        metrics = self.metrics
        if metrics is None:
            return
        data = metrics.snapshot(self.revision, self.last_sync.timestamp() if self.last_sync else None)
        try:
            await asyncio.get_running_loop().run_in_executor(None, metrics.publish, data)
        except OSError as exc:
            log.warning("cannot write this worker's metrics: %s", exc)

    def heartbeat(self) -> None:
        if self.store is not None:
            process_table.heartbeat(self.store, self.state())

    async def flush(self) -> None:
        if not self.counters or self.store is None:
            return
        counters, self.counters = self.counters, HitCounters()
        rules, paths = counters.batches()
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            await loop.run_in_executor(None, self.store.record_hits, rules, paths, counters.unmatched_overflow)
            if self.metrics is not None:
                self.metrics.flushed(time.monotonic() - started)
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
        cacheable = True
        if engine.matcher.windows and time.time() >= self.cache_until:  # a timed rule's answer changes now
            self.cache.clear()
            self.cache_bytes = 0
            upcoming = engine.matcher.next_change(datetime.now(UTC))
            self.cache_until = upcoming.timestamp() if upcoming is not None else float("inf")
        scheme = self.scheme
        if (fwd_host or fwd_proto) and self.proxies and self.proxies.trusts(client_ip):
            scheme = forwarded_scheme(fwd_proto) or scheme  # the proxy's scheme wins (`scheme` rules)
            if fwd_host and origin is None:
                forwarded = forwarded_origin(fwd_proto, fwd_host)
                if forwarded:
                    origin = forwarded
                    host = forwarded.partition("://")[2]  # the forwarded host[:port] that won
                    cacheable = False
        key = (method, raw_path, query, host if engine.matcher.has_host_rules else None, scheme)
        if cacheable:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        decision = engine.decide(Request(method, _text(raw_path), _text(query), host, origin, scheme))
        result = (self.render(decision.response), decision.rule_id)
        if decision.outcome is DecisionOutcome.REDIRECT:
            if cacheable:
                self._remember(key, result, decision.response)
        elif decision.path is not None and decision.path != READY_PROBE_PATH:
            self.counters.miss(decision.path, time.time())
        return result

    def _remember(self, key: tuple[Any, ...], result: tuple[Any, str | None], response: Response) -> None:
        """Cache a redirect's answer, within CACHE_ENTRY_MAX_BYTES and CACHE_BYTES."""
        size = (CACHE_ENTRY_OVERHEAD + len(key[0]) + len(key[1]) + len(key[2]) + len(key[3] or "")
                + len(response.body) + sum(len(k) + len(v) for k, v in response.headers))
        if size > CACHE_ENTRY_MAX_BYTES:
            return
        cache = self.cache
        if not cache:  # emptied since the last entry (a table change clears it)
            self.cache_bytes = 0
        elif self.cache_bytes + size > CACHE_BYTES:
            cache.clear()
            self.cache_bytes = 0
        cache[key] = result
        self.cache_bytes += size

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
    """ASGI entry point: lifespan loads the table; http requests get the engine's answer.

    A WebSocket request (a server that upgrades) is answered as the same request over plain HTTP
    when the server offers ASGI's `websocket.http.response` extension, and refused (the server
    then answers 403) when not: the gateway has no WebSocket endpoints. `serve` runs uvicorn
    without WebSocket support and granian with `websockets=False`, so there such a request
    arrives as an ordinary http request.
    """

    def __init__(self, config: GatewayConfig | None = None):
        self.gateway = Gateway(config or GatewayConfig.from_env())
        self.access_log = self.gateway.config.access_log
        self.metrics = self.gateway.metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, send, "http.")
        elif kind == "websocket":
            if (await receive())["type"] != "websocket.connect":
                return
            if "websocket.http.response" in scope.get("extensions", ()):
                await self._http(scope, send, "websocket.http.")
            else:
                await send({"type": "websocket.close"})
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, send: Any, prefix: str) -> None:
        """Answer the request; `prefix` names the response messages (http. or websocket.http.)."""
        metrics = self.metrics
        started = time.monotonic() if self.access_log or metrics is not None else 0.0
        gateway = self.gateway
        method = scope.get("method", "GET")  # a websocket scope has none: it is a GET
        host = fwd_proto = fwd_host = None
        if gateway.wants_headers:
            for name, value in scope["headers"]:
                if name == b"host":
                    host = value.decode("latin-1")
                elif name == b"x-forwarded-host":
                    fwd_host = _one_more_line(fwd_host, value)
                elif name == b"x-forwarded-proto":
                    fwd_proto = _one_more_line(fwd_proto, value)
        client = scope.get("client")
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        (status, headers, body), rule_id = gateway.answer(
            method, raw_path, scope["query_string"], host, fwd_proto, fwd_host,
            client[0] if client else None,
        )
        if rule_id is not None:
            gateway.counters.hit(rule_id, time.time())
        await send({"type": prefix + "response.start", "status": status, "headers": headers})
        await send({"type": prefix + "response.body", "body": b"" if method == "HEAD" else body})
        if metrics is not None:
            metrics.answered(status, rule_id is not None, raw_path, started)
        if self.access_log:
            incoming_id = None
            for name, value in scope["headers"]:
                if name == b"x-request-id":
                    incoming_id = value
            access.log_request(method, raw_path, status, rule_id, started, incoming_id, scope["query_string"])

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
    config = GatewayConfig.from_env()
    configure_logging(config.log_format, config.log_level)
    return GatewayApp(config)


__all__ = ["Gateway", "GatewayApp", "RuleSet", "create_app"]
