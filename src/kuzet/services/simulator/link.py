"""A network link to a camera that can be cut, for fault tests and benchmarks.

``LinkThread(host, port)`` listens on a port of its own and forwards every TCP connection to the camera (the
simulator, or a real camera). ``cut()`` is what a dropped switch port, a PoE restart or a lost uplink does to the
recorder: every open connection is reset and new ones are refused until ``restore()``. The camera itself keeps
running on its own schedule, as a real one does, so the recorder sees exactly one outage per cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from dataclasses import dataclass

CHUNK = 64 * 1024


@dataclass
class LinkStats:
    connections: int = 0  # connections forwarded
    refused: int = 0  # connections refused or reset at once because the link was cut
    cuts: int = 0
    bytes_down: int = 0  # camera → client


class Link:
    """The link itself, on the caller's event loop."""

    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = port
        self.up = False
        self.stats = LinkStats()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self.up = True

    async def cut(self) -> None:
        """Reset every open connection and refuse new ones."""
        if not self.up:
            return
        self.up = False
        self.stats.cuts += 1
        if self._server is not None:
            self._server.close()  # the port stops listening: connecting is refused
            self._server = None
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()

    async def restore(self) -> None:
        if self.up:
            return
        await self.start()

    async def close(self) -> None:
        await self.cut()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if not self.up:
            self.stats.refused += 1
            _reset(client_writer)
            return
        try:
            camera_reader, camera_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self.stats.refused += 1
            _reset(client_writer)
            return
        self.stats.connections += 1
        self._writers.update((client_writer, camera_writer))
        up = asyncio.create_task(self._pipe(client_reader, camera_writer, count=False))
        down = asyncio.create_task(self._pipe(camera_reader, client_writer, count=True))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
            for writer in (client_writer, camera_writer):
                self._writers.discard(writer)
                writer.close()
            for task in (up, down):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    return
                if count:
                    self.stats.bytes_down += len(data)
                writer.write(data)
                await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, as a peer that vanished does once packets reach it again."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class LinkThread:
    """A ``Link`` running on an event loop of its own in a background thread, driven from synchronous code:
    ``link = LinkThread("127.0.0.1", 8554)``; ``link.url("rtsp", "/cam1")``; ``link.cut()``; ``link.restore()``."""

    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1", port: int = 0) -> None:
        self.link = Link(target_host, target_port, host, port)
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self.link.start())
            except BaseException as exc:  # noqa: BLE001 - reported to the constructor
                failed.append(exc)
                started.set()
                return
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True, name="kuzet-link")
        self.thread.start()
        if not started.wait(10) or failed:
            raise RuntimeError(f"the link did not start: {failed[0] if failed else 'timeout'}")

    @property
    def port(self) -> int:
        return self.link.port

    @property
    def stats(self) -> LinkStats:
        return self.link.stats

    def url(self, scheme: str, path: str) -> str:
        return f"{scheme}://{self.link.host}:{self.link.port}{path}"

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self.link.cut(), self.loop).result(10)

    def restore(self) -> None:
        asyncio.run_coroutine_threadsafe(self.link.restore(), self.loop).result(10)

    def close(self) -> None:
        if not self.loop.is_running():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.link.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()
