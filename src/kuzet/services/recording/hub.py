"""Fan-out of a camera's single upstream to live viewers and analysis.

One ``Channel`` per (camera, stream) holds the init segment and the fragments since the last keyframe, so a new
subscriber starts at once with a decodable picture. Every subscriber has a bounded queue: one that falls behind is
skipped ahead to the next keyframe fragment (its queue is emptied), never slowing the recorder or anyone else.

Sub streams are not recorded; their upstream is opened when the first subscriber arrives and closed a grace period
after the last one leaves (``Hub.demand``), so the camera's sessions stay few.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Fragment:
    data: bytes  # moof + mdat
    keyframe: bool
    start: datetime  # wall-clock UTC of its first frame
    duration: float  # seconds
    samples: int


class Subscription:
    def __init__(self, channel: Channel, maxsize: int) -> None:
        self.channel = channel
        self.queue: asyncio.Queue[Fragment | None] = asyncio.Queue(maxsize)
        self.skipped = 0
        self._waiting_keyframe = False

    @property
    def init(self) -> bytes | None:
        return self.channel.init

    def offer(self, fragment: Fragment) -> None:
        if self._waiting_keyframe:
            if not fragment.keyframe:
                return
            self._waiting_keyframe = False
        if self.queue.full():
            # Too slow: drop what is queued and resume at the next keyframe.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.skipped += 1
            if not fragment.keyframe:
                self._waiting_keyframe = True
                return
        self.queue.put_nowait(fragment)

    def close(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[Fragment]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Fragment]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item


@dataclass
class Channel:
    camera_id: int
    stream: str
    init: bytes | None = None
    gop: list[Fragment] = field(default_factory=list)  # fragments since the last keyframe
    subscribers: set[Subscription] = field(default_factory=set)
    init_changed: asyncio.Event = field(default_factory=asyncio.Event)

    def set_init(self, init: bytes) -> None:
        if init != self.init:
            self.init = init
            self.gop.clear()
            self.init_changed.set()

    def publish(self, fragment: Fragment) -> None:
        if fragment.keyframe:
            self.gop = [fragment]
        elif self.gop:
            self.gop.append(fragment)
            if len(self.gop) > 64:
                self.gop = self.gop[-64:]
        for sub in list(self.subscribers):
            sub.offer(fragment)

    def end(self) -> None:
        """The upstream ended: subscribers finish; a new upstream will send a new init segment."""
        self.gop.clear()


DemandCallback = Callable[[int, str, bool], Awaitable[None]]


class Hub:
    def __init__(self, on_demand: DemandCallback | None = None, grace_seconds: float = 10.0) -> None:
        self.channels: dict[tuple[int, str], Channel] = {}
        self._on_demand = on_demand
        self._grace = grace_seconds
        self._release: dict[tuple[int, str], asyncio.TimerHandle] = {}

    def channel(self, camera_id: int, stream: str = "main") -> Channel:
        key = (camera_id, stream)
        if key not in self.channels:
            self.channels[key] = Channel(camera_id, stream)
        return self.channels[key]

    @contextlib.asynccontextmanager
    async def subscribe(self, camera_id: int, stream: str = "main", *, maxsize: int = 32,
                        wait_init: float = 10.0) -> AsyncIterator[Subscription]:
        """Subscribe to a camera stream: ``sub.init`` then ``async for fragment in sub``.

        Starts with the current GOP, so the first fragment is a keyframe. Raises TimeoutError if the stream gives no
        init segment within ``wait_init`` seconds (camera offline).
        """
        key = (camera_id, stream)
        channel = self.channel(camera_id, stream)
        timer = self._release.pop(key, None)
        if timer:
            timer.cancel()
        if not channel.subscribers and self._on_demand:
            await self._on_demand(camera_id, stream, True)
        sub = Subscription(channel, maxsize)
        channel.subscribers.add(sub)
        try:
            if channel.init is None:
                channel.init_changed.clear()
                await asyncio.wait_for(channel.init_changed.wait(), wait_init)
            for fragment in channel.gop:
                sub.offer(fragment)
            yield sub
        finally:
            channel.subscribers.discard(sub)
            if not channel.subscribers and self._on_demand:
                loop = asyncio.get_running_loop()
                self._release[key] = loop.call_later(
                    self._grace, lambda: asyncio.ensure_future(self._maybe_release(key)))

    async def _maybe_release(self, key: tuple[int, str]) -> None:
        self._release.pop(key, None)
        channel = self.channels.get(key)
        if channel is not None and not channel.subscribers and self._on_demand:
            await self._on_demand(key[0], key[1], False)
