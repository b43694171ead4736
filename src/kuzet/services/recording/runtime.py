"""The recording services ``kuzet serve`` runs: the recorder (with its stream hub) and the retention loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kuzet.installation import Installation
from kuzet.runtime import PeriodicService
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


class RetentionService(PeriodicService):
    """A retention pass every minute, and at once when the recorder reports a full disk."""

    name = "retention"

    def __init__(self, inst: Installation, interval: float = 60.0) -> None:
        super().__init__(interval)
        self.inst = inst
        self.retention = Retention(inst.settings, inst.db)

    def run_once(self) -> object:
        return self.retention.run()

    async def wait(self) -> None:
        recorder: Recorder | None = self.inst.extras.get("recorder")
        if recorder is None:
            await asyncio.sleep(self.interval)
            return
        recorder._retention_wanted.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder._retention_wanted.wait(), self.interval)


def services(inst: Installation) -> list:
    return [RecorderService(inst), RetentionService(inst)]
