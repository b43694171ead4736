"""The event bus: in-process by default, NATS JetStream in production. Same interface, both tested.

Subjects are dot-separated (``kuzet.camera.7.health``); subscriptions accept NATS wildcards ``*`` (one token) and
``>`` (the rest). Payloads are JSON objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger("kuzet.bus")

Handler = Callable[[str, dict[str, Any]], Awaitable[None]]
STREAM = "KUZET"
SUBJECTS = "kuzet.>"


def subject_matches(pattern: str, subject: str) -> bool:
    pat, sub = pattern.split("."), subject.split(".")
    for i, token in enumerate(pat):
        if token == ">":
            return len(sub) > i
        if i >= len(sub) or (token != "*" and token != sub[i]):
            return False
    return len(pat) == len(sub)


class Subscription(Protocol):
    async def unsubscribe(self) -> None: ...


class Bus(Protocol):
    async def publish(self, subject: str, payload: dict[str, Any]) -> None: ...

    async def subscribe(self, pattern: str, handler: Handler) -> Subscription: ...

    async def close(self) -> None: ...


class _MemorySubscription:
    def __init__(self, bus: MemoryBus, pattern: str, handler: Handler) -> None:
        self.bus, self.pattern, self.handler = bus, pattern, handler

    async def unsubscribe(self) -> None:
        with contextlib.suppress(ValueError):
            self.bus._subs.remove(self)


class MemoryBus:
    """In-process bus. A handler that raises is logged; the others still get the event."""

    def __init__(self) -> None:
        self._subs: list[_MemorySubscription] = []

    async def publish(self, subject: str, payload: dict[str, Any]) -> None:
        # Round-trip through JSON so both buses hand handlers the same plain data.
        data = json.loads(json.dumps(payload, default=str))
        for sub in list(self._subs):
            if subject_matches(sub.pattern, subject):
                try:
                    await sub.handler(subject, data)
                except Exception:
                    log.exception("event handler for %s failed", subject)

    async def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        sub = _MemorySubscription(self, pattern, handler)
        self._subs.append(sub)
        return sub

    async def close(self) -> None:
        self._subs.clear()


class NatsBus:
    """NATS with a JetStream stream ``KUZET`` keeping every ``kuzet.>`` event for replay and durable consumers."""

    def __init__(self, nc, js) -> None:  # noqa: ANN001
        self.nc, self.js = nc, js

    @classmethod
    async def connect(cls, url: str) -> NatsBus:
        import nats
        from nats.js.api import StreamConfig

        nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=-1)
        js = nc.jetstream()
        try:
            # A week of events, but never more than 2 GiB: detections update every second while they last.
            await js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECTS], max_age=7 * 24 * 3600,
                                             max_bytes=2 << 30))
        except Exception:  # already exists with another config: keep the operator's
            log.debug("JetStream stream %s exists", STREAM)
        return cls(nc, js)

    async def publish(self, subject: str, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, default=str).encode("utf-8")
        if subject.startswith("kuzet."):
            await self.js.publish(subject, data)
        else:
            await self.nc.publish(subject, data)

    async def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        async def _on(msg) -> None:  # noqa: ANN001
            try:
                await handler(msg.subject, json.loads(msg.data))
            except Exception:
                log.exception("event handler for %s failed", msg.subject)

        return await self.nc.subscribe(pattern, cb=_on)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.nc.drain()


async def connect_bus(url: str) -> Bus:
    if url.startswith("memory"):
        return MemoryBus()
    if url.startswith("nats"):
        return await asyncio.wait_for(NatsBus.connect(url), timeout=10)
    raise ValueError(f"unknown events_url {url!r}: use memory:// or nats://host:port")
