"""AsyncClient against the edge-case app and the gateway: the same loop, and many tasks sharing one memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from redirectory.client import (
    AsyncClient,
    BodyNotReplayable,
    Redirect302Refused,
    RedirectLoop,
    RedirectMemory,
    Response,
    UnsafeRedirect,
)

if TYPE_CHECKING:
    from client_servers import Edge

pytest_plugins = ["client_servers"]
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_async_follows_like_the_sync_client(edge: Edge) -> None:
    async with AsyncClient(verify=edge.ssl_context) as client:
        see_other = await client.post(f"{edge.base}/r/303?to=/echo/done", json={"a": 1})
        assert isinstance(see_other, Response) and see_other.json()["method"] == "GET"
        kept = await client.patch(f"{edge.base}/r/307?to=/echo/kept", content=b"patch body")
        assert (kept.json()["method"], kept.json()["body"]) == ("PATCH", "patch body")
        with pytest.raises(RedirectLoop):
            await client.get(f"{edge.base}/loop/b")
        with pytest.raises(UnsafeRedirect):
            await client.get(f"{edge.secure}/r/307?to={edge.base}/echo/")
        async with client.stream("POST", f"{edge.base}/r/303?to=/echo/s") as streamed:
            assert b'"GET"' in await streamed.aread()
    async with AsyncClient(redirect_302="error") as strict:
        with pytest.raises(Redirect302Refused):
            await strict.get(f"{edge.base}/r/302?to=/echo/")


async def test_async_generator_body_is_refused_or_buffered(edge: Edge, key: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"async "
        yield b"body"

    async with AsyncClient() as client:
        with pytest.raises(BodyNotReplayable):
            await client.put(f"{edge.base}/r/308?to=/target/{key}&cc=no-store", content=chunks())
    assert edge.hits(key)["target"] == 0
    async with AsyncClient(buffer_bodies=True) as buffering:
        echo = (await buffering.put(f"{edge.base}/r/308?to=/target/{key}&cc=no-store", content=chunks())).json()
    assert (echo["method"], echo["body"]) == ("PUT", "async body")


async def test_leaving_async_with_closes_an_owned_memory_file(edge: Edge, key: str, tmp_path: Path) -> None:
    async with AsyncClient(memory=tmp_path / "owned.sqlite") as client:
        await client.get(f"{edge.base}/perm/{key}")
    assert client.memory is not None and not client.memory.persistent
    assert len(RedirectMemory(path=tmp_path / "owned.sqlite")) == 1


async def test_many_tasks_share_one_persistent_memory(edge: Edge, key: str, tmp_path: Path) -> None:
    memory = RedirectMemory(16, path=tmp_path / "async.sqlite")
    limits = httpx.Limits(max_connections=20)
    async with AsyncClient(memory=memory, limits=limits) as client:
        async def one(n: int) -> tuple[str, str]:
            echo = (await client.post(f"{edge.base}/perm/{key}", content=str(n).encode())).json()
            return echo["method"], echo["body"]

        learning = await asyncio.gather(*(one(n) for n in range(30)))  # all may see the 308 and remember it
        remembered = await asyncio.gather(*(one(n) for n in range(30, 120)))
        assert learning + remembered == [("POST", str(n)) for n in range(120)]
        assert await client.forget(f"{edge.base}/perm/{key}") == 1
    hits = edge.hits(key)
    assert hits["target"] == 120 and hits["perm"] <= 30  # the second wave went straight to the target
    memory.close()
    assert RedirectMemory(path=tmp_path / "async.sqlite").lookup("POST", f"{edge.base}/perm/{key}") is None


async def test_async_client_through_the_gateway(gateway: object) -> None:
    base = getattr(gateway, "base")  # noqa: B009 - ServeProcess, typed in client_servers
    async with AsyncClient() as client:
        first = await client.get(f"{base}/api/v1/users/7")
        second = await client.get(f"{base}/api/v1/users/7")
    assert first.json()["path"] == second.json()["path"] == "/echo/api/v2/users/7"
    assert [h.status_code for h in first.history] == [301] and second.history == []
