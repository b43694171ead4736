"""The archive index in the database: file rows, gaps, and the batched writes that keep them current.

The recorder never waits on the database: it marks segments and gaps dirty and a flush (every ``interval`` seconds,
in a worker thread, one transaction for all cameras) writes them. A crash loses at most the last interval of index
updates, which ``repair_open_segments`` rebuilds from the files themselves at the next start.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, insert, select, update

from kuzet.services.recording.mp4 import BoxSplitter, Mp4Error, parse_init, parse_moof
from kuzet.services.recording.segments import Segment, pack_keyframes
from kuzet.store.db import Database
from kuzet.store.models.recording import Gap, Recording

log = logging.getLogger("kuzet.recording.index")


@dataclass(eq=False)  # identity: two gaps with equal fields are still two gaps
class GapRecord:
    camera_id: int
    start: datetime
    reason: str
    message: str | None = None
    end: datetime | None = None
    row_id: int | None = None
    dirty: bool = True


class IndexWriter:
    def __init__(self, db: Database, interval: float = 2.0) -> None:
        self.db = db
        self.interval = interval
        self.segments: list[Segment] = []  # open, or closed and not yet written
        self.closed: list[Segment] = []
        self.gaps: list[GapRecord] = []
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    def track(self, segment: Segment) -> None:
        self.segments.append(segment)

    def finish(self, segment: Segment) -> None:
        segment.dirty = True
        if segment in self.segments:
            self.segments.remove(segment)
        self.closed.append(segment)

    def gap(self, gap: GapRecord) -> GapRecord:
        """Track a gap until its changes are written (again, if it changed after being written)."""
        if gap not in self.gaps:
            self.gaps.append(gap)
        return gap

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.flush()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:  # the database may be briefly unavailable; try again next time
                log.exception("index flush failed")

    async def flush(self) -> None:
        async with self._lock:
            segs = [s for s in self.segments if s.dirty]
            closed = list(self.closed)
            gaps = [g for g in self.gaps if g.dirty]
            if not (segs or closed or gaps):
                return
            snapshot = [(s, _row_values(s, "open")) for s in segs] + [(s, _row_values(s, "closed")) for s in closed]
            for s in segs + closed:
                s.dirty = False
            gap_values = [(g, {"camera_id": g.camera_id, "start_at": g.start, "end_at": g.end, "reason": g.reason,
                               "message": g.message}) for g in gaps]
            for g in gaps:
                g.dirty = False
            try:
                await asyncio.to_thread(self._write, snapshot, gap_values)
            except Exception:
                for s in segs + closed:
                    s.dirty = True
                for g in gaps:
                    g.dirty = True
                raise
            for s in closed:
                if s in self.closed:
                    self.closed.remove(s)
            self.gaps = [g for g in self.gaps if g.end is None or g.dirty]

    def _write(self, snapshot: list[tuple[Segment, dict]], gaps: list[tuple[GapRecord, dict]]) -> None:
        """One transaction: new rows inserted one by one (their ids are needed), updates as one executemany."""
        updates = []
        gap_updates = []
        with self.db.session() as session:
            for seg, values in snapshot:
                if seg.row_id is None:
                    seg.row_id = session.execute(insert(Recording).values(**values).returning(Recording.id)).scalar()
                else:
                    updates.append({"rid": seg.row_id, **values})
            for gap, values in gaps:
                if gap.row_id is None:
                    gap.row_id = session.execute(insert(Gap).values(**values).returning(Gap.id)).scalar()
                else:
                    gap_updates.append({"gid": gap.row_id, "end_at": values["end_at"], "reason": values["reason"],
                                        "message": values["message"]})
            if updates:
                session.connection().execute(_UPDATE_RECORDING, updates)
            if gap_updates:
                session.connection().execute(_UPDATE_GAP, gap_updates)


_UPDATE_RECORDING = (
    update(Recording.__table__).where(Recording.__table__.c.id == bindparam("rid"))
    .values({c: bindparam(c) for c in ("start_at", "end_at", "bytes", "fragments", "media_seconds", "keyframes",
                                       "state")})
)
_UPDATE_GAP = (
    update(Gap.__table__).where(Gap.__table__.c.id == bindparam("gid"))
    .values({c: bindparam(c) for c in ("end_at", "reason", "message")})
)


def _row_values(seg: Segment, state: str) -> dict:
    return {
        "camera_id": seg.camera_id, "stream": "main", "path": seg.rel_path, "start_at": seg.start,
        "end_at": seg.end or seg.start, "bytes": seg.size, "init_size": len(seg.init), "fragments": seg.fragments,
        "media_seconds": seg.media_seconds, "keyframes": pack_keyframes(seg.keyframes), "codec": seg.track.codec,
        "width": seg.track.width, "height": seg.track.height, "state": state,
    }


def scan_file(path: Path, start: datetime) -> tuple[dict, int]:
    """Rebuild a file's index from its boxes; returns (row values, size of the whole fragments part)."""
    data = path.read_bytes()
    splitter = BoxSplitter()
    fragments = splitter.feed(data)
    if splitter.init is None:
        raise Mp4Error(f"{path}: no init segment")
    track = parse_init(splitter.init)
    pos = len(splitter.init)
    keyframes: list[tuple[int, int]] = []
    first_dt: int | None = None
    media = 0.0
    end_offset = 0.0
    for frag in fragments:
        info = parse_moof(frag)
        first_dt = info.decode_time if first_dt is None else first_dt
        offset = (info.decode_time - first_dt) / track.timescale
        if info.keyframe:
            keyframes.append((int(offset * 1000), pos))
        pos += len(frag)
        media += info.duration / track.timescale
        end_offset = offset + info.duration / track.timescale
    values = {"bytes": pos, "init_size": len(splitter.init), "fragments": len(fragments), "media_seconds": media,
              "keyframes": pack_keyframes(keyframes), "codec": track.codec, "width": track.width,
              "height": track.height, "end_at": start + timedelta(seconds=end_offset), "state": "closed"}
    return values, pos


def repair_open_segments(db: Database, root: Path) -> int:
    """After a crash: close every file row left open, re-indexing its file and cutting a partly written fragment."""
    repaired = 0
    with db.session() as session:
        rows = session.scalars(select(Recording).where(Recording.state == "open")).all()
        for row in rows:
            path = root / row.path
            try:
                values, good = scan_file(path, row.start_at)
                if path.stat().st_size > good:
                    with open(path, "r+b") as fh:
                        fh.truncate(good)
                for key, value in values.items():
                    setattr(row, key, value)
            except (FileNotFoundError, Mp4Error) as exc:
                log.warning("dropping index row of unreadable recording %s: %s", row.path, exc)
                session.delete(row)
                path.unlink(missing_ok=True)
            repaired += 1
    return repaired
