"""The redirect rule table inside an app: a rule file, or the store with live reload.

`RuleTable.answer(request)` returns the gateway's response for a request a rule matches (the
same `rules.engine.Engine` decides), and None for everything else so the app answers it. The
response is the gateway's except `Server`, which belongs to the app's server.

With a store, a daemon thread started on the first request (so forking servers start it in each
worker) polls `Store.revision()` every `poll_interval` seconds; when it moved, the table is read
again and a new engine is swapped in whole, so a request never sees half a change. The same
thread writes each rule's hits to the store every `flush_interval` seconds (and on `close()`),
as the gateway does, so the admin API's statistics include redirects answered inside apps.
Requests no rule matches are the app's, so they are not counted as unmatched paths.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from redirectory.forwarded import forwarded_host
from redirectory.rulefile import read_rule_file
from redirectory.rules import lifecycle
from redirectory.rules.engine import SERVER_HEADERS, DecisionOutcome, Engine, EngineOptions, Request, Response
from redirectory.rules.model import RuleSet
from redirectory.semantics import DEFAULT_PERMANENT_MAX_AGE
from redirectory.store.counters import HitCounters
from redirectory.toolkit.redirects import DEFAULT_OPTIONS, RedirectOptions, RequestInfo

if TYPE_CHECKING:
    from redirectory.store import Store

log = logging.getLogger("redirectory.toolkit.rules")


class RuleTableError(ValueError):
    """A rule file with errors, or neither/both of `rules` and `store`."""


class RuleTable:
    def __init__(
        self,
        rules: str | Path | RuleSet | None = None,
        *,
        store: str | None = None,
        poll_interval: float = 1.0,
        flush_interval: float = 5.0,
        options: RedirectOptions = DEFAULT_OPTIONS,
        default_permanent_max_age: int = DEFAULT_PERMANENT_MAX_AGE,
    ):
        if (rules is None) == (store is None):
            raise RuleTableError("pass either rules (a rule file or a RuleSet) or store (a database URL)")
        if poll_interval <= 0:
            raise RuleTableError(f"poll_interval must be > 0 seconds, got {poll_interval}")
        self.options = options
        self.engine_options = EngineOptions(default_permanent_max_age=default_permanent_max_age)
        self.poll_interval = poll_interval
        self.flush_interval = flush_interval
        self.counters = HitCounters()
        self._thread: threading.Thread | None = None
        self.store_url = store
        self.revision = 0
        self._started = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if store is not None:
            self._load_store()
        elif isinstance(rules, RuleSet):
            self.engine = Engine(rules, self.engine_options)
        else:
            assert rules is not None
            ruleset, problems = read_rule_file(rules)
            errors = [p for p in problems if p.is_error]
            if errors:
                listed = "\n".join(f"  {p.format()}" for p in errors[:20])
                raise RuleTableError(f"{rules}: {len(errors)} error(s) in the rule file:\n{listed}")
            self.engine = Engine(ruleset, self.engine_options)

    # -- store sync ------------------------------------------------------------------------
    def _load_store(self) -> None:
        from redirectory.store import Store

        assert self.store_url is not None
        store = Store.open(self.store_url)
        try:
            revision, ruleset = store.load()
        finally:
            store.close()
        self.engine = Engine(ruleset, self.engine_options)
        self.revision = revision

    def _poll(self) -> None:
        from redirectory.store import Store

        assert self.store_url is not None
        store = Store.open(self.store_url)
        flushed = time.monotonic()
        try:
            while not self._stop.wait(self.poll_interval):
                try:
                    if store.revision() > self.revision:
                        revision, ruleset = store.load()
                        self.engine, self.revision = Engine(ruleset, self.engine_options), revision
                        log.info("rule table reloaded at revision %d (%d rules)", revision, len(self.engine))
                except Exception as exc:  # noqa: BLE001 - keep serving the last table
                    log.warning("cannot read the store, serving revision %d: %s", self.revision, exc)
                if time.monotonic() - flushed >= self.flush_interval:
                    self._flush(store)
                    flushed = time.monotonic()
        finally:
            self._flush(store)
            store.close()

    def _flush(self, store: Store) -> None:
        with self._lock:
            counters, self.counters = self.counters, HitCounters()
        if not counters:
            return
        rules, paths = counters.batches()
        try:
            store.record_hits(rules, paths)
        except Exception as exc:  # noqa: BLE001 - the counts are kept for the next try
            log.warning("cannot record hits: %s", exc)
            with self._lock:
                for rule_id, n in counters.hits.items():
                    self.counters.hits[rule_id] = self.counters.hits.get(rule_id, 0) + n
                    self.counters.last.setdefault(rule_id, counters.last[rule_id])

    def start(self) -> None:
        """Start polling the store (done by the first `answer`); no-op for a rule file."""
        if self.store_url is None or self._started:
            return
        with self._lock:
            if not self._started:
                self._thread = threading.Thread(target=self._poll, name="redirectory-rules", daemon=True)
                self._thread.start()
                self._started = True

    def close(self) -> None:
        """Stop polling and write the last hits (waits for the polling thread)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- answering -------------------------------------------------------------------------
    def answer(self, request: RequestInfo) -> Response | None:
        """The gateway's response when a rule matches, else None."""
        return self.decide(request)[0]

    def decide(self, request: RequestInfo) -> tuple[Response | None, tuple[tuple[str, str], ...]]:
        """The gateway's response when a redirect rule matches (else None: the application answers),
        and the headers the application's response gets: the `Deprecation`, `Sunset` and `Link` of a
        rule that redirects nothing (`status: 404`) for this path (docs/toolkit.md)."""
        if not self._started and self.store_url is not None:
            self.start()
        engine = self.engine
        origin, host = self.options.origin(request), request.host
        if origin is not None and self.options.public_url is None:
            # as the gateway: the trusted proxy's host (the last element, when valid)
            host = forwarded_host(request.header("x-forwarded-host")) or host
        decision = engine.decide(Request(request.method, request.path, request.query, host, origin,
                                         self.options.scheme(request)))
        if decision.outcome is not DecisionOutcome.REDIRECT:
            rule = decision.rule
            if rule is None or not rule.has_lifecycle:
                return None, ()
            return None, lifecycle.headers(rule.deprecation, rule.sunset, rule.links)
        if self.store_url is not None and decision.rule_id is not None:
            with self._lock:
                self.counters.hit(decision.rule_id, time.time())
        response = decision.response
        headers = tuple(h for h in response.headers if h not in SERVER_HEADERS)
        return Response(response.status, headers, response.body), ()
