"""The archive index in the database: file rows, gaps, and the batched writes that keep them current.

The recorder never waits on the database: it marks segments and gaps dirty and a flush (every ``interval`` seconds,
in a worker thread, one transaction for all cameras) writes them. A crash loses at most the last interval of index
updates, which ``repair_open_segments`` rebuilds from the files themselves at the next start.

While the database is away (restarted, locked by another process) recording goes on into files; what is not yet
written stays in memory (one row per file and per gap, a few hundred bytes each) and the flush is tried again with
back-off (``interval`` doubling up to ``RETRY_MAX``). The first flush that succeeds writes all of it in one
transaction. New rows get their ids only once that transaction has committed, so a write that failed halfway is
simply written again. A server stopped while the database is still away writes what is left to a journal beside
the recordings (``JOURNAL``), which the next start writes to the database before anything else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, func, insert, select, update

from kuzet.services.recording.mp4 import BoxSplitter, Mp4Error, parse_init, parse_moof
from kuzet.services.recording.segments import Segment, pack_keyframes
from kuzet.store.db import Database
from kuzet.store.models.recording import Gap, Recording

log = logging.getLogger("kuzet.recording.index")
RETRY_MAX = 5.0  # seconds between attempts while the database is away
STOP_SECONDS = 10.0  # at shutdown, how long to keep trying to write what is left
JOURNAL = "index-pending.json"  # beside the recordings: rows a stop while the database was away could not write


@dataclass(eq=False)  # identity: two gaps with equal fields are still two gaps
class GapRecord:
    camera_id: int
    start: datetime
    reason: str
    message: str | None = None
    end: datetime | None = None
    row_id: int | None = None
    dirty: bool = True
    insert_tried: bool = False  # an insert was sent whose commit may or may not have happened


class IndexWriter:
    def __init__(self, db: Database, interval: float = 2.0, journal: Path | None = None) -> None:
        self.db = db
        self.interval = interval
        self.journal = journal
        self.segments: list[Segment] = []  # open, or closed and not yet written
        self.closed: list[Segment] = []
        self.gaps: list[GapRecord] = []
        self.failing_since: float | None = None  # monotonic time of the first failed flush of the current outage
        self.last_flush: float | None = None  # wall-clock time of the last successful flush
        self.failures = 0  # flushes that failed since start
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        # Its own thread: index writes never queue behind work of the event loop's default executor that may wait
        # on an object store (exports, archive reads) for a whole timeout.
        self._thread: ThreadPoolExecutor | None = None

    @property
    def pending(self) -> int:
        """Rows (files and gaps) waiting to be written."""
        return (sum(1 for s in self.segments if s.dirty) + len(self.closed)
                + sum(1 for g in self.gaps if g.dirty))

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
        """Write what is left; while the database is away, keep trying for ``STOP_SECONDS``, then give up (the files
        stay on disk, but rows of files closed during the outage are lost to the index)."""
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        deadline = time.monotonic() + STOP_SECONDS
        try:
            await self._flush_to_stop(deadline)
        finally:
            if self._thread is not None:
                self._thread.shutdown(wait=False)
                self._thread = None

    async def _flush_to_stop(self, deadline: float) -> None:
        while True:
            try:
                await self.flush()
                return
            except Exception as exc:
                if time.monotonic() >= deadline:
                    if self.journal is None:
                        log.error("stopping with %d index rows not written: %s", self.pending, _short(exc))
                        raise
                    saved = self._save_journal()
                    log.error("stopping with %d index rows not written (%s): kept in %s for the next start",
                              saved, _short(exc), self.journal)
                    return
            await asyncio.sleep(1.0)

    def _save_journal(self) -> int:
        assert self.journal is not None
        entries = [{"table": "recordings", "row_id": s.row_id, "values": _encode(_row_values(s, "open"))}
                   for s in self.segments]  # still open: repaired from its file at the next start
        entries += [{"table": "recordings", "row_id": s.row_id, "values": _encode(_row_values(s, "closed"))}
                    for s in self.closed]
        entries += [{"table": "recording_gaps", "row_id": g.row_id, "values": _encode(
            {"camera_id": g.camera_id, "start_at": g.start, "end_at": g.end, "reason": g.reason,
             "message": g.message})} for g in self.gaps if g.dirty]
        earlier = json.loads(self.journal.read_text()) if self.journal.exists() else []
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        partial = self.journal.with_suffix(".part")
        partial.write_text(json.dumps(earlier + entries))
        os.replace(partial, self.journal)
        return len(entries)

    async def _loop(self) -> None:
        delay = self.interval
        while True:
            await asyncio.sleep(delay)
            try:
                await self.flush()
            except Exception as exc:  # the database is away (restarted, locked): files go on, rows wait
                self.failures += 1
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                    log.error("index writes failing, recording goes on into files and retries: %s",
                              _short(exc))
                else:
                    log.debug("index flush failed again: %s", _short(exc))
                delay = min(delay * 2, RETRY_MAX)
                continue
            if self.failing_since is not None:
                log.warning("index writes resumed after %.1f s", time.monotonic() - self.failing_since)
                self.failing_since = None
            delay = self.interval

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
                if self._thread is None:
                    self._thread = ThreadPoolExecutor(1, thread_name_prefix="kuzet-index")
                await asyncio.get_running_loop().run_in_executor(self._thread, self._write, snapshot, gap_values)
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
            self.last_flush = time.time()

    def _write(self, snapshot: list[tuple[Segment, dict]], gaps: list[tuple[GapRecord, dict]]) -> None:
        """One transaction: new rows inserted one by one (their ids are needed), updates as one executemany.

        The ids of new rows are kept only once the transaction has committed: if it fails anywhere, nothing of it
        happened and the next flush inserts those rows again."""
        updates = []
        gap_updates = []
        new_segments: list[tuple[Segment, int]] = []
        new_gaps: list[tuple[GapRecord, int]] = []
        retried = {id(x) for x, _v in snapshot + gaps if x.row_id is None and x.insert_tried}
        for item, _values in snapshot + gaps:
            if item.row_id is None:
                item.insert_tried = True
        with self.db.session() as session:
            for seg, values in snapshot:
                row_id = seg.row_id
                if row_id is None and id(seg) in retried:  # a commit that failed may still have happened
                    row_id = session.scalar(select(Recording.id).where(Recording.camera_id == seg.camera_id,
                                                                       Recording.path == values["path"]))
                    if row_id is not None:
                        new_segments.append((seg, row_id))
                if row_id is None:
                    new_segments.append(
                        (seg, session.execute(insert(Recording).values(**values).returning(Recording.id)).scalar()))
                else:
                    updates.append({"rid": row_id, **values})
            for gap, values in gaps:
                row_id = gap.row_id
                if row_id is None and id(gap) in retried:
                    row_id = session.scalar(select(Gap.id).where(Gap.camera_id == gap.camera_id,
                                                                 Gap.start_at == values["start_at"]))
                    if row_id is not None:
                        new_gaps.append((gap, row_id))
                if row_id is None:
                    new_gaps.append((gap, session.execute(insert(Gap).values(**values).returning(Gap.id)).scalar()))
                else:
                    gap_updates.append({"gid": row_id, "end_at": values["end_at"], "reason": values["reason"],
                                        "message": values["message"]})
            if updates:
                session.connection().execute(_UPDATE_RECORDING, updates)
            if gap_updates:
                session.connection().execute(_UPDATE_GAP, gap_updates)
        for seg, row_id in new_segments:
            seg.row_id = row_id
        for gap, row_id in new_gaps:
            gap.row_id = row_id


_UPDATE_RECORDING = (
    update(Recording.__table__).where(Recording.__table__.c.id == bindparam("rid"))
    .values({c: bindparam(c) for c in ("start_at", "end_at", "bytes", "fragments", "media_seconds", "keyframes",
                                       "state")})
)
_UPDATE_GAP = (
    update(Gap.__table__).where(Gap.__table__.c.id == bindparam("gid"))
    .values({c: bindparam(c) for c in ("end_at", "reason", "message")})
)


_TIMES = ("start_at", "end_at")


def _encode(values: dict) -> dict:
    out = dict(values)
    for key in _TIMES:
        out[key] = out[key].isoformat() if out.get(key) is not None else None
    if "keyframes" in out:
        out["keyframes"] = out["keyframes"].hex()
    return out


def _decode(values: dict) -> dict:
    out = dict(values)
    for key in _TIMES:
        out[key] = datetime.fromisoformat(out[key]) if out.get(key) is not None else None
    if "keyframes" in out:
        out["keyframes"] = bytes.fromhex(out["keyframes"])
    return out


def replay_journal(db: Database, journal: Path) -> int:
    """Write the rows a server stopped while the database was away left in its journal, then remove it. A row is
    found by its id, else by its file (recordings) or its start (gaps): written once, whatever happened before."""
    if not journal.exists():
        return 0
    entries = json.loads(journal.read_text())
    with db.session() as session:
        for entry in entries:
            values = _decode(entry["values"])
            model = Recording if entry["table"] == "recordings" else Gap
            row = session.get(model, entry["row_id"]) if entry["row_id"] else None
            if row is None and model is Recording:
                row = session.scalar(select(Recording).where(Recording.camera_id == values["camera_id"],
                                                             Recording.path == values["path"]))
            elif row is None:
                row = session.scalar(select(Gap).where(Gap.camera_id == values["camera_id"],
                                                       Gap.start_at == values["start_at"]))
            if row is None:
                session.add(model(**values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)
    journal.unlink()
    return len(entries)


def _short(exc: Exception) -> str:
    """The first line of a database error (drivers append the whole statement and its parameters)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _row_values(seg: Segment, state: str) -> dict:
    return {
        "camera_id": seg.camera_id, "stream": "main", "path": seg.rel_path, "start_at": seg.start,
        "end_at": seg.end or seg.start, "bytes": seg.size, "init_size": len(seg.init), "fragments": seg.fragments,
        "media_seconds": seg.media_seconds, "keyframes": pack_keyframes(seg.keyframes), "codec": seg.track.codec,
        "width": seg.track.width, "height": seg.track.height, "state": state, "node": seg.node,
        "lease_token": seg.lease_token,
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


def close_stale_gaps(db: Database) -> int:
    """Before recording starts: end every gap left open by an earlier run that something came after — the next gap
    or a recording of the same camera — where that began (a run that recorded and was killed before it could write
    the gap's end, or two runs that overlapped). Only the newest open gap of a camera with nothing after it stays
    open: the camera has not recorded since, and the recorder closes it at its first fragment."""
    closed = 0
    with db.session() as session:
        for gap in session.scalars(select(Gap).where(Gap.end_at.is_(None)).order_by(Gap.camera_id, Gap.start_at)):
            next_gap = session.scalar(select(func.min(Gap.start_at)).where(
                Gap.camera_id == gap.camera_id, Gap.start_at > gap.start_at))
            next_recording = session.scalar(select(func.min(Recording.start_at)).where(
                Recording.camera_id == gap.camera_id, Recording.start_at > gap.start_at))
            after = [t for t in (next_gap, next_recording) if t is not None]
            if after:
                gap.end_at = min(after)
                closed += 1
    return closed


def repair_open_segments(db: Database, root: Path, node: str | None = None) -> int:
    """After a crash: close every file row left open, re-indexing its file and cutting a partly written fragment.

    With several recorder nodes (``node`` is this one): rows of a camera another node holds a live lease on are that
    node's, being written; rows of another node whose file is not on this disk are not this node's to drop."""
    repaired = 0
    with db.session() as session:
        rows = session.scalars(select(Recording).where(Recording.state == "open")).all()
        if node is not None:
            from kuzet.services.cluster.leases import database_now
            from kuzet.store.models.cluster import CameraLease

            now = database_now(session)
            busy = set(session.scalars(select(CameraLease.camera_id).where(CameraLease.node != node,
                                                                           CameraLease.expires_at > now)))
            rows = [r for r in rows if r.camera_id not in busy
                    and (r.node in (None, node) or (root / r.path).exists())]
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
