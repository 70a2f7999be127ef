#!/usr/bin/env python3
"""Open N idle WebSocket connections through a proxy and hold them.

Usage: ws_hold.py HOST PORT N [PATH]

Every connection does the WebSocket handshake (GET PATH with Upgrade:
websocket, answered 101 by the echo origin through the proxy), sends one
32-byte binary message and reads its echo, so the proxy has fully set up
both the client connection and its upstream connection (the tunnel) before
the connection goes idle. Then the connection stays open and idle (no
pings), until this process gets SIGTERM/SIGINT, its parent process exits, or
MAX_HOLD seconds have passed.

Progress and the result go to stdout, one line each:
    READY <n_ok> <n_failed>
is printed once every connection has been tried; run.sh waits for it.
On SIGUSR1 it prints `OPEN <n>`: how many of them are still open (not closed
by the proxy).

Needs the `websockets` package (>= 13, asyncio API): `pip install websockets`.
"""

import asyncio
import inspect
import os
import resource
import signal
import sys

from websockets.asyncio.client import connect
from websockets.protocol import State

CONNECT_CONCURRENCY = 200  # connections being set up at once (stay below listen backlogs)
MAX_HOLD = 900.0           # seconds; the holder exits after this even if nobody stops it
SETUP_TIMEOUT = 30.0       # seconds allowed for one connection's handshake + echo
PAYLOAD = b"rampart-bench-ws-hold-0123456789"[:32]

CONNECT_KWARGS = dict(
    compression=None,      # no permessage-deflate: the proxies only pass frames through
    ping_interval=None,    # idle means idle: no keep-alive pings
    open_timeout=SETUP_TIMEOUT,
    close_timeout=1,
    max_size=1 << 16,
)
if "proxy" in inspect.signature(connect.__init__).parameters:
    CONNECT_KWARGS["proxy"] = None  # websockets >= 15 would otherwise honour *_proxy variables


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need + 64
    if hard != resource.RLIM_INFINITY and want > hard:
        want = hard
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need + 16:
        print(f"ws_hold: RLIMIT_NOFILE is {soft}, too low for {need} connections", file=sys.stderr)
        sys.exit(2)


def drop(ws):
    transport = getattr(ws, "transport", None)
    if transport is not None:
        transport.abort()


async def open_one(uri, sem, conns):
    async with sem:
        try:
            ws = await connect(uri, **CONNECT_KWARGS)
        except Exception as exc:  # noqa: BLE001 - report any failure as a count
            return f"connect: {exc!r}"
        try:
            await ws.send(PAYLOAD)
            echo = await asyncio.wait_for(ws.recv(), SETUP_TIMEOUT)
            if echo != PAYLOAD:
                raise ValueError(f"echo mismatch: {echo!r}")
        except Exception as exc:  # noqa: BLE001
            drop(ws)
            return f"echo: {exc!r}"
        conns.append(ws)
        return None


async def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    path = sys.argv[4] if len(sys.argv) > 4 else "/ws/hold"
    uri = f"ws://{host}:{port}{path}"
    raise_nofile(n)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Safety nets so a holder never outlives the benchmark: stop when the parent
    # (run.sh) is gone, and after MAX_HOLD seconds in any case.
    parent = os.getppid()

    async def watch_parent():
        deadline = loop.time() + MAX_HOLD
        while os.getppid() == parent and loop.time() < deadline:
            await asyncio.sleep(0.5)
        stop.set()

    asyncio.ensure_future(watch_parent())

    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
    conns = []
    results = await asyncio.gather(*(open_one(uri, sem, conns) for _ in range(n)))
    errors = [r for r in results if r is not None]
    if errors:
        for reason in sorted(set(errors))[:5]:
            print(f"ws_hold: failure: {reason}", file=sys.stderr)
    print(f"READY {len(conns)} {len(errors)}", flush=True)

    def report_open():
        still = sum(1 for ws in conns if ws.state is State.OPEN)
        print(f"OPEN {still}", flush=True)

    loop.add_signal_handler(signal.SIGUSR1, report_open)
    await stop.wait()
    # Plain TCP close (no closing handshake: 5,000 of those would take a while).
    for ws in conns:
        transport = getattr(ws, "transport", None)
        if transport is not None:
            transport.close()


if __name__ == "__main__":
    asyncio.run(main())
