"""The recording services ``kuzet serve`` runs: the recorder (with its stream hub), the retention loop and, with
``[storage] backend = "s3"``, the uploader."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kuzet.installation import Installation
from kuzet.services.cluster.leases import default_node
from kuzet.services.lifecycle import PeriodicService
from kuzet.services.recording.recorder import Recorder
from kuzet.services.recording.retention import Retention
from kuzet.services.recording.uploader import BACKOFF_MAX, Uploader

log = logging.getLogger("kuzet.recording")


class RecorderService:
    name = "recorder"

    def __init__(self, inst: Installation) -> None:
        self.inst = inst
        self.keeper = None
        # Several recorder nodes share the cameras through leases (a node that does not record takes none)
        if inst.settings.cluster.enabled and inst.settings.recorder.enabled:
            from kuzet.services.cluster.keeper import LeaseKeeper

            self.keeper = LeaseKeeper(inst.db, inst.settings.cluster, backlog=self._backlog)
        self.recorder = Recorder(inst.settings, inst.db, inst.keys, assignment=self.keeper)

    def _backlog(self) -> tuple[int, int]:
        uploader = self.inst.running.uploader
        return (uploader.backlog.files, uploader.backlog.bytes) if uploader is not None else (0, 0)

    async def start(self) -> None:
        self.inst.running.recorder = self.recorder
        if self.keeper is not None:
            self.inst.running.lease_keeper = self.keeper
            await self.keeper.start()
        await self.recorder.start()

    async def stop(self) -> None:
        if self.keeper is not None:
            await self.keeper.stop()
        await self.recorder.stop()
        if self.keeper is not None:
            await self.keeper.leave()


class RetentionService(PeriodicService):
    """A retention pass every minute, and at once when the recorder reports a full disk."""

    name = "retention"
    own_thread = True  # deleting objects may wait on the object store

    def __init__(self, inst: Installation, interval: float = 60.0) -> None:
        super().__init__(interval)
        self.inst = inst
        self.retention = Retention(inst.settings, inst.db)

    def run_once(self) -> object:
        return self.retention.run()

    async def wait(self) -> None:
        recorder: Recorder | None = self.inst.running.recorder
        if recorder is None:
            await asyncio.sleep(self.interval)
            return
        recorder._retention_wanted.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder._retention_wanted.wait(), self.interval)


class UploaderService(PeriodicService):
    """Uploads closed files every ``[storage.s3] interval`` seconds; while the store is away, tries again with
    back-off (up to ``BACKOFF_MAX`` seconds) so it catches up soon after the store returns."""

    name = "uploader"
    own_thread = True  # a pass waits on the object store: never on the threads the lease keeper and index need

    def __init__(self, inst: Installation, interval: float | None = None) -> None:
        super().__init__(interval or inst.settings.storage.s3.interval)
        self.inst = inst
        cluster = inst.settings.cluster  # with several recorder nodes, the backlog is this node's (as its leases)
        self.uploader = Uploader(inst.settings, inst.db, node=(cluster.node or default_node())
                                 if cluster.enabled and inst.settings.recorder.enabled else None)
        self._delay = self.interval

    async def start(self) -> None:
        self.inst.running.uploader = self.uploader
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        self.uploader.close(wait=False)  # a pass still running in its thread finishes on its own

    def run_once(self) -> object:
        return self.uploader.run_once()

    async def wait(self) -> None:
        failing = self.uploader.failing_since is not None
        self._delay = min(self._delay * 2, BACKOFF_MAX) if failing else self.interval
        await asyncio.sleep(self._delay)


def uploader_service(inst: Installation) -> UploaderService | None:
    """The uploader, with ``[storage] backend = "s3"`` only."""
    return UploaderService(inst) if inst.settings.storage.backend == "s3" else None
