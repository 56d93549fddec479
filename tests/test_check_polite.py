"""The live prober is polite and safe: an identifying User-Agent, a rate limit, credentials never
carried to another origin, unsafe methods only to allowed hosts; and it probes HTTPS (a
redirect from https to http is RDR-SCHEME-DOWNGRADE)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator

import pytest

from check_servers import Server, self_signed, start_fixture
from redirectory.check.engine import run
from redirectory.check.live import USER_AGENT, LiveInputError, LiveOptions, Prober
from redirectory.check.profiles import Profile


@pytest.fixture(scope="module")
def fixture_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_fixture(tmp_path_factory.mktemp("check-polite"))
    try:
        yield server
    finally:
        server.stop()


def echoed(prober: Prober, url: str) -> dict[str, object]:
    ex = prober.check_url(url)
    last = list(ex.chain())[-1]
    assert last.response is not None and last.status == 200
    return json.loads(last.response.body or b"{}")


def test_user_agent_rate_and_timeouts(fixture_app: Server) -> None:
    with Prober(LiveOptions(rate=20, conditional=False, timeout=3)) as prober:
        started = time.monotonic()
        for _ in range(5):
            seen = echoed(prober, fixture_app.base + "/clean/echo")
        assert time.monotonic() - started >= 4 / 20  # at most 20 requests per second
    headers = seen["headers"]
    assert isinstance(headers, dict) and headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("redirectory-check/") and "conformance checker" in USER_AGENT


def test_credentials_stay_on_their_origin(fixture_app: Server) -> None:
    options = LiveOptions(headers=[("Authorization", "Bearer secret"), ("X-Trace", "1")], rate=0)
    with Prober(options) as prober:
        same = echoed(prober, fixture_app.base + "/clean/echo")
        assert same["headers"]["authorization"] == "Bearer secret"  # type: ignore[index]
        head = prober.check_url(fixture_app.base + "/v/cross-origin")  # 127.0.0.1 -> localhost
    follow = head.next
    assert follow is not None and follow.request.url.startswith("http://localhost:")
    assert not follow.request.has("authorization") and follow.request.header("x-trace") == "1"
    assert [f.id for f in run([head], Profile())] == ["RDR-CROSS-ORIGIN"]  # a warning, not a leak


def test_unsafe_methods_need_opt_in_and_an_allowed_host(fixture_app: Server) -> None:
    with pytest.raises(LiveInputError, match="--allow-unsafe"):
        Prober(LiveOptions(method="POST"))
    with Prober(LiveOptions(method="POST", allow_unsafe=True, allow_hosts=frozenset({"localhost"}), rate=0)) as p, \
            pytest.raises(LiveInputError, match="not in --allow-host"):
        p.check_url(fixture_app.base + "/clean/echo")
    # POST allowed to 127.0.0.1 only: the 307 target is asked with OPTIONS, never replayed elsewhere
    options = LiveOptions(method="POST", allow_unsafe=True, allow_hosts=frozenset({"127.0.0.1"}), rate=0)
    with Prober(options) as prober:
        head = prober.check_url(fixture_app.base + "/clean/temporary-echo")
    assert head.next is not None and head.next.request.method == "POST" and head.next.status == 200


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_to_http_is_a_downgrade(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("check-tls")
    server = start_fixture(tmp, tls=self_signed(tmp))
    try:
        with Prober(LiveOptions(rate=0, verify=False, timeout=3)) as prober:
            findings = run([prober.check_url(server.base + "/v/downgrade")], Profile())
            clean = run([prober.check_url(server.base + "/clean/moved")], Profile())
    finally:
        server.stop()
    assert "RDR-SCHEME-DOWNGRADE" in {f.id for f in findings}
    assert clean == []
