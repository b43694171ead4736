"""What ``kuzet serve`` runs beside the API: the event bus and the long-running services of each capability.

The services and the role each runs in are declared in ``kuzet.capabilities``; a runtime starts those of the roles
it is given (``kuzet serve --role``, all three by default). One service failing to start is logged and the others
still run (the server never dies from one bad part).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from kuzet import capabilities
from kuzet.capabilities import ALL_ROLES, NodeRole
from kuzet.installation import Installation
from kuzet.services.lifecycle import Service

log = logging.getLogger("kuzet.runtime")


class Runtime:
    def __init__(self, inst: Installation, roles: Iterable[NodeRole] = ALL_ROLES) -> None:
        self.inst = inst
        self.roles = frozenset(roles)
        self.services: list[Service] = []

    async def start(self) -> None:
        from kuzet.store.bus import connect_bus

        self.inst.running.bus = await connect_bus(self.inst.settings.events_url)
        await self._watch_access()
        for declared in capabilities.background_services(self.roles):
            try:
                service = declared.make(self.inst)
                if service is None:  # switched off in the settings
                    continue
                await service.start()
                self.services.append(service)
                log.info("started %s", service.name)
            except Exception:
                log.exception("service %s failed to start; continuing without it", declared.name)

    async def _watch_access(self) -> None:
        """Announce this process's changes to grants on the bus and drop its cached grants on anyone else's."""
        import os
        import uuid

        from kuzet.services.access.cache import cache_of, watch_bus

        cache = cache_of(self.inst.db.engine)
        if cache is None:
            return
        origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            self.inst.running.access_watch = await watch_bus(cache, self.inst.running.bus, origin)
        except Exception:  # without it, changes made elsewhere still reach this process within the cache's MAX_AGE
            log.exception("could not subscribe to access changes on the bus")

    async def stop(self) -> None:
        for service in reversed(self.services):
            try:
                log.debug("stopping %s", service.name)
                await service.stop()
            except Exception:
                log.exception("service %s failed to stop cleanly", service.name)
        watch, self.inst.running.access_watch = self.inst.running.access_watch, None
        if watch is not None:
            with contextlib.suppress(Exception):
                await watch.unsubscribe()
        from kuzet.services.access.cache import cache_of

        cache = cache_of(self.inst.db.engine)
        if cache is not None:
            cache.on_change = None
        bus, self.inst.running.bus = self.inst.running.bus, None
        if bus is not None:
            await bus.close()
