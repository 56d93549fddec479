"""The gateway's LISTEN thread (PostgreSQL): wakes `Gateway.sync()` as soon as a revision commits.

A daemon thread holds one autocommit connection LISTENing on the store's channel and calls `wake()`
(thread-safe) on every notification. When the connection fails it reconnects with exponential
backoff (0.2 s doubling to 5 s) and calls `wake()` after each successful reconnection, so the
gateway catches up from its last revision on whatever it missed while deaf. Every `CHECK_EVERY`
seconds without a notification it makes a round trip to notice a dead connection, and wakes the
sync after it (a notification arriving during that round trip is not seen).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from redirectory.store.notify import Listener

log = logging.getLogger("redirectory.gateway")

CHECK_EVERY = 5.0
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 5.0


class ListenThread:
    """Runs until `stop()`; `connected` says whether the LISTEN connection is up."""

    def __init__(self, engine: Engine, wake: Callable[[], None]):
        self._engine = engine
        self._wake = wake
        self._stop = threading.Event()
        self.connected = False
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="redirectory-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        backoff = BACKOFF_FIRST
        while not self._stop.is_set():
            try:
                with Listener(self._engine) as listener:
                    self.connected, self.last_error = True, None
                    backoff = BACKOFF_FIRST
                    self._wake()  # catch up on anything committed while not listening
                    while not self._stop.is_set():
                        heard = False
                        for _revision in listener.wait(CHECK_EVERY):
                            heard = True
                            self._wake()
                        if not heard:
                            listener.check()
                            self._wake()  # anything that arrived during the check was not seen
            except Exception as exc:  # noqa: BLE001 - reconnect whatever went wrong
                if self.connected or self.last_error is None:
                    log.warning("LISTEN connection lost (%s); polling until it is back", type(exc).__name__)
                self.connected, self.last_error = False, type(exc).__name__
            self._stop.wait(backoff)
            backoff = min(BACKOFF_MAX, backoff * 2)
