"""What onboarding runs beside ``kuzet serve``: the push ingest servers, when ``[push] enabled`` is set."""

from __future__ import annotations

from kuzet.installation import Installation
from kuzet.services.onboarding.relay import PushIngest


class PushService:
    name = "push-ingest"

    def __init__(self, inst: Installation) -> None:
        self.inst = inst
        self.ingest = PushIngest(inst.settings)

    async def start(self) -> None:
        self.inst.running.push = self.ingest
        await self.ingest.start()

    async def stop(self) -> None:
        await self.ingest.stop()
        self.inst.running.push = None


def push_service(inst: Installation) -> PushService | None:
    """The push ingest servers, with ``[push] enabled`` only."""
    return PushService(inst) if inst.settings.push.enabled else None
