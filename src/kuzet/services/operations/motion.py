"""Motion: which parts of a camera's picture change, and when that becomes a motion interval.

``MotionDetector`` compares each analysed grey frame with a running average of the scene (OpenCV's
``accumulateWeighted``) on a small copy of the picture (~320 px wide: a sub stream's people are still a few dozen
pixels, and the cost per frame stays a fraction of a millisecond). Changed pixels are thresholded by the camera's
sensitivity, masks blank out what must never count (a tree, a road, a neighbour's window), dilation joins the parts of
one moving thing, and the outer contours no smaller than ``min_area`` are the moving blobs (``findContours``: 20x
cheaper here than ``connectedComponentsWithStats``). When zones are drawn, motion outside
every zone does not count. A change of most of the picture at once (IR switching to night mode, lightning, auto
exposure, a camera knocked) is not motion: the background is re-learnt at once and for a moment after.

``MotionIntervals`` turns per-frame results into intervals, the debouncing no library does for us: an interval starts
after motion in 2 of the last 3 analysed frames (one noisy frame is not an event), ends after 2 s without motion, and
reports ``start`` (with a JPEG snapshot), ``update`` at least every second (alarm rules have a minimum duration) and
``end`` observations.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np

from kuzet.services.operations.observations import Observation

Box = tuple[float, float, float, float]  # x, y, w, h in 0..1 of the picture


@dataclass(frozen=True)
class Zone:
    """A named polygon of the picture: a ``zone`` names where motion is, a ``mask`` hides what never counts."""

    name: str
    kind: str  # zone | mask
    points: tuple[tuple[float, float], ...]  # x, y in 0..1 of the picture

    @classmethod
    def parse(cls, items: Iterable[dict] | None) -> list[Zone]:
        """Zones from the settings' JSON (``[{"name", "kind", "points"}]``); polygons of fewer than 3 points are
        ignored, unknown kinds raise ``ValueError``."""
        zones = []
        for k, item in enumerate(items or []):
            kind = item.get("kind", "zone")
            if kind not in ("zone", "mask"):
                raise ValueError(f"zone {item.get('name')!r}: kind must be 'zone' or 'mask', not {kind!r}")
            points = tuple((float(x), float(y)) for x, y in item.get("points") or [])
            if len(points) >= 3:
                zones.append(cls(str(item.get("name") or f"{kind}{k + 1}"), kind, points))
        return zones


@dataclass(frozen=True)
class Blob:
    box: Box
    area: float  # fraction of the picture (after dilation)
    zones: tuple[str, ...]


@dataclass(frozen=True)
class MotionResult:
    motion: bool
    blobs: list[Blob] = field(default_factory=list)
    changed: float = 0.0  # fraction of the watched picture whose difference passed the threshold
    suppressed: bool = False  # a whole-picture change (or the moment after it): not reported as motion

    @property
    def zones(self) -> set[str]:
        return {z for b in self.blobs for z in b.zones}

    @property
    def box(self) -> Box | None:
        return union([b.box for b in self.blobs])


def union(boxes: Iterable[Box | None]) -> Box | None:
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return (x0, y0, x1 - x0, y1 - y0)


def threshold_for(sensitivity: int) -> int:
    """Grey-level difference that counts as change: 48 at sensitivity 1, 24 at the default 60, 8 at 100."""
    s = min(100, max(1, int(sensitivity)))
    return round(8 + (100 - s) * 0.4)


class MotionDetector:
    """Frame differencing against a running average of the scene, on a small grey copy of the picture."""

    def __init__(self, sensitivity: int = 60, min_area: float = 0.002, zones: Iterable[Zone] = (), *,
                 width: int = 320, learn_seconds: float = 3.0, global_change: float = 0.35,
                 relearn_seconds: float = 1.0) -> None:
        self.threshold = threshold_for(sensitivity)
        self.min_area = max(0.0, float(min_area))
        self.zones = list(zones)
        self.width = width
        self.learn_seconds = learn_seconds  # time constant of the background average
        self.global_change = global_change  # this fraction changing at once is a picture change, not motion
        self.relearn_seconds = relearn_seconds
        self._shape: tuple[int, int] | None = None  # (height, width) of the pictures fed
        self._size: tuple[int, int] | None = None  # (width, height) of the small picture
        self._background: np.ndarray | None = None  # float32
        self._last: float | None = None
        self._relearn_until = -math.inf
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) of the small picture the detector works on, once it has seen a frame."""
        return self._size

    def reset(self) -> None:
        """Forget the background (e.g. the stream changed resolution)."""
        self._size = None
        self._background = None
        self._last = None

    def _prepare(self, shape: tuple[int, int]) -> None:
        height, width = shape
        # An integer factor (1920 → 320, 768 → 384): OpenCV's area resize has a fast path for it, 10x cheaper.
        factor = max(1, round(width / self.width))
        w, h = max(1, width // factor), max(1, height // factor)
        self._size = (w, h)
        self._watch = np.full((h, w), 255, np.uint8)
        self._zone_masks: list[tuple[str, np.ndarray]] = []
        for zone in self.zones:
            poly = np.array([[round(x * w), round(y * h)] for x, y in zone.points], np.int32)
            if zone.kind == "mask":
                cv2.fillPoly(self._watch, [poly], 0)
        for zone in self.zones:
            if zone.kind == "zone":
                canvas = np.zeros((h, w), np.uint8)
                cv2.fillPoly(canvas, [np.array([[round(x * w), round(y * h)] for x, y in zone.points], np.int32)], 255)
                self._zone_masks.append((zone.name, cv2.bitwise_and(canvas, self._watch)))
        self._watched = max(1, int(np.count_nonzero(self._watch)))
        self._has_mask = self._watched < w * h
        self._min_pixels = max(1, self.min_area * w * h)

    def small(self, grey: np.ndarray) -> np.ndarray:
        """The picture as the detector sees it: downscaled and slightly blurred against sensor noise."""
        if self._size is None or grey.shape[:2] != self._shape:
            self._shape = grey.shape[:2]
            self._prepare(self._shape)
            self._background = None
        w, h = self._size
        img = grey if (grey.shape[1], grey.shape[0]) == (w, h) else cv2.resize(grey, (w, h),
                                                                               interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(img, (5, 5), 0)

    def apply(self, grey: np.ndarray, at: float) -> MotionResult:
        """One analysed frame (grey, any size) at ``at`` seconds (any monotonic clock): what moved."""
        img = self.small(grey)
        dt = 0.2 if self._last is None else min(5.0, max(0.0, at - self._last))
        self._last = at
        if self._background is None:
            self._background = img.astype(np.float32)
            return MotionResult(False)
        diff = cv2.absdiff(img, cv2.convertScaleAbs(self._background))
        _, changed = cv2.threshold(diff, self.threshold, 255, cv2.THRESH_BINARY)
        if self._has_mask:
            changed = cv2.bitwise_and(changed, self._watch)
        fraction = cv2.countNonZero(changed) / self._watched
        if fraction >= self.global_change:
            # The whole picture changed (IR switch, lightning, exposure): take it as the new background.
            self._background = img.astype(np.float32)
            self._relearn_until = at + self.relearn_seconds
            return MotionResult(False, changed=fraction, suppressed=True)
        relearning = at < self._relearn_until
        alpha = 0.5 if relearning else 1.0 - math.exp(-dt / self.learn_seconds)
        cv2.accumulateWeighted(img, self._background, alpha)
        if relearning:
            return MotionResult(False, changed=fraction, suppressed=True)
        if fraction * self._watched < self._min_pixels / 25:  # a changed pixel dilates to 5x5 at most: no blob
            return MotionResult(False, changed=fraction)
        blobs = self._blobs(cv2.dilate(changed, self._kernel, iterations=2))
        return MotionResult(bool(blobs), blobs, fraction)

    def _blobs(self, mask: np.ndarray) -> list[Blob]:
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        w, h = self._size
        blobs = []
        for contour in contours:
            area = cv2.contourArea(contour)
            if area < self._min_pixels:
                continue
            x, y, bw, bh = cv2.boundingRect(contour)
            zones: tuple[str, ...] = ()
            if self._zone_masks:
                shape = np.zeros((bh, bw), np.uint8)
                cv2.drawContours(shape, [contour], -1, 255, cv2.FILLED, offset=(-x, -y))
                zones = tuple(name for name, zone in self._zone_masks
                              if cv2.countNonZero(cv2.bitwise_and(shape, zone[y:y + bh, x:x + bw])))
                if not zones:
                    continue  # motion outside every zone does not count
            blobs.append(Blob((x / w, y / h, bw / w, bh / h), area / (w * h), zones))
        return blobs


@dataclass
class _Interval:
    key: str
    start: datetime
    last_motion: datetime
    last_emit: datetime
    zones: list[str] = field(default_factory=list)
    box: Box | None = None
    peak: float = 0.0
    frames: int = 0


class MotionIntervals:
    """Per-frame motion results of one camera → motion observations (start / update / end)."""

    def __init__(self, camera_id: int, sink: Callable[[Observation], None], *, start_votes: int = 2,
                 window: int = 3, end_after: float = 2.0, update_every: float = 1.0) -> None:
        self.camera_id = camera_id
        self.sink = sink
        self.start_votes = start_votes
        self.end_after = end_after
        self.update_every = update_every
        self._recent: deque[tuple[datetime, MotionResult]] = deque(maxlen=window)
        self.current: _Interval | None = None

    @property
    def active(self) -> bool:
        return self.current is not None

    def feed(self, at: datetime, result: MotionResult, snapshot: Callable[[], bytes | None] | None = None) -> None:
        """One analysed frame's result; ``snapshot`` makes the JPEG of this frame if an interval starts here."""
        self._recent.append((at, result))
        current = self.current
        if current is None:
            moving = [(t, r) for t, r in self._recent if r.motion]
            if len(moving) < self.start_votes:
                return
            start = moving[0][0]
            key = f"motion-{round(start.timestamp() * 1000)}"
            current = self.current = _Interval(key, start, moving[-1][0], at)
            for _t, r in moving:
                self._absorb(current, r)
            self.sink(self._observation(current, "start", snapshot=snapshot() if snapshot else None))
            return
        if result.motion:
            current.last_motion = at
            self._absorb(current, result)
        if (at - current.last_motion).total_seconds() >= self.end_after:
            self._end(current.last_motion)
        elif (at - current.last_emit).total_seconds() >= self.update_every - 0.1:
            # 0.1 s early rather than one analysed frame late: updates come at least every ``update_every``.
            current.last_emit = at
            self.sink(self._observation(current, "update", at=at))

    def close(self, at: datetime) -> None:
        """End the open interval (the stream stopped or the pipeline closes)."""
        if self.current is not None:
            self._end(self.current.last_motion)
        self._recent.clear()

    def _end(self, end: datetime) -> None:
        current, self.current = self.current, None
        self._recent.clear()
        if current is not None:
            self.sink(self._observation(current, "end", at=end, end=end))

    @staticmethod
    def _absorb(current: _Interval, result: MotionResult) -> None:
        current.frames += 1
        current.peak = max(current.peak, sum(b.area for b in result.blobs))
        current.box = union([current.box, result.box])
        for zone in sorted(result.zones):
            if zone not in current.zones:
                current.zones.append(zone)

    def _observation(self, current: _Interval, phase: str, *, at: datetime | None = None,
                     end: datetime | None = None, snapshot: bytes | None = None) -> Observation:
        seen_until = at or current.last_motion
        return Observation(
            camera_id=self.camera_id, kind="motion", phase=phase, key=current.key, start=current.start, end=end,
            at=seen_until, zones=list(current.zones), box=current.box, snapshot=snapshot,
            score=round(min(1.0, current.peak), 4),
            details={"last_motion": current.last_motion.isoformat(), "at": seen_until.isoformat(),
                     "duration": round((current.last_motion - current.start).total_seconds(), 3),
                     "frames": current.frames})
