"""What a long-running service is: something ``kuzet serve`` starts and stops (``Service``), and the common kind that
does one pass now and then (``PeriodicService``). The bottom of the services layer: capabilities import it, it
imports nothing of theirs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

log = logging.getLogger("kuzet.runtime")


class Service(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class PeriodicService:
    """A service that runs ``run_once`` (in a worker thread) now and then after every ``wait()`` until stopped. A pass
    that fails is logged and the next one runs anyway.

    ``own_thread``: passes run on a thread of the service's own instead of the event loop's default executor. For
    passes that may wait on something remote for long (an object store that does not answer): they must not take
    the threads the rest of the node (the index writer, the lease keeper) queues on."""

    name = "periodic"
    own_thread = False

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._task: asyncio.Task | None = None
        self._thread: ThreadPoolExecutor | None = None

    def run_once(self) -> object:
        raise NotImplementedError

    async def wait(self) -> None:
        """Until the next pass (override to be woken early)."""
        await asyncio.sleep(self.interval)

    async def start(self) -> None:
        if self.own_thread and self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"kuzet-{self.name}")
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._thread is not None:
            self._thread.shutdown(wait=False)  # a pass still running finishes on its own
            self._thread = None

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.get_running_loop().run_in_executor(self._thread, self.run_once)
            except Exception:
                log.exception("%s pass failed", self.name)
            await self.wait()


def stop_child(proc: subprocess.Popen | None, timeout: float = 15, group: bool = False) -> int | None:
    """Stop a child process we started (an API worker set, a server under test): SIGTERM, SIGKILL if it is still there
    after ``timeout`` seconds; its return code. ``group``: signal its whole process group (a child started with
    ``start_new_session=True`` whose own children, ffmpeg say, must go too) — never for a child in our own group."""
    if proc is None:
        return None

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)

    if proc.poll() is None:
        send(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            proc.wait(10)
    if group:
        send(signal.SIGKILL)  # whatever it left in its group
    return proc.returncode
