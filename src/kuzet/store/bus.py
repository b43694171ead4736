"""The event bus: in-process by default, NATS JetStream in production. Same interface, both tested.

Subjects are dot-separated (``kuzet.camera.7.health``); subscriptions accept NATS wildcards ``*`` (one token) and
``>`` (the rest). Payloads are JSON objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

log = logging.getLogger("kuzet.bus")

Handler = Callable[[str, dict[str, Any]], Awaitable[None]]
STREAM = "KUZET"
SUBJECTS = "kuzet.>"
MSG_ID = "Nats-Msg-Id"  # JetStream drops a second message with the same id within its duplicate window (2 min)
OUTBOX_MAX = 10_000  # messages held while NATS is away (events are ~1-2 KB: ~20 MB at most)
DEDUP_WINDOW = 4096  # ids each subscription remembers to drop a message delivered twice
RECONNECT_WAIT = 1  # seconds between reconnect attempts
ACK_TIMEOUT = 5.0  # seconds JetStream may take to acknowledge a message
RETRY_START, RETRY_MAX = 0.2, 5.0  # back-off between attempts to send a message that was not acknowledged
CLOSE_FLUSH_SECONDS = 5.0  # at shutdown, how long to wait for the outbox to empty


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

    def stats(self) -> dict[str, int | bool]:
        return {"outbox": 0, "outbox_max": 0, "sent": 0, "dropped": 0, "retries": 0, "connected": True}

    async def close(self) -> None:
        self._subs.clear()


class _Outgoing(NamedTuple):
    subject: str
    data: bytes
    msg_id: str


class _Recent:
    """Message ids seen lately, to drop the second copy of a message published again after a lost acknowledgement."""

    def __init__(self, size: int = DEDUP_WINDOW) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, msg_id: str | None) -> bool:
        if not msg_id:
            return False
        if msg_id in self._ids:
            return True
        self._ids[msg_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return False


class NatsBus:
    """NATS with a JetStream stream ``KUZET`` keeping every ``kuzet.>`` event for replay and durable consumers.

    ``publish`` never waits for NATS: it puts the message in a bounded outbox that one task sends in order, each
    message acknowledged by JetStream before the next goes. While NATS is away the outbox holds what is published
    (up to ``outbox_max`` messages; when full the oldest is dropped and counted in ``dropped``) and the client
    reconnects every ``RECONNECT_WAIT`` seconds; once it is back, the outbox is sent in order. Every message carries a
    ``Nats-Msg-Id``: a message sent again because its acknowledgement was lost is stored once by JetStream (its
    duplicate window) and handed to each subscriber once (``_Recent``).
    """

    def __init__(self, nc, js, outbox_max: int = OUTBOX_MAX) -> None:  # noqa: ANN001
        self.nc, self.js = nc, js
        self.outbox: deque[_Outgoing] = deque()
        self.outbox_max = outbox_max
        self.sent = 0
        self.dropped = 0
        self.retries = 0
        self._wake: asyncio.Event | None = None
        self._sender: asyncio.Task | None = None
        self._closing = False

    @classmethod
    async def connect(cls, url: str, outbox_max: int = OUTBOX_MAX) -> NatsBus:
        import nats

        holder: list[NatsBus] = []

        async def disconnected() -> None:
            log.warning("NATS connection lost; events wait in the outbox (%d queued)",
                        len(holder[0].outbox) if holder else 0)

        async def reconnected() -> None:
            log.info("NATS reconnected; sending %d queued events", len(holder[0].outbox) if holder else 0)
            if holder:
                holder[0]._poke()

        async def error(exc: Exception) -> None:
            log.debug("NATS: %s", exc)

        nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=-1,
                                reconnect_time_wait=RECONNECT_WAIT, disconnected_cb=disconnected,
                                reconnected_cb=reconnected, error_cb=error)
        bus = cls(nc, nc.jetstream(), outbox_max)
        holder.append(bus)
        await bus._ensure_stream()
        return bus

    async def _ensure_stream(self) -> None:
        from nats.js.api import StreamConfig

        try:
            # A week of events, but never more than 2 GiB: detections update every second while they last.
            await self.js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECTS], max_age=7 * 24 * 3600,
                                                  max_bytes=2 << 30))
        except Exception:  # already exists with another config: keep the operator's
            log.debug("JetStream stream %s exists", STREAM)

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    def stats(self) -> dict[str, int | bool]:
        return {"outbox": len(self.outbox), "outbox_max": self.outbox_max, "sent": self.sent,
                "dropped": self.dropped, "retries": self.retries, "connected": self.connected}

    async def publish(self, subject: str, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, default=str).encode("utf-8")
        if len(self.outbox) >= self.outbox_max:
            lost = self.outbox.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("event outbox full (%d): dropped the oldest (%s); %d dropped so far", self.outbox_max,
                          lost.subject, self.dropped)
        self.outbox.append(_Outgoing(subject, data, uuid.uuid4().hex))
        self._poke()

    def _poke(self) -> None:
        if self._closing:
            return
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_loop(), name="kuzet-bus-outbox")
        self._wake.set()

    async def _send_loop(self) -> None:
        assert self._wake is not None
        backoff = RETRY_START
        while True:
            if not self.outbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self.connected:
                # The client reconnects by itself and pokes us when it is back; check now and then anyway.
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), RETRY_MAX)
                continue
            message = self.outbox[0]
            try:
                await self._send(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - not acknowledged: keep it first in line and try again
                self.retries += 1
                if _no_stream(exc):
                    await self._ensure_stream()
                log.debug("publishing %s failed (%s); retrying in %.1f s", message.subject, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MAX)
                continue
            backoff = RETRY_START
            if self.outbox and self.outbox[0] is message:
                self.outbox.popleft()
            self.sent += 1

    async def _send(self, message: _Outgoing) -> None:
        headers = {MSG_ID: message.msg_id}
        if message.subject.startswith("kuzet."):
            await self.js.publish(message.subject, message.data, timeout=ACK_TIMEOUT, headers=headers)
        else:
            await self.nc.publish(message.subject, message.data, headers=headers)

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the outbox is empty (or ``timeout``); whether it is."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.outbox and loop.time() < deadline:
            self._poke()
            await asyncio.sleep(0.05)
        return not self.outbox

    async def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        recent = _Recent()

        async def _on(msg) -> None:  # noqa: ANN001
            if recent.seen((msg.headers or {}).get(MSG_ID)):
                return
            try:
                await handler(msg.subject, json.loads(msg.data))
            except Exception:
                log.exception("event handler for %s failed", msg.subject)

        return await self.nc.subscribe(pattern, cb=_on)

    async def close(self) -> None:
        """Send what the outbox holds (for at most ``CLOSE_FLUSH_SECONDS``, NATS may be coming back), then close."""
        if self.outbox:
            await self.flush(CLOSE_FLUSH_SECONDS)
        if self.outbox:
            log.error("closing the event bus with %d events not sent", len(self.outbox))
        self._closing = True
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender
        with contextlib.suppress(Exception):
            if self.connected:
                await asyncio.wait_for(self.nc.drain(), CLOSE_FLUSH_SECONDS)
            else:
                await self.nc.close()


def _no_stream(exc: Exception) -> bool:
    """JetStream answered that no stream takes the subject (e.g. a NATS server restarted without its store)."""
    from nats.errors import NoRespondersError
    from nats.js.errors import NoStreamResponseError

    return isinstance(exc, NoRespondersError | NoStreamResponseError)


async def connect_bus(url: str) -> Bus:
    if url.startswith("memory"):
        return MemoryBus()
    if url.startswith("nats"):
        return await asyncio.wait_for(NatsBus.connect(url), timeout=10)
    raise ValueError(f"unknown events_url {url!r}: use memory:// or nats://host:port")
