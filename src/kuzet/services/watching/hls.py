"""HLS for third-party players: a live playlist fed from the camera's single upstream, and VOD playlists of any
archive window made of byte ranges of the recorded files (nothing is rewritten or re-encoded)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.services.recording.segments import unpack_keyframes
from kuzet.store.models.recording import Recording

log = logging.getLogger("kuzet.hls")
KEEP_SEGMENTS = 6
IDLE_SECONDS = 30.0


@dataclass
class LiveSegment:
    sequence: int
    data: bytes
    duration: float
    start: datetime


class LiveHls:
    """Groups a channel's fragments into keyframe-started segments; keeps the last few in memory."""

    def __init__(self, hub, camera_id: int, stream: str) -> None:  # noqa: ANN001
        self.hub = hub
        self.camera_id = camera_id
        self.stream = stream
        self.init: bytes | None = None
        self.segments: list[LiveSegment] = []
        self.sequence = 0
        self.last_request = time.monotonic()
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        async with self.hub.subscribe(self.camera_id, self.stream, maxsize=64) as sub:
            self.init = sub.init
            parts: list[bytes] = []
            duration = 0.0
            start = None
            async for fragment in sub:
                if fragment.keyframe and parts and duration >= 1.0:
                    self._push(b"".join(parts), duration, start)
                    parts, duration, start = [], 0.0, None
                if not parts and not fragment.keyframe:
                    continue
                parts.append(fragment.data)
                duration += fragment.duration
                start = start or fragment.start
                if time.monotonic() - self.last_request > IDLE_SECONDS:
                    return

    def _push(self, data: bytes, duration: float, start: datetime) -> None:
        self.segments.append(LiveSegment(self.sequence, data, duration, start))
        self.sequence += 1
        del self.segments[:-KEEP_SEGMENTS]
        if len(self.segments) >= 2:
            self._ready.set()

    async def wait_ready(self, timeout: float = 15.0) -> bool:
        self.last_request = time.monotonic()
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
            return True
        except TimeoutError:
            return False

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def playlist(self, base: str, query: str) -> str:
        target = max([s.duration for s in self.segments] + [1.0])
        lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{int(target + 0.999)}",
                 f"#EXT-X-MEDIA-SEQUENCE:{self.segments[0].sequence if self.segments else 0}",
                 f'#EXT-X-MAP:URI="{base}/live/init.mp4{query}"']
        for seg in self.segments:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{seg.start.isoformat(timespec='milliseconds')}")
            lines.append(f"#EXTINF:{seg.duration:.3f},")
            lines.append(f"{base}/live/{seg.sequence}.m4s{query}")
        return "\n".join(lines) + "\n"

    def segment(self, sequence: int) -> bytes | None:
        for seg in self.segments:
            if seg.sequence == sequence:
                return seg.data
        return None


class LiveHlsRegistry:
    """One LiveHls per (camera, stream), started by the first request and ended after 30 s without requests."""

    def __init__(self) -> None:
        self.items: dict[tuple[int, str], LiveHls] = {}

    def get(self, hub, camera_id: int, stream: str) -> LiveHls:  # noqa: ANN001
        key = (camera_id, stream)
        item = self.items.get(key)
        if item is None or item.done:
            item = LiveHls(hub, camera_id, stream)
            item.start()
            self.items[key] = item
        item.last_request = time.monotonic()
        return item


def archive_playlist(session: Session, camera_id: int, start: datetime, end: datetime, file_url,  # noqa: ANN001
                     query: str) -> str:
    """A VOD playlist for [start, end): per file an init map and keyframe-to-keyframe byte ranges."""
    rows = session.scalars(select(Recording).where(Recording.camera_id == camera_id, Recording.start_at < end,
                                                   Recording.end_at > start).order_by(Recording.start_at)).all()
    body: list[str] = []
    longest = 1.0
    for row in rows:
        keyframes = unpack_keyframes(row.keyframes)
        if not keyframes:
            continue
        file_ms = (row.end_at - row.start_at).total_seconds() * 1000
        bounds = [(ms, off) for ms, off in keyframes] + [(file_ms, row.bytes)]
        chosen = []
        for (ms, off), (next_ms, next_off) in zip(bounds, bounds[1:], strict=False):
            seg_start = row.start_at.timestamp() + ms / 1000
            seg_end = row.start_at.timestamp() + next_ms / 1000
            if seg_end <= start.timestamp() or seg_start >= end.timestamp() or next_off <= off:
                continue
            chosen.append((ms, off, (next_ms - ms) / 1000, next_off - off))
        if not chosen:
            continue
        url = file_url(row.id) + query
        body.append("#EXT-X-DISCONTINUITY")
        body.append(f'#EXT-X-MAP:URI="{url}",BYTERANGE="{row.init_size}@0"')
        first_ms = chosen[0][0]
        from datetime import timedelta

        body.append("#EXT-X-PROGRAM-DATE-TIME:"
                    + (row.start_at + timedelta(milliseconds=first_ms)).isoformat(timespec="milliseconds"))
        for _ms, off, duration, length in chosen:
            longest = max(longest, duration)
            body.append(f"#EXTINF:{duration:.3f},")
            body.append(f"#EXT-X-BYTERANGE:{length}@{off}")
            body.append(url)
    head = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{int(longest + 0.999)}",
            "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-MEDIA-SEQUENCE:0"]
    if body and body[0] == "#EXT-X-DISCONTINUITY":
        body = body[1:]
    return "\n".join(head + body + ["#EXT-X-ENDLIST"]) + "\n"
