"""What ``kuzet serve`` runs for the audit log: the publisher of the chain's signed head to its witnesses."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kuzet.installation import Installation
from kuzet.services.audit.heads import AnchorState, current_head
from kuzet.services.audit.witness import Publication, publish
from kuzet.services.lifecycle import PeriodicService

log = logging.getLogger("kuzet.audit")

BUS_TIMEOUT = 10.0


class WitnessPublisher(PeriodicService):
    """Signs the chain's head and publishes it (``[audit]`` witness_file, witness_url, and the event bus subject
    ``kuzet.audit.head``) at start and then every ``witness_interval_minutes``."""

    name = "audit-witness"

    def __init__(self, inst: Installation, interval: float | None = None) -> None:
        super().__init__(interval if interval is not None else inst.settings.audit.witness_interval_minutes * 60)
        self.inst = inst
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self.last: Publication | None = None

    async def start(self) -> None:
        self._event_loop = asyncio.get_running_loop()
        await super().start()

    def _bus_publish(self, subject: str, payload: dict[str, Any]) -> None:
        """From the worker thread: publish on the running loop's bus and wait until the bus took it."""
        bus = self.inst.running.bus
        if bus is None or self._event_loop is None:
            raise RuntimeError("no event bus")
        asyncio.run_coroutine_threadsafe(bus.publish(subject, payload), self._event_loop).result(BUS_TIMEOUT)

    def run_once(self) -> Publication:
        head = current_head(self.inst.db, self.inst.keys)
        anchor = self.inst.audit_anchor.read()
        if anchor.head is not None and anchor.state is AnchorState.VALID and anchor.head.seq > head.seq:
            log.error("the audit chain ends at #%s but the signed anchor says it reached #%s: records were removed; "
                      "run `kuzet audit verify`", head.seq, anchor.head.seq)
        bus = self._bus_publish if self.inst.running.bus is not None else None
        self.last = publish(head, self.inst.settings.audit, bus)
        return self.last
