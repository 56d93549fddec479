"""X-Forwarded-Host/Proto from a trusted proxy: which list element wins, and which hosts are valid.

The rule (docs/gateway.md): a field's lines are one list, in order; the LAST non-empty element
wins (the nearest proxy wrote it); a last host that is not a valid `host[:port]`, or a last proto
other than http/https, is ignored as a whole. The property tests check the validator itself; the
end-to-end tests send the headers to the real `redirectory serve` on every `--server`.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_process import ServeProcess, start_serve
from redirectory.forwarded import forwarded_host, forwarded_origin, forwarded_scheme, last_element, valid_host_port
from redirectory.serve import SERVERS

LABEL = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", fullmatch=True)
NAME = st.lists(LABEL, min_size=1, max_size=4).map(".".join).filter(
    lambda name: len(name) <= 253 and not name.rpartition(".")[2].isdigit())
IPV4 = st.ip_addresses(v=4).map(str)
IPV6 = st.ip_addresses(v=6).map(lambda address: f"[{address}]")
HOST = st.one_of(NAME, IPV4, IPV6)
PORT = st.integers(1, 65535)
HOST_PORT = st.tuples(HOST, st.none() | PORT).map(lambda hp: hp[0] if hp[1] is None else f"{hp[0]}:{hp[1]}")
#: What may appear in a valid host[:port] at all.
ALLOWED = set(string.ascii_letters + string.digits + ".-:[]")


@given(HOST, st.none() | PORT, st.sampled_from(["http", "https", "HTTPS"]))
def test_valid_host_port_is_accepted_and_becomes_the_origin(host: str, port: int | None, proto: str) -> None:
    value = host if port is None else f"{host}:{port}"
    assert valid_host_port(value)
    origin = forwarded_origin(proto, value)
    assert origin == f"{proto.lower()}://{value.lower()}"
    parts = urlsplit(origin)
    assert (parts.netloc, parts.port, parts.path) == (value.lower(), port, "")


@given(st.text(max_size=40) | st.text(alphabet="abc019.-:[]", max_size=20))
def test_whatever_is_accepted_is_a_plain_host_and_port(value: str) -> None:
    if not valid_host_port(value):
        return
    assert set(value) <= ALLOWED
    parts = urlsplit(f"http://{value}/")
    assert parts.netloc == value and parts.hostname
    assert parts.port is None or 1 <= parts.port <= 65535
    name = parts.hostname or ""
    if not value.startswith("["):
        assert all(label and label[0] != "-" and label[-1] != "-" for label in name.split("."))


@given(HOST, st.one_of(st.just(0), st.integers(65536, 10**7)))
def test_a_port_outside_1_to_65535_is_refused(host: str, port: int) -> None:
    assert not valid_host_port(f"{host}:{port}")


@given(HOST, st.sampled_from(["-", ".", ":", "_"]))
def test_a_host_starting_with_a_punctuation_mark_is_refused(host: str, mark: str) -> None:
    assert not valid_host_port(mark + host)


@given(HOST, st.data())
def test_an_empty_label_or_a_stray_character_is_refused(host: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(host)))
    bad = data.draw(st.sampled_from(["..", " ", "/", "@", "?", "#", "\\", "%", "_", ",", ";", "é", "\t", "\n"]))
    assert not valid_host_port(host[:at] + bad + host[at:])


@pytest.mark.parametrize("value", [
    "evil.com:99999", "-evil.com", ".evil.com", "evil..com", "evil-.com", "evil.com.", "evil.com:",
    "evil.com:080", "999.1.1.1", "1.2.3", "a.b.123", "[fe80::1%eth0]", "[::1", "::1", "[::1]x", "",
    "x" * 64 + ".com", ".".join(["a" * 63] * 4) + ".com",
])
def test_invalid_hosts_named_in_the_issue_and_their_kin(value: str) -> None:
    assert not valid_host_port(value)
    assert forwarded_origin("https", value) is None


@given(st.lists(st.one_of(HOST_PORT, st.just(""), st.just(" ")), min_size=1, max_size=5))
def test_the_last_non_empty_element_wins(elements: list[str]) -> None:
    value = ", ".join(elements)
    present = [e.strip() for e in elements if e.strip()]
    assert last_element(value) == (present[-1] if present else None)
    assert forwarded_host(value) == (present[-1].lower() if present else None)


def test_an_invalid_last_element_is_never_replaced_by_an_earlier_one() -> None:
    assert forwarded_host("api.example.com, evil..com") is None
    assert forwarded_origin("https", "api.example.com, -evil.com") is None
    assert forwarded_origin("http, ftp", "api.example.com") is None
    assert forwarded_origin("ftp, https", "api.example.com") == "https://api.example.com"
    assert forwarded_origin(None, "api.example.com") == "http://api.example.com"


# -- end to end: the real serve process on every server ----------------------------------------

RULES = """\
rules:
  - from: /a
    to: /b
    status: 308
  - from: //only.example.com/h
    to: /h2
    status: 308
"""


@pytest.fixture(scope="module", params=SERVERS)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp(f"forwarded-{request.param}")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    process = start_serve(tmp, "--rules", str(rules), "--server", request.param,
                          "--forwarded-allow-ips", "127.0.0.1")
    yield process
    process.stop()


def _get(served: ServeProcess, path: str, headers: list[tuple[str, str]]) -> httpx.Response:
    return httpx.get(served.base + path, headers=headers, timeout=10)


@pytest.mark.parametrize(("headers", "location"), [
    # one line, a list: the last element (the nearest proxy's) wins
    ([("x-forwarded-proto", "https"), ("x-forwarded-host", "evil.com, api.example.com")],
     "https://api.example.com/b"),
    # several lines are one list, in order
    ([("x-forwarded-proto", "https"), ("x-forwarded-host", "evil.com"), ("x-forwarded-host", "api.example.com")],
     "https://api.example.com/b"),
    ([("x-forwarded-proto", "https"), ("x-forwarded-host", "evil.com, other.com"),
      ("x-forwarded-host", "API.Example.com:8443")], "https://api.example.com:8443/b"),
    # the proto list the same way
    ([("x-forwarded-proto", "https, http"), ("x-forwarded-host", "api.example.com")], "http://api.example.com/b"),
    ([("x-forwarded-proto", "http"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com")],
     "https://api.example.com/b"),
    # an unusable last element is ignored as a whole: Location stays a path
    ([("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com, evil.com:99999")], "/b"),
    ([("x-forwarded-proto", "https, ftp"), ("x-forwarded-host", "api.example.com")], "/b"),
    ([("x-forwarded-host", "-evil.com")], "/b"),
    ([("x-forwarded-host", ".evil.com")], "/b"),
    ([("x-forwarded-host", "evil..com")], "/b"),
    ([("x-forwarded-host", "evil.com:99999")], "/b"),
])
def test_forwarded_lists_and_lines_on_every_server(served: ServeProcess, headers: list[tuple[str, str]],
                                                   location: str) -> None:
    response = _get(served, "/a", headers)
    assert (response.status_code, response.headers["location"]) == (308, location)


def test_the_winning_forwarded_host_is_the_one_host_rules_match(served: ServeProcess) -> None:
    fwd = [("x-forwarded-proto", "https")]
    matched = _get(served, "/h", [*fwd, ("x-forwarded-host", "evil.com, only.example.com")])
    assert (matched.status_code, matched.headers["location"]) == (308, "https://only.example.com/h2")
    assert _get(served, "/h", [*fwd, ("x-forwarded-host", "only.example.com, evil.com")]).status_code == 404
    # an invalid forwarded host leaves Host in charge, for matching as for Location
    fallback = _get(served, "/h", [*fwd, ("host", "only.example.com"), ("x-forwarded-host", "evil..com")])
    assert (fallback.status_code, fallback.headers["location"]) == (308, "/h2")



@pytest.mark.parametrize(("value", "scheme"), [
    ("https", "https"), ("HTTP", "http"), ("http, https", "https"), ("https,", "https"), (" https ", "https"),
    ("ftp", None), ("https\r\nx: 1", None), ("", None), (None, None), ("https, ws", None), ("h ttps", None),
])
def test_the_forwarded_scheme_is_the_last_element_when_it_is_http_or_https(value: str | None,
                                                                         scheme: str | None) -> None:
    # a scheme condition (`scheme: http`) never reads anything else: no other value can be smuggled in
    assert forwarded_scheme(value) == scheme
