"""A small TCP proxy to put between services and the emulator, and cut at will (test code).

moto keeps its state in memory, so restarting it would wipe the world; the closest honest
outage is to make it unreachable. `cut()` closes the listening socket (new connections are
refused) and aborts every open connection (requests in flight fail); `restore()` listens on
the same port again. The emulator itself keeps running, with its queues and objects intact.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Proxy:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.host, self.port = host, port
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._generation = 0  # bumped by every cut: a connection accepted before it must not survive it

    # -- control, from the test's thread -----------------------------------------------------
    def start(self) -> str:
        self._thread.start()
        self._call(self._listen())
        return f"http://{self.host}:{self.port}"

    def cut(self) -> None:
        """Refuse new connections and abort the open ones."""
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def close(self) -> None:
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def up(self) -> bool:
        return self._server is not None

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    # -- inside the proxy's loop ----------------------------------------------------------------
    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)
            self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        self._generation += 1
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._open):
            w.transport.abort()
        self._open.clear()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        generation = self._generation
        self._open.add(client_w)
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        if generation != self._generation:  # cut while we were connecting upstream
            client_w.transport.abort()
            upstream_w.transport.abort()
            return
        self._open |= {client_w, upstream_w}
        await asyncio.gather(self._pipe(client_r, upstream_w), self._pipe(upstream_r, client_w))
        self._open -= {client_w, upstream_w}
        for w in (client_w, upstream_w):
            w.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not writer.transport.is_closing():
                try:
                    writer.write_eof()
                except (OSError, RuntimeError):
                    writer.transport.abort()


@contextmanager
def proxy_to(endpoint: str) -> Iterator[Proxy]:
    """A started proxy in front of `endpoint` (http://host:port); closed afterwards."""
    host, port = endpoint.removeprefix("http://").rsplit(":", 1)
    p = Proxy(host, int(port))
    p.start()
    try:
        yield p
    finally:
        p.close()
