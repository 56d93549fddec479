"""Run the gateway (uvicorn or granian, N workers) and the admin listener side by side.

The gateway listens on --host/--port; the admin listener (health now, the admin API later) runs
in a thread of the serving process on --admin-host/--admin-port, never on the redirect port.
`/healthz` says `"ready": true` once a gateway worker has loaded the table and answered, and lists
every gateway process sharing the store (`admin/health.py`); `"serve"` identifies this one.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx

from redirectory import logs
from redirectory.gateway.config import ENV_VAR, READY_PROBE_PATH, GatewayConfig, configure_logging
from redirectory.gateway.tls import MINIMUM_VERSION as MINIMUM_TLS
from redirectory.metrics import DIR_KEY as METRICS_DIR_KEY
from redirectory.metrics import MetricsDir, ProcessGroupMetrics

log = logging.getLogger("redirectory.serve")

APP_FACTORY = "redirectory.gateway.app:create_app"
SERVERS = ("httptools", "uvicorn", "granian")


class ServeError(Exception):
    """A problem the user can fix (port in use, bad option); printed without a traceback."""


def check_port_free(host: str, port: int, what: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ServeError(f"cannot listen for {what} on {host}:{port}: {exc.strerror}") from None


@dataclass
class Listeners:
    """The sockets `run` serves on, bound before anything else happens at start.

    `serve` binds them before it applies `--rules`, so a start that cannot listen changes nothing.
    `redirect` is None for uvicorn and granian, which bind the redirect port themselves (the port
    was checked free).
    """

    admin: socket.socket
    redirect: socket.socket | None

    def close(self) -> None:
        self.admin.close()
        if self.redirect is not None:
            self.redirect.close()


def _bind(host: str, port: int, what: str) -> socket.socket:
    from redirectory.gateway.http1 import listen

    try:
        return listen(host, port, reuse_port=False)
    except OSError as exc:
        raise ServeError(f"cannot listen for {what} on {host}:{port}: {exc.strerror}") from None


def bind_listeners(config: GatewayConfig) -> Listeners:
    """Check the listener options and bind both listeners; raise ServeError (nothing bound) if not."""
    if config.server not in SERVERS:
        raise ServeError(f"--server must be one of: {', '.join(SERVERS)}")
    if (config.host, config.port) == (config.admin_host, config.admin_port):
        raise ServeError("the admin listener must not share the redirect port: change --admin-port")
    admin = _bind(config.admin_host, config.admin_port, "the admin listener")
    try:
        if config.server == "httptools":
            return Listeners(admin, _bind(config.host, config.port, "redirects"))
        check_port_free(config.host, config.port, "redirects")
    except ServeError:
        admin.close()
        raise
    return Listeners(admin, None)


def _url(host: str, port: int, scheme: str = "http") -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def admin_url(config: GatewayConfig) -> str:
    """The admin listener's base URL (https when it has a certificate)."""
    return _url(config.admin_host, config.admin_port, "https" if config.admin_tls_cert else "http")


def _start_admin(config: GatewayConfig, status: dict[str, Any], sock: socket.socket,
                 metrics: ProcessGroupMetrics | None = None) -> tuple[Any, threading.Thread]:
    import uvicorn

    from redirectory.admin.app import create_admin_app

    app = create_admin_app(config.database, status, metrics=metrics)
    settings = uvicorn.Config(
        app,
        host=config.admin_host,
        port=config.admin_port,
        log_level="error" if config.log_level == "error" else "warning",
        log_config=None,  # uvicorn's loggers write through ours (redirectory/logs.py), in --log-format
        access_log=False,
        server_header=False,
        date_header=False,  # the admin app sets Date itself, never before its Last-Modified (admin/dates.py)
        proxy_headers=False,
        lifespan="off",
        ssl_certfile=config.admin_tls_cert,
        ssl_keyfile=config.admin_tls_key,
    )
    settings.load()
    if settings.ssl is not None:
        settings.ssl.minimum_version = MINIMUM_TLS
    server = uvicorn.Server(settings)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="redirectory-admin", daemon=True)
    thread.start()
    return server, thread


def _watch_ready(config: GatewayConfig, status: dict[str, Any], stop: threading.Event,
                 rules: int | None = None) -> None:
    url = _url(config.host if config.host not in ("0.0.0.0", "::") else "127.0.0.1", config.port)
    while not stop.is_set():
        try:
            httpx.get(url + READY_PROBE_PATH, timeout=2.0)
        except httpx.HTTPError:
            stop.wait(0.2)
            continue
        status["ready"] = True
        _log_start(config, rules)
        return


def run(config: GatewayConfig, listeners: Listeners | None = None, rules: int | None = None) -> None:
    """Serve until interrupted (SIGINT/SIGTERM), on `listeners` (bound here when not given);
    `rules`: the table's size at start, for the start line."""
    configure_logging(config.log_format, config.log_level)
    started = time.monotonic()
    _stop_signal.clear()
    if listeners is None:
        listeners = bind_listeners(config)
    sock = listeners.redirect
    serve_id = f"{socket.gethostname()}:{os.getpid()}"
    config = replace(config, extra={**config.extra, "serve_id": serve_id})
    metrics = _metrics_group(config)
    if metrics is not None:  # every worker publishes its counts there (redirectory/metrics.py)
        config = replace(config, extra={**config.extra, METRICS_DIR_KEY: metrics.directory.path})
    os.environ[ENV_VAR] = config.to_env()
    status: dict[str, Any] = {"ready": False, "workers": config.workers, "serve": serve_id,
                              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    workers: list[Any] = []
    if sock is not None and config.workers > 1:
        # Start the worker processes before this process has threads of its own.
        workers = _spawn_http1_workers(config, sock)
    admin, admin_thread = _start_admin(config, status, listeners.admin, metrics)
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_ready, args=(config, status, stop, rules), daemon=True)
    watcher.start()
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown: end with exit status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    try:
        if config.server == "granian":
            with _noting_signals():
                _run_granian(config)
        elif config.server == "uvicorn":
            with _noting_signals():
                _run_uvicorn(config)
        elif sock is not None:
            _run_http1(config, sock, workers, metrics)
    finally:
        stop.set()
        admin.should_exit = True
        admin_thread.join(timeout=5)
        if metrics is not None:
            metrics.close()
        _log_stop(started)


def _metrics_group(config: GatewayConfig) -> ProcessGroupMetrics | None:
    """The process group's /metrics (a private directory, removed at exit), unless `--no-metrics`."""
    if not config.metrics:
        return None
    group = ProcessGroupMetrics(MetricsDir())
    atexit.register(group.close)  # also when start fails before `run` reaches its `finally`
    return group


def _exit_cleanly(signum: int, _frame: object) -> None:
    _stop_signal.append(signum)
    raise SystemExit(0)


#: The signal that stopped `run` (SIGTERM, SIGINT), when it is known, for the shutdown line.
_stop_signal: list[int] = []


@contextlib.contextmanager
def _noting_signals() -> Iterator[None]:
    """While uvicorn or granian runs here: every handler it installs with `signal.signal` also notes
    the signal it gets (for the shutdown line), then does what it did."""
    original = signal.signal

    def noting(sig: int, handler: Any) -> Any:
        if not callable(handler):
            return original(sig, handler)

        def noted(signum: int, frame: Any) -> Any:
            if signum in (signal.SIGTERM, signal.SIGINT):
                _stop_signal.append(signum)
            return handler(signum, frame)

        return original(sig, noted)

    signal.signal = noting  # type: ignore[assignment]
    try:
        yield
    finally:
        signal.signal = original


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("redirectory")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


_QUERY_SECRET = re.compile(r"([?&](?:password|sslpassword)=)[^&]*", re.IGNORECASE)


def _log_start(config: GatewayConfig, rules: int | None) -> None:
    """The start line, once a worker answers: version, database (no password), table size,
    listeners, server, workers."""
    from redirectory.store import redact_url

    redirects, admin = _url(config.host, config.port), admin_url(config)
    # the password, in the URL's user part or as a query parameter (libpq's password=, sslpassword=)
    database = _QUERY_SECRET.sub(r"\1***", redact_url(config.database))
    size = "" if rules is None else f", {rules} rule{'s' if rules != 1 else ''}"
    workers = f"{config.workers} worker{'s' if config.workers != 1 else ''}"
    log.info("redirectory %s ready: database %s%s; redirects on %s, admin on %s; server %s, %s",
             _version(), database, size, redirects, admin, config.server, workers,
             extra={"fields": {"event": "start", "version": _version(), "database": database, "rules": rules,
                               "listeners": {"redirects": redirects, "admin": admin},
                               "server": config.server, "workers": config.workers}})


def _log_stop(started: float) -> None:
    """The shutdown line: every worker has stopped and flushed its hit counts."""
    uptime = round(time.monotonic() - started, 3)
    cause = signal.Signals(_stop_signal[-1]).name if _stop_signal else None
    log.info("redirectory stopped%s after %.1f s", f" on {cause}" if cause else "", uptime,
             extra={"fields": {"event": "stop", "signal": cause, "uptime_s": uptime}})


class UpgradeWarnings(logging.Filter):
    """uvicorn warns on every request that asks to Upgrade (WebSocket, h2c): once per worker is enough,
    or any client could flood the log. Its advice to install a WebSocket library is dropped: the
    gateway has no WebSocket endpoints and runs uvicorn without WebSocket support on purpose."""

    def __init__(self) -> None:
        super().__init__()
        self.warned = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("No supported WebSocket library"):
            return False
        if message.startswith("Unsupported upgrade request"):
            warned, self.warned = self.warned, True
            return not warned
        return True


def _uvicorn_log_config(config: GatewayConfig) -> dict[str, Any]:
    """uvicorn's loggers (in this process and in the workers it spawns) through ours, in --log-format."""
    settings = logs.dict_config(config.log_format, config.log_level)
    settings.setdefault("filters", {})["upgrade_warnings"] = {"()": f"{__name__}.UpgradeWarnings"}
    settings["loggers"]["uvicorn.error"]["filters"] = ["upgrade_warnings"]
    return settings


def _run_uvicorn(config: GatewayConfig) -> None:
    import uvicorn

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=config.host,
        port=config.port,
        workers=config.workers if config.workers > 1 else None,
        http="httptools",
        loop="uvloop",
        ws="none",  # no WebSocket endpoints: a request that asks to Upgrade is answered as plain HTTP
        log_config=_uvicorn_log_config(config),
        lifespan="on",
        access_log=False,  # the gateway writes its own (gateway/access.py)
        log_level=config.log_level,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )


def _http1_worker_main(config_json: str, sock: socket.socket) -> None:
    from redirectory.gateway.http1 import run_worker

    os.environ[ENV_VAR] = config_json
    config = GatewayConfig.from_env()
    configure_logging(config.log_format, config.log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops workers with SIGTERM
    run_worker(config, sock)


def _spawn_http1_workers(config: GatewayConfig, sock: socket.socket) -> list[Any]:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    procs = []
    for i in range(config.workers):
        proc = context.Process(target=_http1_worker_main, args=(config.to_env(), sock),
                               name=f"redirectory-worker-{i + 1}")
        proc.start()
        procs.append(proc)
    return procs


def _run_http1(config: GatewayConfig, sock: socket.socket, workers: list[Any],
               metrics: ProcessGroupMetrics | None = None) -> None:
    """One worker: serve here. N workers: supervise them (restart any that dies) until SIGTERM."""
    from redirectory.gateway.http1 import run_worker

    if not workers:
        stopped_by = run_worker(config, sock)
        if stopped_by is not None:
            _stop_signal.append(stopped_by)
        return
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        _stop_signal.append(signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    while not stop.is_set():
        for i, proc in enumerate(workers):
            if not proc.is_alive() and not stop.is_set():
                log.error("worker %s exited with %s; starting a new one", proc.pid, proc.exitcode)
                workers[i] = _spawn_http1_workers(replace(config, workers=1), sock)[0]
                if metrics is not None:
                    metrics.serving.restarted()
        stop.wait(0.5)
    for proc in workers:
        if proc.is_alive():
            proc.terminate()
    for proc in workers:
        proc.join(timeout=15)
        if proc.is_alive():
            proc.kill()


def _run_granian(config: GatewayConfig) -> None:
    import multiprocessing

    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    # granian starts its workers with the default start method, fork on Linux; this process has
    # threads by now (the admin listener, the readiness watcher), and a worker forked while one of
    # them held a lock inside SQLite hung for ever on its first connect. Spawned workers start clean.
    multiprocessing.set_start_method("spawn", force=True)
    Granian(
        APP_FACTORY,
        factory=True,
        address=config.host,
        port=config.port,
        interface=Interfaces.ASGI,
        workers=config.workers,
        log_access=False,  # the gateway writes its own (gateway/access.py)
        log_level=LogLevels(config.log_level),
        log_dictconfig=logs.dict_config(config.log_format, config.log_level),  # granian's loggers through ours
        websockets=False,
    ).serve()
