"""Run the gateway (uvicorn or granian, N workers) and the admin listener side by side.

The gateway listens on --host/--port; the admin listener (health now, the admin API later) runs
in a thread of the serving process on --admin-host/--admin-port, never on the redirect port.
`/healthz` says `"ready": true` once a gateway worker has loaded the table and answered.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from typing import Any

import httpx

from redirectory.gateway.config import ENV_VAR, READY_PROBE_PATH, GatewayConfig

log = logging.getLogger("redirectory.serve")

APP_FACTORY = "redirectory.gateway.app:create_app"
SERVERS = ("uvicorn", "granian")


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


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _start_admin(config: GatewayConfig, status: dict[str, Any]) -> tuple[Any, threading.Thread]:
    import uvicorn

    from redirectory.admin.app import create_admin_app

    app = create_admin_app(config.database, status)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.admin_host,
            port=config.admin_port,
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, name="redirectory-admin", daemon=True)
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
                 _url(config.admin_host, config.admin_port))
        return


def run(config: GatewayConfig) -> None:
    """Serve until interrupted (SIGINT/SIGTERM)."""
    if config.server not in SERVERS:
        raise ServeError(f"--server must be one of: {', '.join(SERVERS)}")
    if (config.host, config.port) == (config.admin_host, config.admin_port):
        raise ServeError("the admin listener must not share the redirect port: change --admin-port")
    check_port_free(config.host, config.port, "redirects")
    check_port_free(config.admin_host, config.admin_port, "the admin listener")
    os.environ[ENV_VAR] = config.to_env()
    status: dict[str, Any] = {"ready": False, "workers": config.workers,
                              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    admin, admin_thread = _start_admin(config, status)
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_ready, args=(config, status, stop), daemon=True)
    watcher.start()
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown: end with exit status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    try:
        if config.server == "granian":
            _run_granian(config)
        else:
            _run_uvicorn(config)
    finally:
        stop.set()
        admin.should_exit = True
        admin_thread.join(timeout=5)


def _exit_cleanly(signum: int, _frame: object) -> None:
    raise SystemExit(0)


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
        lifespan="on",
        access_log=config.access_log,
        log_level="info",
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )


def _run_granian(config: GatewayConfig) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        APP_FACTORY,
        factory=True,
        address=config.host,
        port=config.port,
        interface=Interfaces.ASGI,
        workers=config.workers,
        log_access=config.access_log,
        websockets=False,
    ).serve()
