#!/usr/bin/env python3
"""WebSocket message round trips through a proxy, back to back.

Usage: ws_rate.py HOST PORT PATH CLIENTS SECONDS

Opens CLIENTS WebSocket connections to ws://HOST:PORT/PATH (the echo origin,
directly or through a proxy); each does one echo to check the path. Then
every connection sends a 32-byte binary message, waits for its echo, and
sends the next one, for SECONDS seconds. One such send + echo is one round
trip: one frame each way through the proxy.

Protocol with run.sh (stdout, one line each):
    READY <n_ok> <n_failed>            every connection tried
    (waits for SIGUSR1, so the caller can read the proxy's CPU counters first)
    DONE <round_trips> <seconds> <errors>
    (then holds the connections until SIGTERM/SIGINT, its parent exits, or MAX_RUN)
SECONDS = 0 is a check: print READY and exit, status 0 if no connection failed.

This is a Python (asyncio) client, and the echo origin is one too; both share
one core in run.sh, so the round-trip rate is usually limited by them, not by
the proxy. The proxy's CPU per round trip is still comparable.

Needs the `websockets` package (>= 13, asyncio API): `pip install websockets`.
"""

import asyncio
import inspect
import os
import resource
import signal
import sys

from websockets.asyncio.client import connect

MAX_RUN = 900.0       # seconds; the client exits after this even if nobody stops it
SETUP_TIMEOUT = 30.0  # seconds allowed for one connection's handshake + first echo
PAYLOAD = b"rampart-bench-ws-rate-0123456789"[:32]

CONNECT_KWARGS = dict(
    compression=None,      # no permessage-deflate: the proxies only pass frames through
    ping_interval=None,    # no keep-alive pings mixed into the count
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


async def open_one(uri, conns):
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
        ws.transport.abort()
        return f"echo: {exc!r}"
    conns.append(ws)
    return None


async def worker(ws, deadline, loop, stats):
    n = 0
    try:
        while loop.time() < deadline:
            await ws.send(PAYLOAD)
            echo = await ws.recv()
            if echo != PAYLOAD:
                raise ValueError(f"echo mismatch: {echo!r}")
            n += 1
    except Exception as exc:  # noqa: BLE001
        stats["errors"] += 1
        stats["reasons"].add(repr(exc))
    stats["round_trips"] += n


async def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    clients, seconds = int(sys.argv[4]), float(sys.argv[5])
    uri = f"ws://{host}:{port}{path}"
    raise_nofile(clients)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    start = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, start.set)
    parent = os.getppid()

    async def watch_parent():
        deadline = loop.time() + MAX_RUN
        while os.getppid() == parent and loop.time() < deadline:
            await asyncio.sleep(0.5)
        stop.set()

    asyncio.ensure_future(watch_parent())

    conns = []
    results = await asyncio.gather(*(open_one(uri, conns) for _ in range(clients)))
    errors = [r for r in results if r is not None]
    for reason in sorted(set(errors))[:5]:
        print(f"ws_rate: failure: {reason}", file=sys.stderr)
    print(f"READY {len(conns)} {len(errors)}", flush=True)
    if seconds <= 0:
        for ws in conns:
            await ws.close()
        sys.exit(1 if errors or not conns else 0)

    # Wait for the go (SIGUSR1); give up if told to stop first.
    waiter = asyncio.ensure_future(start.wait())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if not start.is_set():
        return

    stats = {"round_trips": 0, "errors": 0, "reasons": set()}
    t0 = loop.time()
    deadline = t0 + seconds
    await asyncio.gather(*(worker(ws, deadline, loop, stats) for ws in conns))
    elapsed = loop.time() - t0
    for reason in sorted(stats["reasons"])[:5]:
        print(f"ws_rate: error: {reason}", file=sys.stderr)
    print(f"DONE {stats['round_trips']} {elapsed:.3f} {stats['errors']}", flush=True)

    await stop.wait()
    for ws in conns:
        ws.transport.close()


if __name__ == "__main__":
    asyncio.run(main())
