"""The recording services ``kuzet serve`` runs: the recorder (with its stream hub) and the retention loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kuzet.installation import Installation
from kuzet.services.recording.recorder import Recorder
from kuzet.services.recording.retention import Retention

log = logging.getLogger("kuzet.recording")


class RecorderService:
    name = "recorder"

    def __init__(self, inst: Installation) -> None:
        self.inst = inst
        self.recorder = Recorder(inst.settings, inst.db, inst.keys)

    async def start(self) -> None:
        self.inst.extras["recorder"] = self.recorder
        self.inst.extras["hub"] = self.recorder.hub
        await self.recorder.start()

    async def stop(self) -> None:
        await self.recorder.stop()


class RetentionService:
    name = "retention"

    def __init__(self, inst: Installation, interval: float = 60.0) -> None:
        self.inst = inst
        self.interval = interval
        self.retention = Retention(inst.settings, inst.db)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        recorder: Recorder | None = self.inst.extras.get("recorder")
        while True:
            try:
                await asyncio.to_thread(self.retention.run)
            except Exception:
                log.exception("retention pass failed")
            if recorder is None:
                await asyncio.sleep(self.interval)
                continue
            recorder._retention_wanted.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(recorder._retention_wanted.wait(), self.interval)


def services(inst: Installation) -> list:
    return [RecorderService(inst), RetentionService(inst)]
