"""The log of `redirectory serve`: one format for every line of the process (`--log-format`).

Every line goes to stderr, whoever writes it: `serve` itself, the gateway workers, the admin
listener, uvicorn's and granian's own loggers (routed here by `dict_config`), and the access log
(`gateway/access.py`, which writes its lines itself, in the same format, for speed).

- `text` (the default): `LEVEL: message`, for people; journald and container runtimes add the time.
- `json`: one JSON object per line (`json.loads` reads each), always with `time` (UTC, ISO 8601,
  milliseconds), `level`, `logger`, `pid` and `message`; structured lines (the start line, the
  shutdown line, access lines) add an `event` and their fields. A traceback is one `exception`
  string, never extra lines.

`--log-level` (debug, info, warning, error) chooses which of these lines are written; access lines
are governed by `--access-log` alone.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import time
from enum import StrEnum
from typing import Any


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


FORMATS = tuple(f.value for f in LogFormat)
LEVELS = tuple(level.value for level in LogLevel)
#: Loggers of the servers redirectory runs: they write through the root handler (this format)...
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi", "_granian")
#: ...but for their access logs, always off: the gateway writes its own (gateway/access.py).
SERVER_ACCESS_LOGGERS = ("uvicorn.access", "granian.access")


def stamp(when: float) -> str:
    """`when` (a time.time() value) as UTC ISO 8601 with milliseconds: 2026-12-01T10:30:22.123Z."""
    second = int(when)
    return f"{_second_text(second)}.{int((when - second) * 1000):03d}Z"


_cached_second = -1
_cached_text = ""


def _second_text(second: int) -> str:
    global _cached_second, _cached_text
    if second != _cached_second:  # formatted once per second, not once per line
        _cached_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _cached_second = second
    return _cached_text


class TextFormatter(logging.Formatter):
    """`LEVEL: message` (and a traceback, when there is one, on the lines after it)."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s: %(message)s")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line. `extra={"fields": {...}}` adds fields to it."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process if record.process is not None else os.getpid(),
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str)


def check(log_format: str, level: str) -> None:
    """ValueError naming the option when either value is not one we know."""
    if log_format not in FORMATS:
        raise ValueError(f"--log-format must be one of: {', '.join(FORMATS)} (not {log_format!r})")
    if level not in LEVELS:
        raise ValueError(f"--log-level must be one of: {', '.join(LEVELS)} (not {level!r})")


def dict_config(log_format: str = "text", level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` for this process: one stderr handler on the root logger in
    `log_format`, and the servers' loggers (uvicorn, granian) writing through it. Picklable, so
    uvicorn and granian hand it to the worker processes they spawn."""
    check(log_format, level)
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"redirectory": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "redirectory",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            **{name: {"handlers": [], "propagate": True} for name in SERVER_LOGGERS},
            **{name: {"handlers": [], "propagate": False} for name in SERVER_ACCESS_LOGGERS},
            # the readiness probe's requests and each migration step are not news
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            "alembic": {"level": "WARNING"},
        },
    }


def configure(log_format: str = "text", level: str = "info") -> None:
    """Route every logger of this process through one stderr handler in `log_format` (Python's
    warnings too)."""
    logging.config.dictConfig(dict_config(log_format, level))
    logging.captureWarnings(True)


class LineWriter:
    """A file for `rich.Console(file=...)`: each line written becomes one log record of `logger`
    (so the messages `serve` prints while it starts are JSON lines under `--log-format json`).
    A line that starts with `error:` or `warning:` is logged at that level."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        if self.pending:
            line, self.pending = self.pending, ""
            self._emit(line)

    def isatty(self) -> bool:
        return False

    def _emit(self, line: str) -> None:
        if not line.strip():
            return
        lowered = line.lstrip().lower()
        if lowered.startswith("error:"):
            level = logging.ERROR
        elif lowered.startswith(("warning:", "waiting:")):
            level = logging.WARNING
        else:
            level = logging.INFO
        self.logger.log(level, line.rstrip())
