"""The event bus: the same behaviour in-process and on NATS JetStream."""

from __future__ import annotations

import asyncio

import pytest

from kuzet.store.bus import connect_bus, subject_matches
from tests.conftest import NATS_URL, _unavailable


def test_subject_wildcards() -> None:
    assert subject_matches("kuzet.camera.*.health", "kuzet.camera.7.health")
    assert not subject_matches("kuzet.camera.*.health", "kuzet.camera.7.motion")
    assert subject_matches("kuzet.>", "kuzet.camera.7.health")
    assert not subject_matches("kuzet.>", "kuzet")
    assert not subject_matches("kuzet.camera", "kuzet.camera.7")


@pytest.mark.parametrize("url", ["memory://", NATS_URL])
def test_publish_reaches_matching_subscribers_only(url: str) -> None:
    async def scenario() -> list[tuple[str, dict]]:
        try:
            bus = await connect_bus(url)
        except Exception as exc:  # noqa: BLE001
            _unavailable("NATS", exc)
        got: list[tuple[str, dict]] = []
        done = asyncio.Event()

        async def on_event(subject: str, payload: dict) -> None:
            got.append((subject, payload))
            if len(got) == 2:
                done.set()

        async def broken(subject: str, payload: dict) -> None:
            raise RuntimeError("a bad handler must not stop the others")

        await bus.subscribe("kuzet.test.*.health", broken)
        sub = await bus.subscribe("kuzet.test.*.health", on_event)
        await bus.publish("kuzet.test.1.health", {"state": "recording"})
        await bus.publish("kuzet.test.1.motion", {"ignored": True})
        await bus.publish("kuzet.test.2.health", {"state": "offline"})
        await asyncio.wait_for(done.wait(), 10)
        await sub.unsubscribe()
        await bus.close()
        return got

    got = asyncio.run(scenario())
    assert got == [("kuzet.test.1.health", {"state": "recording"}), ("kuzet.test.2.health", {"state": "offline"})]
