"""What ``kuzet serve`` runs beside the API: the event bus and the long-running services of each capability.

A capability that runs something in the background has a module ``kuzet.services.<capability>.runtime`` with a
function ``services(inst) -> list[Service]``. One service failing to start is logged and the others still run (the
server never dies from one bad part).
"""

from __future__ import annotations

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
