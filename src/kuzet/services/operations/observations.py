"""What a camera's analysis pipeline reports, before anything is stored.

The pipeline (``pipeline.py``) turns a camera's fMP4 fragments into observations; the analysis service
(``analysis.py``) stores them as events (``store/models/operations.py: Event``), raises alarms and publishes them.
The boundary keeps decoding and detection free of the database.

An observation with ``phase="start"`` opens something that lasts (a motion interval, a tracked object); later
observations with the same ``key`` update (``"update"``) and close it (``"end"``). A read plate is reported once,
with ``phase="end"`` and ``start`` = ``end``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Observation:
    camera_id: int
    kind: str  # motion | object | plate   (domain.operations.EventKind)
    phase: str  # start | update | end
    key: str  # stable within the camera across start / update / end of one thing, e.g. "motion-17", "track-5"
    start: datetime  # wall-clock UTC of the first frame it was seen in
    end: datetime | None = None  # set on "end"
    at: datetime | None = None  # frame time of this sighting (start/update); what an event has lasted is measured to it
    label: str | None = None  # person, car, … for objects; "plate" for plates
    score: float | None = None
    zones: list[str] = field(default_factory=list)  # named zones it touched
    box: tuple[float, float, float, float] | None = None  # x, y, w, h in 0..1 of the picture (best sighting)
    snapshot: bytes | None = None  # JPEG of the whole picture at its best sighting
    crop: bytes | None = None  # JPEG of the plate (plates only)
    plate: str | None = None  # normalised plate, e.g. "123ABC02"
    plate_region: str | None = None  # region code, e.g. "02"
    details: dict = field(default_factory=dict)

    @property
    def seen_until(self) -> datetime:
        """The last instant this observation vouches for: its end, else the frame it was made from, else its start.
        Durations (a rule's ``min_duration``) are measured in frame time, never on the server's clock, so a replayed or
        late observation counts what the camera saw."""
        return self.end or self.at or self.start


ObservationSink = Callable[[Observation], None]
