"""The recorder: one loop per camera that owns its recording lifecycle.

connect (ffmpeg) → init segment → fragments → one-minute files + index + live fan-out → on any failure: a gap with
its reason, capped exponential backoff (1 s → 30 s), reconnect. Wall-clock UTC comes from this machine's clock; the
camera's timestamps only order frames inside a continuous run (docs/time.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import func, select

from kuzet.config import Settings
from kuzet.services.keys import Keyring
from kuzet.services.recording import ffmpeg as ff
from kuzet.services.recording.hub import Fragment, Hub
from kuzet.services.recording.index import (
    JOURNAL,
    GapRecord,
    IndexWriter,
    close_stale_gaps,
    repair_open_segments,
    replay_journal,
)
from kuzet.services.recording.ingest import Ingest
from kuzet.services.recording.mp4 import Mp4Error, TrackInfo, parse_init, parse_moof
from kuzet.services.recording.segments import Segment
from kuzet.store.db import Database, utcnow
from kuzet.store.models import Camera
from kuzet.store.models.recording import Gap, Recording

log = logging.getLogger("kuzet.recording")

BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
JUMP_SECONDS = 2.0  # camera time and wall time disagree by more than this: cut
DRIFT_SECONDS = 0.5  # at a file boundary, re-anchor when the camera clock has drifted this far


class CameraAssignment(Protocol):
    """Which cameras this recorder should record now, when several recorders share them (services/cluster). Without
    one, the recorder records every enabled camera."""

    node: str
    recording: object  # set by the recorder: () -> set of the cameras it records now
    on_change: object  # set by the recorder: called (from any thread) when the answer below may have changed

    def holds(self, camera_id: int) -> bool: ...

    def may_write(self, camera_id: int) -> bool: ...

    def token(self, camera_id: int) -> int | None: ...

    def moved_from(self, camera_id: int) -> str | None: ...


@dataclass
class Health:
    state: str = "connecting"  # recording, connecting, offline, error, disabled
    last_frame_at: datetime | None = None
    connected_since: datetime | None = None
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    last_error: str | None = None
    reason: str | None = None
    reconnects: int = 0
    window: deque = field(default_factory=lambda: deque(maxlen=200))  # (monotonic, bytes, samples)
    recorded_bytes: int = 0
    recorded_seconds: float = 0.0

    def observe(self, size: int, samples: int) -> None:
        self.window.append((time.monotonic(), size, samples))

    def rates(self, span: float = 10.0) -> tuple[float, float]:
        """(bits per second, frames per second) over the last ``span`` seconds."""
        now = time.monotonic()
        recent = [w for w in self.window if now - w[0] <= span]
        if len(recent) < 2:
            return 0.0, 0.0
        elapsed = max(recent[-1][0] - recent[0][0], 1e-3)
        body = recent[1:]
        return sum(w[1] for w in body) * 8 / elapsed, sum(w[2] for w in body) / elapsed

    def as_dict(self) -> dict:
        bitrate, fps = self.rates()
        uptime = (utcnow() - self.connected_since).total_seconds() if self.connected_since else 0.0
        return {"state": self.state, "last_frame_at": self.last_frame_at, "bitrate_bps": round(bitrate),
                "fps": round(fps, 2), "codec": self.codec, "width": self.width, "height": self.height,
                "uptime_seconds": round(uptime, 1), "reason": self.reason, "last_error": self.last_error,
                "reconnects": self.reconnects, "recorded_bytes": self.recorded_bytes,
                "recorded_seconds": round(self.recorded_seconds, 3)}


class Timebase:
    """Maps a run's media decode times to wall-clock UTC, anchored at arrival and cut on jumps."""

    def __init__(self, timescale: int) -> None:
        self.timescale = timescale
        self.anchor_wall: datetime | None = None
        self.anchor_dt = 0

    def place(self, decode_time: int, duration: float, arrived: datetime) -> tuple[datetime, bool, float]:
        """(wall start of the fragment, whether time jumped and the run must be cut, seconds the run moved earlier)."""
        observed = arrived - timedelta(seconds=duration)
        if self.anchor_wall is None:
            self.anchor(decode_time, observed)
            return observed, False, 0.0
        expected = self.anchor_wall + timedelta(seconds=(decode_time - self.anchor_dt) / self.timescale)
        ahead = (expected - observed).total_seconds()
        if abs(ahead) > JUMP_SECONDS:
            self.anchor(decode_time, observed)
            return observed, True, 0.0
        if ahead > 0.02:
            # The fragment arrived earlier than the anchor predicts, so the anchor came from a fragment that was held
            # up (ffmpeg's start-up probe releases a burst). Delay is never negative: the earliest arrival is the best
            # estimate of capture time, so the whole run moves earlier by that much.
            self.anchor_wall -= timedelta(seconds=ahead)
            return observed, False, ahead
        return expected, False, 0.0

    def anchor(self, decode_time: int, wall: datetime) -> None:
        self.anchor_wall, self.anchor_dt = wall, decode_time

    def drift(self, decode_time: int, duration: float, arrived: datetime) -> float:
        if self.anchor_wall is None:
            return 0.0
        expected = self.anchor_wall + timedelta(seconds=(decode_time - self.anchor_dt) / self.timescale)
        return (expected - (arrived - timedelta(seconds=duration))).total_seconds()


class CameraRecorder:
    """Records one camera's main stream and feeds its live channel."""

    def __init__(self, recorder: Recorder, camera_id: int, url: str, *, record: bool = True,
                 stream: str = "main") -> None:
        self.recorder = recorder
        self.camera_id = camera_id
        self.url = url
        self.record = record
        self.stream = stream
        self.health = Health()
        self.ingest: Ingest | None = None
        self.segment: Segment | None = None
        self.gap: GapRecord | None = None
        self.track: TrackInfo | None = None
        self.timebase: Timebase | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._init: bytes | None = None
        self._last_end: datetime | None = None
        self._run_segment: Segment | None = None  # first file of the current run, and what it may not move before
        self._run_floor: datetime | None = None
        self._run_gap: GapRecord | None = None
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Reconnect now instead of at the end of the back-off (a pushing camera just started publishing)."""
        self._wake.set()

    @property
    def channel(self):  # noqa: ANN201
        return self.recorder.hub.channel(self.camera_id, self.stream)

    def start(self, last_end: datetime | None = None, open_gap: GapRecord | None = None,
              moved_from: str | None = None) -> None:
        if open_gap is not None:
            self.gap = self.recorder.index.gap(open_gap)  # still going on since the last run
            if moved_from is not None and open_gap.reason == ff.RECORDER_STOPPED:
                self.gap.reason, self.gap.dirty = ff.RECORDER_MOVED, True
                self.gap.message = f"recorder moved from {moved_from}"
        elif self.record and last_end is not None and moved_from is not None:
            # Another recorder node had the camera (it stopped or died): the time since it last wrote is the move.
            self.gap = self.recorder.index.gap(GapRecord(self.camera_id, last_end, ff.RECORDER_MOVED,
                                                         f"recorder moved from {moved_from}"))
        elif self.record and last_end is not None:
            # Whatever happened since the last recorded moment, the recorder was not recording it.
            self.gap = self.recorder.index.gap(GapRecord(self.camera_id, last_end, ff.RECORDER_STOPPED,
                                                         "recorder was not running"))
        self._task = asyncio.create_task(self._run(), name=f"camera-{self.camera_id}-{self.stream}")

    async def stop(self, reason: str = ff.RECORDER_STOPPED, message: str = "recording stopped") -> None:
        self._stopping = True
        if self.ingest:
            await self.ingest.stop()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._close_segment()
        if self.record:
            now = utcnow()
            if self.gap is not None:
                self.gap.end, self.gap.dirty = now, True
                self.gap = self.recorder.index.gap(GapRecord(self.camera_id, now, reason, message))
            elif self._last_end is not None:
                self.gap = self.recorder.index.gap(GapRecord(self.camera_id, self._last_end, reason, message))
        self.health.state = "offline"

    async def _run(self) -> None:
        backoff = BACKOFF_START
        settings = self.recorder.settings.recorder
        while not self._stopping:
            self.health.state = "connecting"
            command = ff.ingest_command(ff.ffmpeg_binary(settings.ffmpeg), self.url, transport=settings.transport,
                                        fragment_seconds=settings.fragment_seconds,
                                        io_timeout_s=settings.stall_seconds)
            self.ingest = Ingest(command, self._on_init, self._on_fragment, settings.stall_seconds)
            attempt_start = utcnow()
            try:
                result = await self.ingest.run()
            except Exception as exc:  # never let one camera take the recorder down
                log.exception("camera %s: ingest crashed", self.camera_id)
                result = None
                reason, message, got_media = ff.INGEST_FAILED, str(exc), False
            else:
                reason, message, got_media = result.reason, result.message, result.got_media
            if self._stopping:
                break
            self._close_segment()
            self.channel.end()
            self.health.state = "offline" if reason in (ff.UNREACHABLE, ff.STREAM_ENDED, ff.STALLED) else "error"
            self.health.reason, self.health.last_error = reason, message
            self.health.connected_since = None
            self.health.reconnects += 1
            if self.record:
                start = self._last_end or attempt_start
                if self.gap is None:
                    self.gap = self.recorder.index.gap(GapRecord(self.camera_id, start, reason, message))
                else:
                    self.gap.reason, self.gap.message, self.gap.dirty = reason, message, True
            log.warning("camera %s: %s (%s); retrying in %.0f s", self.camera_id, reason, message, backoff)
            backoff = BACKOFF_START if got_media else min(backoff * 2, BACKOFF_MAX)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff)

    # --- callbacks from the ingest (run on the event loop) --------------------------------------------------------

    def _on_init(self, init: bytes) -> None:
        self._run_segment, self._run_floor, self._run_gap = None, None, None
        try:
            self.track = parse_init(init)
        except Mp4Error as exc:
            log.warning("camera %s: unreadable init segment: %s", self.camera_id, exc)
            return
        self._init = init
        self.timebase = Timebase(self.track.timescale)
        self.health.codec, self.health.width, self.health.height = self.track.codec, self.track.width, self.track.height
        self.channel.set_init(init)

    def _on_fragment(self, data: bytes) -> None:
        if self.track is None or self.timebase is None:
            return
        arrived = utcnow()
        try:
            info = parse_moof(data)
        except Mp4Error as exc:
            log.warning("camera %s: unreadable fragment dropped: %s", self.camera_id, exc)
            return
        duration = info.duration / self.track.timescale
        start, jumped, shift = self.timebase.place(info.decode_time, duration, arrived)
        if shift and self.record:
            self._move_run_earlier(shift)
        if self._last_end is not None and start < self._last_end - timedelta(milliseconds=1) and not jumped:
            start = self._last_end  # never overlap what is already recorded
        fragment = Fragment(data, info.keyframe, start, duration, info.samples)
        self.health.observe(len(data), info.samples)
        self.health.last_frame_at = arrived
        if self.health.state != "recording":
            self.health.state = "recording"
            self.health.connected_since = arrived
            self.health.reason = None
        self.channel.publish(fragment)
        if self.record:
            self._write(fragment, info.decode_time, jumped, arrived)

    def _move_run_earlier(self, shift: float) -> None:
        """The run's clock moved earlier: move the file of this run being written (and the gap it closed) with it,
        as far as the previous recording allows."""
        seg = self.segment
        if seg is None or seg is not self._run_segment:
            return
        room = (seg.start - self._run_floor).total_seconds() if self._run_floor is not None else shift
        step = timedelta(seconds=max(0.0, min(shift, room)))
        if not step:
            return
        seg.start -= step
        seg.end = seg.end - step if seg.end else seg.end
        seg.dirty = True
        self._last_end = seg.end
        if self._run_gap is not None:
            self._run_gap.end = max(self._run_gap.start, self._run_gap.end - step)
            self._run_gap.dirty = True
            self.recorder.index.gap(self._run_gap)

    def _write(self, fragment: Fragment, decode_time: int, jumped: bool, arrived: datetime) -> None:
        assignment = self.recorder.assignment
        if assignment is not None and not assignment.may_write(self.camera_id):
            # The lease may end before it is renewed: another node may take the camera, so not a byte more here.
            if self.segment is not None:
                self._close_segment()
                self.recorder.request_reload()
            return
        seg = self.segment
        file_seconds = self.recorder.settings.recorder.file_seconds
        if seg is not None and (jumped or (fragment.keyframe and seg.duration >= file_seconds)):
            self._close_segment()
            seg = None
            if not jumped and fragment.keyframe and self.timebase is not None:
                drift = self.timebase.drift(decode_time, fragment.duration, arrived)
                if abs(drift) > DRIFT_SECONDS:
                    observed = arrived - timedelta(seconds=fragment.duration)
                    self.timebase.anchor(decode_time, max(observed, self._last_end or observed))
                    fragment = Fragment(fragment.data, fragment.keyframe, max(observed, self._last_end or observed),
                                        fragment.duration, fragment.samples)
        if seg is None:
            if not fragment.keyframe:
                return  # a file starts at a keyframe
            seg = Segment(self.camera_id, self.recorder.root, fragment.start, self._init or b"", self.track)
            if assignment is not None:
                seg.node, seg.lease_token = assignment.node, assignment.token(self.camera_id)
            try:
                seg.open()
            except OSError as exc:
                self._storage_error(exc)
                return
            self.segment = seg
            self.recorder.index.track(seg)
            if self._run_segment is None:  # the first file of this run may still move earlier (see place())
                self._run_segment = seg
                self._run_floor = self.gap.start if self.gap is not None else self._last_end
        if self.gap is not None:
            self.gap.end = max(fragment.start, self.gap.start)
            self.gap.dirty = True
            self._run_gap = self.gap
            self.gap = None
        try:
            seg.append(fragment, decode_time)
        except OSError as exc:
            self._storage_error(exc)
            return
        self.recorder.bytes_written += len(fragment.data)
        self.health.recorded_bytes += len(fragment.data)
        self.health.recorded_seconds += fragment.duration
        self._last_end = seg.end

    def _storage_error(self, exc: OSError) -> None:
        log.error("camera %s: cannot write recording: %s", self.camera_id, exc)
        self.health.last_error = f"storage: {exc.strerror or exc}"
        self._close_segment()
        self.recorder.request_retention()

    def _close_segment(self) -> None:
        if self.segment is not None:
            self.segment.close()
            self.recorder.index.finish(self.segment)
            self.segment = None


class Recorder:
    """Supervises a ``CameraRecorder`` per enabled camera and an on-demand ingest per watched sub stream."""

    def __init__(self, settings: Settings, db: Database, keys: Keyring,
                 assignment: CameraAssignment | None = None) -> None:
        self.settings = settings
        self.assignment = assignment
        self.db = db
        self.keys = keys
        self.root: Path = settings.recordings_path
        self.index = IndexWriter(db, journal=self.root / JOURNAL)
        self.hub = Hub(on_demand=self._on_demand)
        self.cameras: dict[int, CameraRecorder] = {}
        self.substreams: dict[int, CameraRecorder] = {}
        self.urls: dict[int, tuple[str, str | None]] = {}
        self.bytes_written = 0
        self._reload_task: asyncio.Task | None = None
        self._retention_wanted = asyncio.Event()
        self._reload_wanted = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        if assignment is not None:
            assignment.recording = lambda: set(self.cameras)
            assignment.on_change = self.request_reload

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.root.mkdir(parents=True, exist_ok=True)
        replayed = await asyncio.to_thread(replay_journal, self.db, self.root / JOURNAL)
        if replayed:
            log.info("wrote %d index rows the last run could not write while the database was away", replayed)
        node = self.assignment.node if self.assignment is not None else None
        repaired = await asyncio.to_thread(repair_open_segments, self.db, self.root, node)
        if repaired:
            log.info("repaired %d recordings left open by the last run", repaired)
        stale = await asyncio.to_thread(close_stale_gaps, self.db)
        if stale:
            log.info("closed %d gaps earlier runs left open", stale)
        await self.index.start()
        await self.reload()
        self._reload_task = asyncio.create_task(self._reload_loop())

    async def stop(self) -> None:
        if self._reload_task:
            self._reload_task.cancel()
        await asyncio.gather(*(c.stop() for c in list(self.cameras.values()) + list(self.substreams.values())))
        self.cameras.clear()
        self.substreams.clear()
        await self.index.stop()

    def health(self, camera_id: int) -> dict | None:
        rec = self.cameras.get(camera_id)
        return rec.health.as_dict() if rec else None

    def wake(self, camera_id: int) -> None:
        """Let a camera reconnect at once (from any thread): a pushing camera has just started publishing."""
        rec = self.cameras.get(camera_id)
        if rec is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(rec.wake)

    def request_retention(self) -> None:
        self._retention_wanted.set()

    def request_reload(self) -> None:
        """Look again at which cameras to record, soon (from any thread: the lease keeper calls it)."""
        if self._loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._reload_wanted.set()
        else:
            self._loop.call_soon_threadsafe(self._reload_wanted.set)

    def _open_gaps(self) -> dict[int, GapRecord]:
        """Gaps a previous run left open: they go on until this run records again."""
        with self.db.session() as session:
            return {g.camera_id: GapRecord(g.camera_id, g.start_at, g.reason, g.message, row_id=g.id, dirty=False)
                    for g in session.scalars(select(Gap).where(Gap.end_at.is_(None)).order_by(Gap.start_at))}

    def _last_ends(self) -> dict[int, datetime]:
        with self.db.session() as session:
            return dict(session.execute(select(Recording.camera_id, func.max(Recording.end_at))
                                        .group_by(Recording.camera_id)).all())

    def _enabled(self) -> dict[int, tuple[str, str | None]]:
        from kuzet.services.cameras import stream_url

        out = {}
        with self.db.session() as session:
            for cam in session.scalars(select(Camera).where(Camera.enabled.is_(True))):
                try:
                    out[cam.id] = (stream_url(cam, self.keys, "main"), stream_url(cam, self.keys, "sub"))
                except Exception as exc:  # an undecryptable camera must not stop the others
                    log.error("camera %s: cannot read its stream URL: %s", cam.id, exc)
        return out

    async def reload(self) -> None:
        wanted = await asyncio.to_thread(self._enabled)
        last_ends = await asyncio.to_thread(self._last_ends)
        open_gaps = await asyncio.to_thread(self._open_gaps)
        handed_over: dict[int, GapRecord] = {}
        enabled = wanted
        if self.assignment is not None:  # several recorders: only the cameras this one holds a lease on
            wanted = {c: u for c, u in wanted.items() if self.assignment.holds(c)}
        given_up = []
        for camera_id in [c for c in self.cameras if c not in wanted or wanted[c] != self.urls.get(c)]:
            stopped = self.cameras.pop(camera_id)
            if camera_id in enabled and camera_id not in wanted:  # still enabled: another recorder takes it
                await stopped.stop(ff.RECORDER_MOVED, "recorder moved: lease given up")
                given_up.append(camera_id)
                continue
            await stopped.stop()
            if stopped.gap is not None:  # the camera's gap from now: a new stream URL records on and closes it
                handed_over[camera_id] = stopped.gap
            sub = self.substreams.pop(camera_id, None)
            if sub:
                await sub.stop()
        if given_up:
            for camera_id in given_up:
                sub = self.substreams.pop(camera_id, None)
                if sub:
                    await sub.stop()
            with contextlib.suppress(Exception):  # its last rows are written before another node takes over
                await self.index.flush()
        self.urls = wanted
        if not self.settings.recorder.enabled:
            return
        for camera_id, (main, _sub) in wanted.items():
            if camera_id not in self.cameras:
                rec = CameraRecorder(self, camera_id, main)
                self.cameras[camera_id] = rec
                moved = self.assignment.moved_from(camera_id) if self.assignment is not None else None
                rec.start(last_ends.get(camera_id), handed_over.get(camera_id) or open_gaps.get(camera_id), moved)

    async def _reload_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reload_wanted.wait(), 10)
            self._reload_wanted.clear()
            try:
                await self.reload()
            except Exception:
                log.exception("camera reload failed")

    def has_sub_stream(self, camera_id: int) -> bool:
        """Whether this recorder knows a sub stream URL for the camera (for ``watching.streams.resolve_stream``)."""
        urls = self.urls.get(camera_id)
        return urls is not None and urls[1] is not None

    async def _on_demand(self, camera_id: int, stream: str, wanted: bool) -> None:
        if stream != "sub":
            return
        urls = self.urls.get(camera_id)
        if wanted and camera_id not in self.substreams and urls and urls[1]:
            rec = CameraRecorder(self, camera_id, urls[1], record=False, stream="sub")
            self.substreams[camera_id] = rec
            rec.start()
        elif not wanted and camera_id in self.substreams:
            await self.substreams.pop(camera_id).stop()
