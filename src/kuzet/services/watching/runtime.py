"""What watching runs beside the API: the sweep that writes down the end of live viewing sessions."""

from __future__ import annotations

import asyncio
import logging

from kuzet.installation import Installation
from kuzet.services.lifecycle import PeriodicService
from kuzet.services.watching.viewing import record_ended

log = logging.getLogger(__name__)

SWEEP_SECONDS = 30.0


def write_ended(inst: Installation, everything: bool = False) -> int:
    """Append a ``viewing.ended`` record for every live viewing session that is over; how many."""
    ended = inst.running.viewing_sessions.ended(everything)
    if ended:
        with inst.db.session() as session:
            for item in ended:
                record_ended(session, item)
    return len(ended)


class ViewingSweep(PeriodicService):
    """Every ``SWEEP_SECONDS``, the ends of HLS viewing sessions that went quiet; at shutdown, the ends of all."""

    name = "viewing-sweep"

    def __init__(self, inst: Installation, interval: float = SWEEP_SECONDS) -> None:
        super().__init__(interval)
        self.inst = inst

    def run_once(self) -> int:
        return write_ended(self.inst)

    async def stop(self) -> None:
        await super().stop()
        try:
            await asyncio.to_thread(write_ended, self.inst, True)
        except Exception:  # the database may already be gone at shutdown; the starts are audited anyway
            log.exception("could not write the end of the open viewing sessions")
