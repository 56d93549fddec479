"""Prometheus metrics of the toolkit (prometheus-client).

`redirectory_guard_findings_total{finding, mode}` counts what the 302 guard saw: `finding` is
`302`, `3xx-without-location`, `303-with-body`, `304-with-body` or `304-content-headers`; `mode`
is the guard's (`refuse`, `rewrite`, `report`). Expose it as you expose your app's other
metrics, e.g. `app.mount("/metrics", prometheus_client.make_asgi_app())`.
"""

from __future__ import annotations

import threading

from prometheus_client import REGISTRY, CollectorRegistry, Counter

_COUNTERS: dict[int, Counter] = {}
_LOCK = threading.Lock()


def guard_findings(registry: CollectorRegistry | None = None) -> Counter:
    """The guard's counter in `registry` (the default registry unless given), made once."""
    target = registry if registry is not None else REGISTRY
    with _LOCK:
        counter = _COUNTERS.get(id(target))
        if counter is None:
            counter = Counter("redirectory_guard_findings", "Responses the 302 guard refused, rewrote, fixed or "
                              "reported, by finding", ["finding", "mode"], registry=target)
            _COUNTERS[id(target)] = counter
        return counter
