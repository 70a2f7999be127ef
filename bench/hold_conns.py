#!/usr/bin/env python3
"""Open N idle HTTP/1.1 keep-alive connections to a proxy and hold them.

Usage: hold_conns.py HOST PORT N [PATH]

Every connection sends one `GET PATH HTTP/1.1` request and reads the whole
response (Content-Length framed), so the proxy has fully set the connection
up (accepted it, parsed a request, answered it) before it goes idle. Then the
connection stays open, idle, until this process gets SIGTERM/SIGINT, its
parent process exits, or MAX_HOLD seconds have passed.

Progress and the result go to stdout, one line each:
    READY <n_ok> <n_failed>
is printed once every connection has been tried; run.sh waits for it.
On SIGUSR1 it prints `OPEN <n>`: how many of them the server still keeps open.
Only the standard library is used.
"""

import asyncio
import os
import resource
import signal
import sys

CONNECT_CONCURRENCY = 200  # connections being set up at once (stay below listen backlogs)
MAX_HOLD = 600.0          # seconds; the holder exits after this even if nobody stops it
SETUP_TIMEOUT = 20.0       # seconds allowed for one connection's connect + request + response


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need + 64
    if hard != resource.RLIM_INFINITY and want > hard:
        want = hard
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need + 16:
        print(f"hold_conns: RLIMIT_NOFILE is {soft}, too low for {need} connections", file=sys.stderr)
        sys.exit(2)


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ")
    if len(status) < 2 or not status[0].startswith("HTTP/1."):
        raise ValueError(f"bad status line {lines[0]!r}")
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding":
            raise ValueError("chunked response; use a Content-Length path")
        elif name == "connection" and value.strip().lower() == "close":
            raise ValueError("server closes the connection")
    if length is None:
        raise ValueError("no Content-Length")
    await reader.readexactly(length)
    return int(status[1])


async def open_one(host, port, path, sem, conns):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), SETUP_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - report any failure as a count
            return f"connect: {exc!r}"
        try:
            req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: hold_conns\r\n\r\n"
            writer.write(req.encode())
            await writer.drain()
            status = await asyncio.wait_for(read_response(reader), SETUP_TIMEOUT)
            if status != 200:
                raise ValueError(f"status {status}")
        except Exception as exc:  # noqa: BLE001
            writer.close()
            return f"request: {exc!r}"
        conns.append((reader, writer))
        return None


async def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    path = sys.argv[4] if len(sys.argv) > 4 else "/small"
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
    results = await asyncio.gather(*(open_one(host, port, path, sem, conns) for _ in range(n)))
    errors = [r for r in results if r is not None]
    if errors:
        # show a few distinct reasons
        for reason in sorted(set(errors))[:5]:
            print(f"hold_conns: failure: {reason}", file=sys.stderr)
    print(f"READY {len(conns)} {len(errors)}", flush=True)

    # Hold. SIGUSR1 prints "OPEN <n>": how many held connections the server has
    # not closed (a proxy that dropped idle connections would look cheaper).
    def report_open():
        still = sum(1 for reader, _ in conns if not reader.at_eof())
        print(f"OPEN {still}", flush=True)

    loop.add_signal_handler(signal.SIGUSR1, report_open)
    await stop.wait()
    for _, writer in conns:
        writer.close()


if __name__ == "__main__":
    asyncio.run(main())
