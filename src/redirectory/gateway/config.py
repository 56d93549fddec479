"""Gateway settings, passed from `redirectory serve` to every worker process (as JSON)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from redirectory import logs

ENV_VAR = "REDIRECTORY_GATEWAY_CONFIG"


def configure_logging(log_format: str = "text", level: str = "info") -> None:
    """The process's log lines on stderr in `log_format` (`redirectory.logs`), in the serving
    process and in every worker, however the worker was started (forked, spawned, by uvicorn or
    granian): every worker calls it with its GatewayConfig's `log_format` and `log_level`."""
    logs.configure(log_format, level)


DEFAULT_DATABASE_URL = "sqlite:///var/redirectory.db"
#: Connections one gateway worker holds at most (`serve --max-connections`); one beyond is closed at once.
DEFAULT_MAX_CONNECTIONS = 1024
#: Path the serving process requests to learn that a worker answers (never counted as unmatched).
READY_PROBE_PATH = "/.well-known/redirectory/ready"


@dataclass(frozen=True)
class GatewayConfig:
    database: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    admin_host: str = "127.0.0.1"
    admin_port: int = 8001
    admin_tls_cert: str | None = None
    admin_tls_key: str | None = None
    workers: int = 1
    server: str = "httptools"
    public_url: str | None = None
    forwarded_allow_ips: tuple[str, ...] = ()
    default_permanent_max_age: int = 3600
    poll_interval: float = 0.25  # seconds between change-log polls (SQLite; PostgreSQL without LISTEN)
    safety_poll_interval: float = 5.0  # PostgreSQL with LISTEN up: poll anyway this often
    flush_interval: float = 1.0  # seconds between hit-count flushes
    access_log: bool = False
    access_log_query: bool = False  # the access log shows query strings (`serve --access-log-query`)
    log_format: str = "text"  # text or json (`redirectory.logs`)
    log_level: str = "info"
    metrics: bool = True  # GET /metrics on the admin listener (`serve --no-metrics`: off)
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # per worker (the default server, `--server httptools`)
    extra: dict[str, str] = field(default_factory=dict)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> GatewayConfig:
        raw = os.environ.get(ENV_VAR)
        if not raw:
            return cls(database=os.environ.get("REDIRECTORY_DATABASE_URL", DEFAULT_DATABASE_URL))
        data = json.loads(raw)
        data["forwarded_allow_ips"] = tuple(data.get("forwarded_allow_ips") or ())
        return cls(**data)
