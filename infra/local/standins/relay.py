"""A TCP relay on 127.0.0.1 that makes loopback behave like a WAN link.

Every byte is held back ``delay`` seconds in each direction, so a request and its
answer cost one round trip of ``2 * delay``; a new connection costs one round trip
more before its first byte moves (the TCP handshake a real link would charge).  An
optional ``rate`` (bytes per second, per connection and direction) caps bandwidth, for
tests that need a transfer to take a while.  What goes through is never changed.

Benchmarks run it as its own process, so it does not share an interpreter with what
it measures:

    python infra/local/standins/relay.py --delay 0.02 127.0.0.1:5000 127.0.0.1:5001

prints one ``LISTEN_PORT TARGET`` line per target once every listener is up.  Tests
use :class:`LatencyRelay` on a thread of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
from dataclasses import dataclass, field

#: Bytes held per direction of a connection (the link's buffer): 128 reads of 64 KiB.
_QUEUED_READS = 128
_READ_SIZE = 64 * 1024


@dataclass
class RelayStats:
    """Bytes relayed, per direction, summed over connections (for tests' assertions)."""

    connections: int = 0
    upstream_bytes: int = 0  # towards the target (requests, uploads)
    downstream_bytes: int = 0  # back to the client (answers, downloads)


@dataclass
class Route:
    target_host: str
    target_port: int
    delay: float
    rate: float | None
    stats: RelayStats = field(default_factory=RelayStats)
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    route: Route,
    upstream: bool,
) -> None:
    """Copy one direction, each read released ``delay`` after it arrived."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=_QUEUED_READS)

    async def receive() -> None:
        while True:
            try:
                data = await reader.read(_READ_SIZE)
            except (ConnectionError, OSError):
                data = b""
            await queue.put((loop.time() + route.delay, data))
            if not data:
                return

    async def send() -> None:
        free_at = loop.time()
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError, RuntimeError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            if route.rate:
                free_at = max(free_at, loop.time()) + len(data) / route.rate
                wait = free_at - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
            if upstream:
                route.stats.upstream_bytes += len(data)
            else:
                route.stats.downstream_bytes += len(data)

    receiver = asyncio.create_task(receive())
    try:
        await send()
    finally:
        receiver.cancel()


async def _serve(
    route: Route, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
) -> None:
    try:
        await _relay(route, client_reader, client_writer)
    except asyncio.CancelledError:
        client_writer.close()  # the relay is stopping; end quietly


async def _relay(
    route: Route, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
) -> None:
    route.stats.connections += 1
    try:
        # The handshake's round trip: nothing the client sent moves until it is over.
        await asyncio.sleep(2 * route.delay)
        target_reader, target_writer = await asyncio.open_connection(
            route.target_host, route.target_port
        )
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(
            _pump(client_reader, target_writer, route, upstream=True),
            _pump(target_reader, client_writer, route, upstream=False),
        )
    except (ConnectionError, OSError):
        pass
    finally:
        for writer in (client_writer, target_writer):
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def _start(route: Route) -> None:
    route.server = await asyncio.start_server(
        lambda r, w: _serve(route, r, w), "127.0.0.1", 0, reuse_address=True
    )


def _split_target(target: str) -> tuple[str, int]:
    host, _, port = target.removeprefix("http://").rstrip("/").rpartition(":")
    if host not in {"127.0.0.1", "localhost", "::1", "[::1]"}:
        raise ValueError(f"relay targets must be on loopback, got {target!r}")
    return host.strip("[]"), int(port)


class LatencyRelay:
    """Relays to loopback targets on a background thread; ``url_for(target)`` is the
    address to use instead of the target's."""

    def __init__(self, *targets: str, delay: float = 0.02, rate: float | None = None) -> None:
        if delay < 0 or (rate is not None and rate <= 0):
            raise ValueError("delay must be >= 0 and rate > 0")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.routes: dict[str, Route] = {}
        for target in targets:
            host, port = _split_target(target)
            self.routes[target] = Route(host, port, delay, rate)
        self._thread.start()
        for route in self.routes.values():
            asyncio.run_coroutine_threadsafe(_start(route), self._loop).result(timeout=10)

    def url_for(self, target: str) -> str:
        return f"http://127.0.0.1:{self.routes[target].port}"

    def stats(self, target: str) -> RelayStats:
        return self.routes[target].stats

    def stop(self) -> None:
        async def close() -> None:
            for route in self.routes.values():
                if route.server is not None:
                    route.server.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self) -> LatencyRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _main(targets: list[str], delay: float, rate: float | None) -> None:
    routes = []
    for target in targets:
        host, port = _split_target(target)
        route = Route(host, port, delay, rate)
        await _start(route)
        routes.append(route)
        print(f"{route.port} {target}", flush=True)
    await asyncio.Event().wait()  # until killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="+", help="HOST:PORT on loopback")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds each way")
    parser.add_argument("--rate", type=float, default=None, help="bytes/s cap per direction")
    args = parser.parse_args()
    try:
        asyncio.run(_main(args.targets, args.delay, args.rate))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
