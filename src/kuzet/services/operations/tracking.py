"""Objects followed across frames, so one person crossing a yard is one event and not one per detection.

Association and motion prediction are norfair's (a Kalman filter per track and a matching of detections to tracks);
what is ours is the event life cycle around it: a track becomes an ``object`` observation when norfair confirms it
(seen in two detection rounds), reports ``update`` at least every second while it lives, and ``end`` once norfair
drops it, with the best sighting (highest score) as the snapshot and box.

Detection runs only a few times a second (``object_fps``) and only on motion, so between two rounds a walking person
can move further than their own width: boxes rarely overlap, and IoU matching would start a new track each round.
The distance is therefore the gap between box centres divided by the box height, which tolerates a person moving up
to about a body height per round.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np
from norfair import Detection as NorfairDetection
from norfair import TrackedObject, Tracker

from kuzet.services.operations.objects import Detection, PixelBox
from kuzet.services.operations.observations import Observation

Box = tuple[float, float, float, float]


class _NoScalarAdvice(logging.Filter):
    """norfair logs advice to use a vectorised distance for every tracker made with a Python one; a camera has a
    handful of objects at a time, where the scalar distance costs microseconds, and a tracker per camera would repeat
    the advice for every camera."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "scalar distance function" not in record.getMessage()


logging.getLogger("norfair.tracker").addFilter(_NoScalarAdvice())


def jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    """JPEG of a BGR (or grey) picture."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def normalise(box: PixelBox, width: int, height: int) -> Box:
    x, y, w, h = box
    return (round(x / width, 4), round(y / height, 4), round(w / width, 4), round(h / height, 4))


def centre_distance(detection: NorfairDetection, tracked: TrackedObject) -> float:
    """Distance between box centres over the larger box height (0 = same place, 1 = one body height apart)."""
    det, est = detection.points, tracked.estimate
    dcx, dcy = (det[0] + det[1]) / 2
    ecx, ecy = (est[0] + est[1]) / 2
    size = max(det[1][1] - det[0][1], est[1][1] - est[0][1], 1.0)
    return float(math.hypot(dcx - ecx, dcy - ecy) / size)


@dataclass
class _Track:
    obj: TrackedObject  # kept so its id() is not reused while we know it
    label: str
    first_at: datetime
    last_seen: datetime
    best_score: float = -1.0
    best_box: PixelBox = (0, 0, 0, 0)
    best_at: datetime | None = None
    best_frame: np.ndarray | None = None
    last_box: PixelBox = (0, 0, 0, 0)
    size: tuple[int, int] = (1, 1)  # width, height of the picture
    sightings: int = 0
    key: str | None = None  # set once confirmed (observation started)
    last_emit: datetime | None = None
    zones: list[str] = field(default_factory=list)


class ObjectTracker:
    """Detections of one camera, round after round → object observations (start / update / end).

    ``rate`` is how many detection rounds run per second (``object_fps``): a track is lost after ``lost_after``
    seconds of rounds without it. ``zones_of`` names the zones a normalised box is in (the pipeline's zones).
    """

    def __init__(self, camera_id: int, sink: Callable[[Observation], None], *, rate: float = 2.0,
                 lost_after: float = 3.0, max_distance: float = 1.0, update_every: float = 1.0,
                 zones_of: Callable[[Box], list[str]] | None = None) -> None:
        self.camera_id = camera_id
        self.sink = sink
        self.update_every = update_every
        self.zones_of = zones_of
        hit_max = max(2, round(lost_after * rate) - 1)
        self._tracker = Tracker(distance_function=centre_distance, distance_threshold=max_distance,
                                hit_counter_max=hit_max, initialization_delay=1, past_detections_length=0)
        self._tracks: dict[int, _Track] = {}
        self._round = 0

    @property
    def active(self) -> bool:
        """Whether any object is being followed (the pipeline keeps running rounds until they are lost)."""
        return bool(self._tracks)

    def update(self, at: datetime, detections: list[Detection], frame: np.ndarray | None) -> None:
        """One detection round at ``at`` on ``frame`` (BGR; kept for the best sighting's snapshot)."""
        self._round += 1
        height, width = frame.shape[:2] if frame is not None else (1, 1)
        items = [NorfairDetection(np.array([[x, y], [x + w, y + h]], float), label=d.label,
                                  data={"round": self._round, "detection": d})
                 for d in detections for x, y, w, h in [d.box]]
        self._tracker.update(items)
        alive = set()
        for obj in self._tracker.tracked_objects:
            alive.add(id(obj))
            data = obj.last_detection.data or {}
            track = self._tracks.get(id(obj))
            if track is None:
                track = self._tracks[id(obj)] = _Track(obj, str(obj.label), at, at)
            if data.get("round") != self._round:
                continue  # not seen in this round
            d: Detection = data["detection"]
            track.last_seen = at
            track.last_box = d.box
            track.size = (width, height)
            track.sightings += 1
            if self.zones_of is not None:
                for zone in self.zones_of(normalise(d.box, width, height)):
                    if zone not in track.zones:
                        track.zones.append(zone)
            if d.score > track.best_score:
                track.best_score, track.best_box, track.best_at, track.best_frame = d.score, d.box, at, frame
            if track.key is None and not obj.is_initializing:
                track.key = f"track-{round(track.first_at.timestamp() * 1000)}-{obj.id}"
                track.last_emit = at
                self.sink(self._observation(track, "start", at, snapshot=True))
        for ident in [i for i in self._tracks if i not in alive]:
            self._finish(self._tracks.pop(ident))

    def tick(self, at: datetime) -> None:
        """Called on every analysed frame: ``update`` observations for the tracks due one."""
        for track in self._tracks.values():
            if track.key is not None and track.last_emit is not None \
                    and (at - track.last_emit).total_seconds() >= self.update_every - 0.1:
                track.last_emit = at
                self.sink(self._observation(track, "update", at))

    def close(self, at: datetime) -> None:
        """End every track (the stream stopped or the pipeline closes)."""
        tracks, self._tracks = self._tracks, {}
        for track in tracks.values():
            self._finish(track)

    def _finish(self, track: _Track) -> None:
        if track.key is not None:
            self.sink(self._observation(track, "end", track.last_seen, end=track.last_seen, snapshot=True))
        track.best_frame = None

    def _observation(self, track: _Track, phase: str, at: datetime, *, end: datetime | None = None,
                     snapshot: bool = False) -> Observation:
        width, height = track.size
        image = None
        if snapshot and track.best_frame is not None:
            image = jpeg(track.best_frame)
        return Observation(
            camera_id=self.camera_id, kind="object", phase=phase, key=track.key or "", start=track.first_at, end=end,
            at=at, label=track.label, score=round(track.best_score, 4), zones=list(track.zones),
            box=normalise(track.best_box, width, height), snapshot=image,
            details={"at": at.isoformat(), "last_seen": track.last_seen.isoformat(),
                     "best_at": track.best_at.isoformat() if track.best_at else None,
                     "last_box": list(normalise(track.last_box, width, height)), "sightings": track.sightings,
                     "duration": round((track.last_seen - track.first_at).total_seconds(), 3)})
