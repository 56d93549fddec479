"""The Client against httpbin (Flask, served by gunicorn on loopback): a server we did not write."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import pytest

from redirectory.client import Client, Redirect302Refused, RedirectWarning, TooManyRedirects

if TYPE_CHECKING:
    from client_servers import Edge

pytest_plugins = ["client_servers"]


@pytest.mark.parametrize(("status", "method", "final"), [
    (301, "GET", "GET"), (301, "POST", "GET"), (302, "POST", "GET"), (302, "PUT", "PUT"), (303, "PUT", "GET"),
    (307, "POST", "POST"), (307, "DELETE", "DELETE"), (308, "PATCH", "PATCH"),
])
def test_redirect_to(httpbin_url: str, status: int, method: str, final: str) -> None:
    with warnings.catch_warnings(record=True) as caught, Client(memory=False) as client:
        warnings.simplefilter("always")
        response = client.request(method, f"{httpbin_url}/redirect-to",
                                  params={"url": "/anything", "status_code": status}, content=b"payload")
    body = response.json()
    assert body["method"] == final
    assert body["data"] == ("payload" if final == method else "")  # a GET keeps its (odd) body too
    warned = [str(w.message) for w in caught if issubclass(w.category, RedirectWarning)]
    assert bool(warned) == (status == 302 or (status == 301 and method != "GET"))


def test_httpbin_chains_are_302s_which_the_strict_client_refuses(httpbin_url: str) -> None:
    with Client() as client, pytest.warns(RedirectWarning):
        relative = client.get(f"{httpbin_url}/relative-redirect/3")
        absolute = client.get(f"{httpbin_url}/absolute-redirect/3")
    assert relative.url.path == absolute.url.path == "/get"
    assert len(relative.history) == len(absolute.history) == 3
    with Client() as client, pytest.warns(RedirectWarning), pytest.raises(TooManyRedirects):
        client.get(f"{httpbin_url}/redirect/11")
    with Client(redirect_302="error") as strict, pytest.raises(Redirect302Refused, match="302 Found"):
        strict.get(f"{httpbin_url}/redirect/1")


def test_cookies_and_credentials(httpbin_url: str, edge: Edge) -> None:
    with Client() as client, pytest.warns(RedirectWarning):
        assert client.get(f"{httpbin_url}/cookies/set", params={"flavour": "oat"}).json() == {
            "cookies": {"flavour": "oat"}}
        elsewhere = client.get(f"{httpbin_url}/redirect-to", params={"url": f"{edge.other}/echo/x"},
                               headers={"Authorization": "Bearer t"}).json()
    assert "authorization" not in elsewhere["headers"]
    # Cookies are not isolated by port (RFC 6265 §8.5): the jar's cookie for 127.0.0.1 goes to the other
    # port too, while a hand-set Cookie header would not (test_client_edge covers that).
    assert elsewhere["headers"]["cookie"] == "flavour=oat"


def test_a_308_without_cache_headers_is_remembered_for_the_default_time(httpbin_url: str) -> None:
    with Client() as client:
        url = f"{httpbin_url}/redirect-to?url=/anything/moved&status_code=308"
        client.get(url)
        second = client.get(url)
    assert second.history == [] and "default 3600 s" in second.explain()
