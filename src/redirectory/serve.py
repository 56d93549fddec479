"""Run the gateway (uvicorn or granian, N workers) and the admin listener side by side.

The gateway listens on --host/--port; the admin listener (health now, the admin API later) runs
in a thread of the serving process on --admin-host/--admin-port, never on the redirect port.
`/healthz` says `"ready": true` once a gateway worker has loaded the table and answered, and lists
every gateway process sharing the store (`admin/health.py`); `"serve"` identifies this one.
"""

from __future__ import annotations

import copy
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import httpx

from redirectory.gateway.config import ENV_VAR, READY_PROBE_PATH, GatewayConfig, configure_logging
from redirectory.gateway.tls import MINIMUM_VERSION as MINIMUM_TLS

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


def _start_admin(config: GatewayConfig, status: dict[str, Any], sock: socket.socket) -> tuple[Any, threading.Thread]:
    import uvicorn

    from redirectory.admin.app import create_admin_app

    app = create_admin_app(config.database, status)
    settings = uvicorn.Config(
        app,
        host=config.admin_host,
        port=config.admin_port,
        log_level="warning",
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


def _watch_ready(config: GatewayConfig, status: dict[str, Any], stop: threading.Event) -> None:
    url = _url(config.host if config.host not in ("0.0.0.0", "::") else "127.0.0.1", config.port)
    while not stop.is_set():
        try:
            httpx.get(url + READY_PROBE_PATH, timeout=2.0)
        except httpx.HTTPError:
            stop.wait(0.2)
            continue
        status["ready"] = True
        log.info("gateway ready: redirects on %s, admin on %s", _url(config.host, config.port),
                 admin_url(config))
        return


def run(config: GatewayConfig, listeners: Listeners | None = None) -> None:
    """Serve until interrupted (SIGINT/SIGTERM), on `listeners` (bound here when not given)."""
    configure_logging()
    if listeners is None:
        listeners = bind_listeners(config)
    sock = listeners.redirect
    serve_id = f"{socket.gethostname()}:{os.getpid()}"
    config = replace(config, extra={**config.extra, "serve_id": serve_id})
    os.environ[ENV_VAR] = config.to_env()
    status: dict[str, Any] = {"ready": False, "workers": config.workers, "serve": serve_id,
                              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    workers: list[Any] = []
    if sock is not None and config.workers > 1:
        # Start the worker processes before this process has threads of its own.
        workers = _spawn_http1_workers(config, sock)
    admin, admin_thread = _start_admin(config, status, listeners.admin)
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_ready, args=(config, status, stop), daemon=True)
    watcher.start()
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown: end with exit status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    try:
        if config.server == "granian":
            _run_granian(config)
        elif config.server == "uvicorn":
            _run_uvicorn(config)
        elif sock is not None:
            _run_http1(config, sock, workers)
    finally:
        stop.set()
        admin.should_exit = True
        admin_thread.join(timeout=5)


def _exit_cleanly(signum: int, _frame: object) -> None:
    raise SystemExit(0)


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


def _uvicorn_log_config() -> dict[str, Any]:
    from uvicorn.config import LOGGING_CONFIG

    settings = copy.deepcopy(LOGGING_CONFIG)
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
        log_config=_uvicorn_log_config(),
        lifespan="on",
        access_log=False,  # the gateway writes its own (gateway/access.py)
        log_level="info",
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )


def _http1_worker_main(config_json: str, sock: socket.socket) -> None:
    from redirectory.gateway.http1 import run_worker

    configure_logging()
    os.environ[ENV_VAR] = config_json
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops workers with SIGTERM
    run_worker(GatewayConfig.from_env(), sock)


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


def _run_http1(config: GatewayConfig, sock: socket.socket, workers: list[Any]) -> None:
    """One worker: serve here. N workers: supervise them (restart any that dies) until SIGTERM."""
    from redirectory.gateway.http1 import run_worker

    if not workers:
        run_worker(config, sock)
        return
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    while not stop.is_set():
        for i, proc in enumerate(workers):
            if not proc.is_alive() and not stop.is_set():
                log.error("worker %s exited with %s; starting a new one", proc.pid, proc.exitcode)
                workers[i] = _spawn_http1_workers(replace(config, workers=1), sock)[0]
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
        websockets=False,
    ).serve()
