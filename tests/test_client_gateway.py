"""The Client against our own gateway (`redirectory serve` with a rule file; targets on the edge app)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from redirectory.client import Client

if TYPE_CHECKING:
    from client_servers import Edge
    from gateway_process import ServeProcess

pytest_plugins = ["client_servers"]


def test_301_for_get_is_followed_and_remembered_with_the_rules_cache(gateway: ServeProcess, edge: Edge) -> None:
    with Client() as client:
        first = client.get(f"{gateway.base}/api/v1/users/42")
        assert first.json()["path"] == "/echo/api/v2/users/42"
        assert [h.status_code for h in first.history] == [301]
        assert "remembered until" in first.explain() and "max-age=86400" in first.explain()
        second = client.head(f"{gateway.base}/api/v1/users/42")  # HEAD reuses what GET learnt
        assert second.status_code == 200 and second.history == []
        assert "remembered, no request sent" in second.explain()


def test_308_keeps_post_and_its_body(gateway: ServeProcess) -> None:
    with Client() as client:
        for name in ("Ada", "Grace"):
            echo = client.post(f"{gateway.base}/api/v1/users/", json={"name": name}).json()
            assert (echo["method"], echo["path"]) == ("POST", "/echo/api/v2/users/")
            assert echo["body"] == f'{{"name":"{name}"}}'
        assert client.memory is not None
        assert [e.status for e in client.memory.entries()] == [308]


def test_303_after_the_controller_and_307_during_maintenance(gateway: ServeProcess) -> None:
    with Client() as client:
        result = client.post(f"{gateway.base}/api/v1/reports/9/generate", json={"period": "2026-Q4"})
        assert (result.json()["method"], result.json()["path"]) == ("GET", "/echo/api/v1/reports/9/result")
        moved = client.put(f"{gateway.base}/apiFoo/v1/something", content=b"state")
        assert (moved.json()["method"], moved.json()["body"]) == ("PUT", "state")
        assert client.memory is not None and len(client.memory) == 0  # 303 and 307 are never remembered


def test_a_chain_is_remembered_hop_by_hop(gateway: ServeProcess) -> None:
    with Client() as client:
        first = client.get(f"{gateway.base}/hop/one")
        assert [h.status_code for h in first.history] == [308, 308]
        explained = first.explain()
        assert "max-age=120" in explained and "max-age=3600" in explained  # the rule's cache, the gateway default
        second = client.get(f"{gateway.base}/hop/one")
        assert second.history == [] and second.trace.remembered_hops == 2
        assert second.json()["path"] == "/echo/hop/three"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/users/1"), ("DELETE", "/api/v1/users/1"), ("POST", "/api/v1/reports/1/generate"),
    ("PATCH", "/apiFoo/v1/x"), ("GET", "/hop/one"),
])
def test_the_gateway_passes_the_strict_client(gateway: ServeProcess, method: str, path: str) -> None:
    """redirect_302="error" is the guide's strict mode: our gateway never needs the lenient paths."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Client(redirect_302="error", redirect_301="preserve", memory=False) as strict:
            response = strict.request(method, f"{gateway.base}{path}", content=b"{}")
    assert response.status_code == 200 and response.history
