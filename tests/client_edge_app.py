"""The edge-case server for the redirect client's tests: every awkward redirect a real API can send.

Run: python tests/client_edge_app.py --port P1 --port P2 [--https-port P3 --cert C --key K]
(one process serves the same app on every port: two http origins and one https origin).

Routes (any method unless noted):
  /echo/{path}            200 JSON: method, path, query, headers, body (text)
  /r/{status}?to=URL      `status` with Location URL; optional cc= (Cache-Control), expires=,
                          body= (response body), cookie= (Set-Cookie), no_location= (no Location)
  /loop/a, /loop/b        307 to each other
  /chain/{n}              308 to /chain/{n-1}; /chain/0 echoes
  /perm/{key}             while state.moved: `state.status` (308) to /target/{key} with state.cc;
                          else 200 {"at": "original"}
  /target/{key}           state.target_status (200 echo, or 410/404)
  /control/{key}          POST JSON: update the state of `key`
  /hits/{key}             GET: how many requests reached /perm/{key} and /target/{key}
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

STATE: dict[str, dict[str, Any]] = {}
HITS: Counter[str] = Counter()
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _state(key: str) -> dict[str, Any]:
    return STATE.setdefault(key, {"moved": True, "status": 308, "cc": "max-age=60", "target_status": 200})


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({
        "method": request.method,
        "path": request.url.path,
        "query": request.url.query,
        "port": request.url.port,
        "scheme": request.url.scheme,
        "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw},
        "body": body.decode("utf-8", "replace"),
    })


async def redirect(request: Request) -> Response:
    await request.body()
    status = int(request.path_params["status"])
    q = request.query_params
    headers = {} if "no_location" in q else {"Location": q.get("to", "/echo/")}
    if "cc" in q:
        headers["Cache-Control"] = q["cc"]
    if "expires" in q:
        headers["Expires"] = q["expires"]
    if "cookie" in q:
        headers["Set-Cookie"] = q["cookie"]
    return Response(q.get("body", ""), status_code=status, headers=headers,
                    media_type="text/plain" if "body" in q else None)


async def loop(request: Request) -> Response:
    other = "b" if request.path_params["which"] == "a" else "a"
    return Response(status_code=307, headers={"Location": f"/loop/{other}"})


async def chain(request: Request) -> Response:
    n = int(request.path_params["n"])
    if n <= 0:
        return await echo(request)
    return Response(status_code=308, headers={"Location": f"/chain/{n - 1}", "Cache-Control": "no-store"})


async def perm(request: Request) -> Response:
    key = request.path_params["key"]
    HITS[f"perm:{key}"] += 1
    await request.body()
    state = _state(key)
    if not state["moved"]:
        return JSONResponse({"at": "original", "method": request.method})
    headers = {"Location": f"/target/{key}"}
    if state["cc"]:
        headers["Cache-Control"] = state["cc"]
    return Response(status_code=state["status"], headers=headers)


async def target(request: Request) -> Response:
    key = request.path_params["key"]
    HITS[f"target:{key}"] += 1
    status = _state(key)["target_status"]
    if status != 200:
        await request.body()
        return JSONResponse({"gone": key}, status_code=status)
    return await echo(request)


async def control(request: Request) -> Response:
    state = _state(request.path_params["key"])
    state.update(await request.json())
    return JSONResponse(state)


async def hits(request: Request) -> Response:
    key = request.path_params["key"]
    return JSONResponse({"perm": HITS[f"perm:{key}"], "target": HITS[f"target:{key}"]})


app = Starlette(routes=[
    Route("/echo/{path:path}", echo, methods=METHODS),
    Route("/r/{status:int}", redirect, methods=METHODS),
    Route("/loop/{which}", loop, methods=METHODS),
    Route("/chain/{n:int}", chain, methods=METHODS),
    Route("/perm/{key}", perm, methods=METHODS),
    Route("/target/{key}", target, methods=METHODS),
    Route("/control/{key}", control, methods=["POST"]),
    Route("/hits/{key}", hits, methods=["GET"]),
])


async def serve(ports: list[int], https_port: int | None, cert: str | None, key: str | None) -> None:
    configs = [uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
               for port in ports]
    if https_port is not None:
        configs.append(uvicorn.Config(app, host="127.0.0.1", port=https_port, log_level="warning", lifespan="off",
                                      ssl_certfile=cert, ssl_keyfile=key))
    await asyncio.gather(*(uvicorn.Server(config).serve() for config in configs))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--https-port", type=int)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.https_port, args.cert, args.key))
