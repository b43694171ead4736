"""One camera's analysis: fMP4 fragments in, observations (motion, objects, plates) out.

``CameraPipeline.process(init, fragment)`` is called from a worker thread of the analysis service, in order and never
concurrently for one camera. Every frame is decoded (later frames depend on earlier ones), but only ``fps`` frames a
second, chosen by wall time, are analysed:

1. motion on the grey picture (plane 0 of the decoded frame, no colour conversion) — always, it is the gate;
2. objects (``objects.py`` + ``tracking.py``), only on frames with motion and at most ``object_fps`` times a second;
3. plates (``anpr.PlateReader``), only when ANPR is on, on frames with motion, at most ``plate_fps`` times a second;
   the same plate read again within 30 s on the same camera is one observation with the best reading.

Costs (``kuzet bench motion``, 640x360 25 fps sub streams analysed at 5 fps, decode included): ~0.9-1.0 % of a core
per stream with OpenCV's own thread pool off (``cv2.setNumThreads(1)``, worth doing in a process whose analysis
threads already keep every core busy), ~1.1 % with OpenCV's default; decoding alone is ~0.65-0.8 %.

The colour picture is made only when a detector, a plate reader or a snapshot needs it. Bad data (an unreadable
fragment, a sample the codec refuses, an init segment of an unsupported codec) is logged and skipped: a broken
camera never takes its worker thread or the process down.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import av
import cv2
import numpy as np

from kuzet.services.operations.decode import DecodeError, FragmentDecoder, bgr, luma
from kuzet.services.operations.motion import MotionDetector, MotionIntervals, MotionResult, Zone
from kuzet.services.operations.objects import Detector, DetectorUnavailable, PixelBox, make_detector
from kuzet.services.operations.observations import Observation, ObservationSink
from kuzet.services.operations.tracking import ObjectTracker, jpeg, normalise
from kuzet.services.recording.hub import Fragment

log = logging.getLogger(__name__)


class PlateReading(Protocol):
    """What ``anpr.PlateReader.read`` returns per plate (typed here so this module does not import anpr)."""

    text: str
    plate: str
    region: str | None
    score: float
    box: tuple[int, int, int, int]


class PlateReader(Protocol):
    def read(self, image: np.ndarray) -> Sequence[PlateReading]: ...


@dataclass
class AnalysisConfig:
    """How one camera is analysed: its ``CameraAnalysis`` row (or the defaults) plus the installation's settings."""

    motion: bool = True  # report motion intervals (motion is always computed: it gates the rest)
    fps: float = 5.0
    sensitivity: int = 60
    min_area: float = 0.002
    zones: list[Zone] = field(default_factory=list)
    objects: bool = False
    detector: str = "hog"
    anpr: bool = False
    object_fps: float = 2.0
    plate_fps: float = 2.0
    onnx_model: Path | None = None
    onnx_labels: list[str] | None = None
    plate_window: float = 30.0  # one observation per plate per camera within this many seconds

    @classmethod
    def from_settings(cls, row: Any | None, ops: Any | None = None) -> AnalysisConfig:
        """From a ``CameraAnalysis`` row (None: defaults, motion only) and ``OperationsConfig`` (None: defaults)."""
        config = cls()
        if ops is not None:
            config.object_fps = float(ops.object_fps)
            config.plate_fps = float(ops.plate_fps)
            config.onnx_model = ops.onnx_model
            config.onnx_labels = list(ops.onnx_labels) if ops.onnx_labels else None
        if row is not None:
            config.motion = bool(row.motion) if row.motion is not None else True
            config.fps = float(row.fps or 5.0)
            config.sensitivity = int(row.sensitivity if row.sensitivity is not None else 60)
            config.min_area = float(row.min_area if row.min_area is not None else 0.002)
            config.zones = Zone.parse(row.zones)
            config.objects = bool(row.objects)
            config.detector = row.detector or "hog"
            config.anpr = bool(row.anpr)
        return config


class _Every:
    """A rate limit by wall time: due at most ``rate`` times a second, keeping the cadence."""

    def __init__(self, rate: float) -> None:
        self.period = 1.0 / rate if rate > 0 else 0.0
        self._next: float | None = None

    def due(self, at: float) -> bool:
        slack = 0.002  # frame times are exact to the microsecond, epoch seconds in a float are not
        if self._next is not None and at + slack < self._next:
            if self._next - at <= self.period + 1.0:
                return False
            self._next = None  # the clock went backwards (a new upstream): start again
        if self._next is None or at - self._next > self.period:
            self._next = at + self.period  # first frame, or after a gap
        else:
            self._next += self.period
        return True


@dataclass
class _PendingPlate:
    reading: PlateReading
    at: datetime
    frame: np.ndarray
    first_at: datetime
    last_at: datetime
    readings: int = 1


class PlateDeduplicator:
    """Readings of one camera → one ``plate`` observation per plate per ``window`` seconds, with the best reading.

    A plate is reported once it has not been read for ``settle`` seconds (the vehicle has passed) or ``window``
    seconds after its first reading, whichever is first; readings of it within ``window`` of that first reading are
    then dropped.
    """

    def __init__(self, camera_id: int, sink: ObservationSink, *, window: float = 30.0, settle: float = 2.0) -> None:
        self.camera_id = camera_id
        self.sink = sink
        self.window = window
        self.settle = settle
        self._pending: dict[str, _PendingPlate] = {}
        self._reported: dict[str, datetime] = {}  # plate -> first reading of its last report

    def add(self, at: datetime, readings: Sequence[PlateReading], frame: np.ndarray) -> None:
        for reading in readings:
            plate = reading.plate or reading.text
            if not plate:
                continue
            reported = self._reported.get(plate)
            if reported is not None and (at - reported).total_seconds() < self.window:
                continue
            pending = self._pending.get(plate)
            if pending is None:
                self._pending[plate] = _PendingPlate(reading, at, frame, at, at)
                continue
            pending.last_at = at
            pending.readings += 1
            if reading.score > pending.reading.score:
                pending.reading, pending.at, pending.frame = reading, at, frame

    def flush(self, at: datetime, *, everything: bool = False) -> None:
        for plate, pending in list(self._pending.items()):
            if everything or (at - pending.last_at).total_seconds() >= self.settle \
                    or (at - pending.first_at).total_seconds() >= self.window:
                del self._pending[plate]
                self._reported[plate] = pending.first_at
                self.sink(self._observation(pending))
        for plate, first in list(self._reported.items()):
            if (at - first).total_seconds() >= self.window:
                del self._reported[plate]

    def _observation(self, pending: _PendingPlate) -> Observation:
        r = pending.reading
        height, width = pending.frame.shape[:2]
        x, y, w, h = (int(v) for v in r.box)
        pad_x, pad_y = max(4, w // 8), max(4, h // 4)
        crop = pending.frame[max(0, y - pad_y):min(height, y + h + pad_y), max(0, x - pad_x):min(width, x + w + pad_x)]
        return Observation(
            camera_id=self.camera_id, kind="plate", phase="end",
            key=f"plate-{r.plate or r.text}-{round(pending.at.timestamp() * 1000)}", start=pending.at, end=pending.at,
            label="plate", score=round(float(r.score), 4), box=normalise((x, y, w, h), width, height),
            snapshot=jpeg(pending.frame), crop=jpeg(crop) if crop.size else None, plate=r.plate or None,
            plate_region=r.region,
            details={"text": r.text, "readings": pending.readings, "first_at": pending.first_at.isoformat(),
                     "last_at": pending.last_at.isoformat()})


class CameraPipeline:
    """Decode and analyse one camera stream; observations go to ``sink`` (called from the worker thread)."""

    def __init__(self, camera_id: int, config: AnalysisConfig, sink: ObservationSink, *,
                 detector: Detector | None = None, plate_reader: PlateReader | None = None) -> None:
        self.camera_id = camera_id
        self.config = config
        self.sink = sink
        self.warnings: list[str] = []
        if config.objects and detector is None:
            try:
                detector = make_detector(config.detector, config)
            except (DetectorUnavailable, ValueError) as exc:
                self._warn(f"camera {camera_id}: object detection is off: {exc}")
        self.detector = detector if config.objects else None
        self.plate_reader = plate_reader if config.anpr else None
        self.motion = MotionDetector(config.sensitivity, config.min_area, config.zones)
        self.intervals = MotionIntervals(camera_id, sink)
        zones = [z for z in config.zones if z.kind == "zone"]
        self.tracker = ObjectTracker(camera_id, sink, rate=config.object_fps,
                                     zones_of=(lambda box: zones_of(zones, box)) if zones else None)
        self.plates = PlateDeduplicator(camera_id, sink, window=config.plate_window)
        self._analyse_every = _Every(config.fps)
        self._detect_every = _Every(config.object_fps)
        self._plate_every = _Every(config.plate_fps)
        self._init: bytes | None = None
        self._decoder: FragmentDecoder | None = None
        self.stats = {"fragments": 0, "frames": 0, "analysed": 0, "motion_frames": 0, "detections": 0,
                      "plate_reads": 0, "errors": 0}

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        if len(self.warnings) > 20:
            del self.warnings[:-20]
        log.warning("%s", message)

    def _want(self, at: datetime) -> bool:
        self.stats["frames"] += 1
        return self._analyse_every.due(at.timestamp())

    def process(self, init: bytes, fragment: Fragment) -> None:
        """Decode one fragment (re-creating the decoder when the init segment changes) and analyse its frames."""
        self.stats["fragments"] += 1
        frames: list[tuple[datetime, av.VideoFrame]] = []
        if init != self._init:
            if self._decoder is not None:
                frames.extend(self._decoder.flush(self._want))
            self._init = init
            self._decoder = None
            try:
                self._decoder = FragmentDecoder(init)
            except DecodeError as exc:
                self._error(f"camera {self.camera_id}: {exc}")
            except av.FFmpegError as exc:
                self._error(f"camera {self.camera_id}: no decoder: {exc}")
        if self._decoder is not None:
            try:
                frames.extend(self._decoder.decode(fragment, self._want))
            except DecodeError as exc:
                self._error(f"camera {self.camera_id}: fragment at {fragment.start.isoformat()} skipped: {exc}")
        for at, frame in frames:
            try:
                self._analyse(at, frame)
            except Exception:  # a bug or a picture OpenCV cannot take must not stop the camera's analysis
                self.stats["errors"] += 1
                log.exception("camera %d: analysing the frame at %s failed", self.camera_id, at.isoformat())

    def close(self, at: datetime) -> None:
        """The stream ends: analyse what the decoder still holds, then end open intervals, tracks and plates."""
        if self._decoder is not None:
            for when, frame in self._decoder.flush(self._want):
                try:
                    self._analyse(when, frame)
                except Exception:
                    log.exception("camera %d: analysing the frame at %s failed", self.camera_id, when.isoformat())
            self._decoder = None
            self._init = None
        self.intervals.close(at)
        self.tracker.close(at)
        self.plates.flush(at, everything=True)

    def _error(self, message: str) -> None:
        self.stats["errors"] += 1
        n = self.stats["errors"]
        if n <= 3 or n % 100 == 0:  # a camera sending garbage would otherwise fill the log
            log.warning("%s (error %d)", message, n)

    def _analyse(self, at: datetime, frame: av.VideoFrame) -> None:
        self.stats["analysed"] += 1
        seconds = at.timestamp()
        result = self.motion.apply(luma(frame), seconds)
        colour: list[np.ndarray] = []

        def picture() -> np.ndarray:
            if not colour:
                colour.append(bgr(frame))
            return colour[0]

        if result.motion:
            self.stats["motion_frames"] += 1
        if self.config.motion:
            self.intervals.feed(at, result, snapshot=lambda: jpeg(picture()))
        if self.detector is not None and (result.motion or self.tracker.active) and self._detect_every.due(seconds):
            if result.motion:
                detections = self.detector.detect(picture(), regions_of(result, frame.width, frame.height))
                self.stats["detections"] += 1
                self.tracker.update(at, detections, picture())
            else:  # nothing moves: no detector, but the round counts so tracks of what left are ended
                self.tracker.update(at, [], None)
        self.tracker.tick(at)
        if self.plate_reader is not None and result.motion and self._plate_every.due(seconds):
            self.stats["plate_reads"] += 1
            self.plates.add(at, self.plate_reader.read(picture()), picture())
        self.plates.flush(at)


def regions_of(result: MotionResult, width: int, height: int) -> list[PixelBox]:
    """The motion blobs of a result in pixels of the full picture."""
    return [(int(b.box[0] * width), int(b.box[1] * height), max(1, round(b.box[2] * width)),
             max(1, round(b.box[3] * height))) for b in result.blobs]


def zones_of(zones: list[Zone], box: tuple[float, float, float, float]) -> list[str]:
    """Named zones holding the bottom middle of a normalised box (where a person stands or a vehicle touches)."""
    x, y, w, h = box
    foot = (x + w / 2, y + h)
    return [z.name for z in zones
            if cv2.pointPolygonTest(np.array(z.points, np.float32), foot, False) >= 0]
