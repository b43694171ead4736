"""One upstream connection: an ``ffmpeg -c copy`` child that turns a camera stream into fMP4 on a pipe.

One process per camera stream isolates faults (a camera that crashes its demuxer takes down only its own ffmpeg) and
keeps FFmpeg's network loop out of the recorder's GIL; see docs/recording.md for the measurements behind this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from kuzet.services.recording.ffmpeg import STALLED, classify_failure
from kuzet.services.recording.mp4 import BoxSplitter, Mp4Error

log = logging.getLogger("kuzet.recording.ingest")
READ_SIZE = 256 * 1024
STARTUP_GRACE = 10.0  # connecting + probing + waiting for the first keyframe


@dataclass
class IngestResult:
    reason: str
    message: str
    got_media: bool
    returncode: int | None


class Ingest:
    def __init__(self, command: list[str], on_init: Callable[[bytes], None], on_fragment: Callable[[bytes], None],
                 stall_seconds: float = 10.0) -> None:
        self.command = command
        self.on_init = on_init
        self.on_fragment = on_fragment
        self.stall_seconds = stall_seconds
        self.process: asyncio.subprocess.Process | None = None
        self._stalled = False
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    async def run(self) -> IngestResult:
        self.process = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )
        stderr_task = asyncio.create_task(self._read_stderr())
        splitter = BoxSplitter()
        got_media = False
        sent_init = False
        started = last_data = time.monotonic()
        watchdog = asyncio.create_task(self._watchdog(lambda: last_data, started))
        error: str | None = None
        try:
            assert self.process.stdout is not None
            while True:
                chunk = await self.process.stdout.read(READ_SIZE)
                if not chunk:
                    break
                last_data = time.monotonic()
                try:
                    fragments = splitter.feed(chunk)
                except Mp4Error as exc:
                    error = f"unreadable output from ffmpeg: {exc}"
                    break
                if not sent_init and splitter.init is not None:
                    self.on_init(splitter.init)
                    sent_init = True
                for fragment in fragments:
                    got_media = True
                    self.on_fragment(fragment)
        finally:
            watchdog.cancel()
            if not self._stalled and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.process.wait(), 2)  # let an ending ffmpeg exit by itself
            await self._terminate()
            stderr = await stderr_task
        returncode = self.process.returncode
        if self._stalled:
            return IngestResult(STALLED, f"no data for {self.stall_seconds:g} s", got_media, returncode)
        reason, message = classify_failure(error or stderr, returncode, got_media)
        return IngestResult(reason, message, got_media, returncode)

    async def _read_stderr(self) -> str:
        assert self.process is not None and self.process.stderr is not None
        tail = b""
        while True:
            line = await self.process.stderr.readline()
            if not line:
                break
            tail = (tail + line)[-4096:]
        return tail.decode("utf-8", "replace")

    async def _watchdog(self, last: Callable[[], float], started: float) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.stall_seconds / 4))
            now = time.monotonic()
            if now - started < STARTUP_GRACE + self.stall_seconds and last() == started:
                continue  # still connecting and probing the stream: ffmpeg's own timeouts cover this part
            if now - last() > self.stall_seconds:
                self._stalled = True
                await self._terminate()
                return

    async def stop(self) -> None:
        self._stopping = True
        await self._terminate()

    async def _terminate(self) -> None:
        proc = self.process
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 3)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
