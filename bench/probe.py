#!/usr/bin/env python3
"""Latency prober: a few keep-alive connections, each sending one GET at a fixed pace, every
answer written down with its wall-clock time, so latency can be lined up with other events
(a `rules apply` running) second by second. Standard library only.

    python3 bench/probe.py --port 8000 --paths paths.txt --out probe.tsv --duration 60 \
        [--connections 4] [--interval 0.005]

Writes one line per request to --out: `wall_time_sent<TAB>latency_ms<TAB>status` (status 0 =
socket error or timeout; the connection is then reopened). Runs until --duration seconds have
passed or SIGTERM/SIGINT. A request is sent only after the answer to the one before it on the
same connection, so a stalled server shows up as one long latency, not as a queue of them.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path

TIMEOUT = 10.0


async def one_connection(port: int, paths: list[str], offset: int, interval: float,
                         deadline: float, stop: asyncio.Event, out: list[str]) -> None:
    reader = writer = None
    i = offset
    while not stop.is_set() and time.monotonic() < deadline:
        path = paths[i % len(paths)]
        i += 1
        sent_wall = time.time()
        t0 = time.perf_counter()
        status = 0
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
            assert reader is not None
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await asyncio.wait_for(reader.readexactly(length), TIMEOUT)
            if b"connection: close" in head.lower():
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            status = 0
            if writer is not None:
                writer.close()
            reader = writer = None
        latency = (time.perf_counter() - t0) * 1000
        out.append(f"{sent_wall:.6f}\t{latency:.3f}\t{status}\n")
        pause = interval - latency / 1000
        if pause > 0:
            try:
                await asyncio.wait_for(stop.wait(), pause)
            except TimeoutError:
                pass
    if writer is not None:
        writer.close()


async def main_async(a: argparse.Namespace) -> int:
    paths = [p.strip() for p in Path(a.paths).read_text().splitlines() if p.strip()]
    if not paths:
        print(f"probe.py: no paths in {a.paths}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    out: list[str] = []
    deadline = time.monotonic() + a.duration
    step = max(1, len(paths) // a.connections)
    await asyncio.gather(*(
        one_connection(a.port, paths, k * step, a.interval, deadline, stop, out)
        for k in range(a.connections)
    ))
    Path(a.out).write_text("".join(out))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--paths", required=True, help="file of request paths, one per line")
    ap.add_argument("--out", required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--interval", type=float, default=0.005, help="seconds between two requests of one connection")
    return asyncio.run(main_async(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
