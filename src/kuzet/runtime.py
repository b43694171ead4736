"""What ``kuzet serve`` runs beside the API: the event bus and the long-running services of each capability.

A capability that runs something in the background has a module ``kuzet.services.<capability>.runtime`` with a
function ``services(inst) -> list[Service]``. One service failing to start is logged and the others still run (the
server never dies from one bad part).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from typing import Protocol

from kuzet.installation import Installation

log = logging.getLogger("kuzet.runtime")

CAPABILITIES = ("recording", "watching", "operations", "safeyard", "crime")


class Service(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class PeriodicService:
    """A service that runs ``run_once`` (in a worker thread) now and then after every ``wait()`` until stopped. A pass
    that fails is logged and the next one runs anyway."""

    name = "periodic"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._task: asyncio.Task | None = None

    def run_once(self) -> object:
        raise NotImplementedError

    async def wait(self) -> None:
        """Until the next pass (override to be woken early)."""
        await asyncio.sleep(self.interval)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("%s pass failed", self.name)
            await self.wait()


def capability_module(capability: str, module: str):  # noqa: ANN201
    """``kuzet.services.<capability>.<module>`` if the capability has one, else None."""
    try:
        return importlib.import_module(f"kuzet.services.{capability}.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"kuzet.services.{capability}.{module}":
            return None
        raise


def capability_services(inst: Installation) -> list[Service]:
    """The services to run, in start order (recording first: the others feed on its streams)."""
    services: list[Service] = []
    for capability in CAPABILITIES:
        module = capability_module(capability, "runtime")
        if module is not None:
            services.extend(module.services(inst))
    return services


class Runtime:
    def __init__(self, inst: Installation) -> None:
        self.inst = inst
        self.services: list[Service] = []

    async def start(self) -> None:
        from kuzet.store.bus import connect_bus

        self.inst.extras["bus"] = await connect_bus(self.inst.settings.events_url)
        for service in capability_services(self.inst):
            try:
                await service.start()
                self.services.append(service)
                log.info("started %s", service.name)
            except Exception:
                log.exception("service %s failed to start; continuing without it", service.name)

    async def stop(self) -> None:
        for service in reversed(self.services):
            try:
                log.debug("stopping %s", service.name)
                await service.stop()
            except Exception:
                log.exception("service %s failed to stop cleanly", service.name)
        bus = self.inst.extras.pop("bus", None)
        if bus is not None:
            await bus.close()
