#!/usr/bin/env python3
"""WebSocket echo origin for the `ws` scenario of bench/run.sh.

Usage: ws_echo.py HOST PORT

Accepts WebSocket connections on any path and sends every message back
unchanged, on the same connection. No compression (permessage-deflate off),
no keep-alive pings (so held connections are really idle). Prints
`LISTENING` on stdout once it accepts connections; run.sh waits for it.
Stops on SIGTERM/SIGINT, when its parent process exits, or after MAX_RUN
seconds.

Needs the `websockets` package (>= 13, asyncio API): `pip install websockets`.
"""

import asyncio
import os
import resource
import signal
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

MAX_RUN = 3600.0  # seconds; the origin exits after this even if nobody stops it


def raise_nofile():
    # As many descriptors as allowed: one per connection (the proxies' upstream
    # connections, WS_CONNS of them in the memory test).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


async def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    host, port = sys.argv[1], int(sys.argv[2])
    raise_nofile()

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()

    async def watch_parent():
        deadline = loop.time() + MAX_RUN
        while os.getppid() == parent and loop.time() < deadline:
            await asyncio.sleep(0.5)
        stop.set()

    asyncio.ensure_future(watch_parent())

    async with serve(
        echo,
        host,
        port,
        compression=None,
        ping_interval=None,
        close_timeout=1,
        max_size=1 << 16,
        backlog=4096,
    ):
        print("LISTENING", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
