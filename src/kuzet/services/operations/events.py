"""Events: every detection in the database, linked to the archive by camera and time; their pictures; search.

A snapshot's key is ``<camera>/<YYYY-MM-DD>/<event id>.jpg`` (plate crops ``…-plate.jpg``); the row holds the key and
the pictures live behind :mod:`kuzet.services.operations.pictures` (files in the events directory, or the object store
every node reads).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from kuzet.domain.access import Right
from kuzet.domain.operations import EventKind
from kuzet.services import access
from kuzet.services.operations.observations import Observation
from kuzet.services.operations.pictures import EventPictures, LocalPictures
from kuzet.store.db import iso_utc
from kuzet.store.models import Camera, Place, User
from kuzet.store.models.operations import Alarm, Event

CLIP_BEFORE = timedelta(seconds=10)  # an event's clip starts this long before it …
CLIP_AFTER = timedelta(seconds=20)  # … and ends this long after it


class EventError(ValueError):
    pass


def event_zones(event: Any) -> list[str]:
    zones = (event.details or {}).get("zones")
    if zones:
        return list(zones)
    return [event.zone] if event.zone else []


def clip_window(event: Any) -> tuple[datetime, datetime]:
    end = event.end_at or (event.details or {}).get("last_seen") or event.start_at
    if isinstance(end, str):
        end = datetime.fromisoformat(end)
    return event.start_at - CLIP_BEFORE, max(end, event.start_at) + CLIP_AFTER


def clip_url(camera_id: int, start: datetime, end: datetime) -> str:
    """The archive clip of a camera's window (cut from the recordings, no re-encoding)."""
    return f"/api/v1/cameras/{camera_id}/clip.mp4?start={iso_utc(start)}&end={iso_utc(end)}"


# What ``event_out`` shows of an event: a page selects these columns (Core rows, no ORM objects to build).
EVENT_COLUMNS = (Event.id, Event.camera_id, Event.kind, Event.label, Event.score, Event.start_at, Event.end_at,
                 Event.zone, Event.plate, Event.plate_region, Event.box, Event.snapshot, Event.crop, Event.details)


_CAMERA_NAMES = select(Camera.id, Camera.name).where(Camera.id.in_(bindparam("ids", expanding=True)))  # built once


def camera_names(session: Session, camera_ids: Iterable[int]) -> dict[int, str]:
    """The names of these cameras, in one statement."""
    wanted = sorted(set(camera_ids))
    if not wanted:
        return {}
    return dict(session.execute(_CAMERA_NAMES, {"ids": wanted}).tuples().all())


def events_out(session: Session, events: list[Any]) -> list[dict[str, Any]]:
    """A page of events (ORM objects or rows of ``EVENT_COLUMNS``) with their cameras' names: one statement for the
    names, whatever the page's size."""
    names = camera_names(session, (e.camera_id for e in events))
    return [event_out(e, camera_name=names.get(e.camera_id)) for e in events]


def event_out(event: Any, camera: Any = None, *, camera_name: str | None = None) -> dict[str, Any]:
    """An event (its ORM object, or a row of ``EVENT_COLUMNS``) as the API shows it; the camera's name from
    ``camera`` (anything with a ``name``) or ``camera_name``."""
    start, end = clip_window(event)
    base = f"/api/v1/events/{event.id}"
    return {
        "id": event.id, "camera_id": event.camera_id,
        "camera_name": camera.name if camera is not None else camera_name,
        "kind": event.kind, "label": event.label, "score": event.score,
        "start_at": event.start_at, "end_at": event.end_at, "zone": event.zone, "zones": event_zones(event),
        "plate": event.plate, "plate_region": event.plate_region, "box": event.box,
        "snapshot_url": f"{base}/snapshot.jpg" if event.snapshot else None,
        "crop_url": f"{base}/crop.jpg" if event.crop else None,
        "clip_url": clip_url(event.camera_id, start, end),
        "details": {k: v for k, v in (event.details or {}).items() if k != "zones"},
    }


@dataclass
class Applied:
    """What storing an observation did: the event row and the bus message type (new, update or end)."""

    event: Event
    type: str
    duration: float  # seconds the event has lasted so far


class EventStore:
    """Turns observations into event rows. Remembers which row each open observation key belongs to."""

    def __init__(self, pictures: EventPictures | Path) -> None:
        self.pictures: EventPictures = LocalPictures(pictures) if isinstance(pictures, Path) else pictures
        self._open: dict[tuple[int, str], int] = {}

    def apply(self, session: Session, obs: Observation) -> Applied | None:
        key = (obs.camera_id, obs.key)
        event_id = self._open.get(key)
        event = session.get(Event, event_id) if event_id else None
        if event is None:
            if obs.phase == "update":
                return None  # an update of something we never saw start (e.g. after a restart): wait for its end
            event = Event(camera_id=obs.camera_id, kind=obs.kind, label=obs.label, score=obs.score,
                          start_at=obs.start, zone=obs.zones[0] if obs.zones else None, plate=obs.plate,
                          plate_region=obs.plate_region, box=list(obs.box) if obs.box else None,
                          details={**obs.details, "zones": list(obs.zones)})
            session.add(event)
            session.flush()
            kind = "new"
        else:
            kind = "end" if obs.phase == "end" else "update"
            zones = sorted(set(event_zones(event)) | set(obs.zones))
            details = {**(event.details or {}), **obs.details, "zones": zones}
            event.details = details
            event.zone = event.zone or (zones[0] if zones else None)
            if obs.score is not None and (event.score is None or obs.score >= event.score):
                event.score = obs.score
                if obs.box:
                    event.box = list(obs.box)
            if obs.label and not event.label:
                event.label = obs.label
        if obs.snapshot:
            event.snapshot = self.pictures.save(obs.camera_id, event.start_at, f"{event.id}.jpg", obs.snapshot)
        if obs.crop:
            event.crop = self.pictures.save(obs.camera_id, event.start_at, f"{event.id}-plate.jpg", obs.crop)
        last = obs.seen_until
        if obs.phase == "end":
            event.end_at = max(obs.end or last, event.start_at)
            self._open.pop(key, None)
            if kind == "new":
                kind = "end" if obs.kind != EventKind.PLATE else "new"
        else:
            self._open[key] = event.id
            event.details = {**(event.details or {}), "last_seen": last.isoformat()}
        return Applied(event, kind, max(0.0, (last - event.start_at).total_seconds()))

    def checkpoint(self) -> dict[tuple[int, str], int]:
        """What ``apply`` remembers, to put back with ``rollback`` when its transaction did not commit."""
        return dict(self._open)

    def rollback(self, state: dict[tuple[int, str], int]) -> None:
        self._open = dict(state)

    def forget_camera(self, camera_id: int) -> None:
        for key in [k for k in self._open if k[0] == camera_id]:
            self._open.pop(key)


def close_dangling(session: Session, camera_ids: list[int] | None = None) -> int:
    """Events left open by a stopped server (or, for ``camera_ids``, by the node that analysed them before) end where
    they were last seen (or where they started)."""
    query = select(Event).where(Event.end_at.is_(None))
    if camera_ids is not None:
        query = query.where(Event.camera_id.in_(camera_ids))
    rows = session.scalars(query).all()
    for event in rows:
        last = (event.details or {}).get("last_seen")
        event.end_at = datetime.fromisoformat(last) if last else event.start_at
    return len(rows)


# --- reading --------------------------------------------------------------------------------------------------------

def visible_events(user: User, right: Right = Right.VIEW_ARCHIVE, session: Session | None = None, *,
                   page_size: int | None = None) -> Select:
    """Events of the cameras the user may see in the archive (a detection shows what the camera recorded). With
    ``session``, the cameras come from the caller's cached reach, and a caller who sees every camera (the control
    centre) gets no camera condition at all: the newest events come straight off ``ix_events_start_id``. With
    ``page_size`` (a keyset page of that many, newest first), a caller who sees a large share of the cameras has
    that index walked too on SQLite (see ``access.camera_filter``)."""
    query = select(Event)
    if session is not None:
        condition = access.camera_filter(session, user, Event.camera_id, right, page_size=page_size)
        return query if condition is None else query.where(condition)
    if access.is_platform_admin(user):
        return query
    return query.where(Event.camera_id.in_(access.visible_cameras(user, right).with_only_columns(Camera.id)))


def search(session: Session, user: User, *, camera_ids: Iterable[int] | None = None, place_id: int | None = None,
           start: datetime | None = None, end: datetime | None = None, kind: str | None = None,
           label: str | None = None, plate: str | None = None, fuzzy: bool = False, zone: str | None = None,
           page_size: int | None = None) -> Select:
    """Events matching every given filter, newest first. ``plate`` is a prefix of the normalised plate, or with
    ``fuzzy`` any plate within one OCR-style edit of it. ``page_size``: the query serves keyset pages of that many
    (the plan may then follow the caller's share of the cameras, see ``access.camera_filter``)."""
    query = visible_events(user, session=session, page_size=page_size)
    camera_ids = list(camera_ids or [])
    if camera_ids:
        query = query.where(Event.camera_id.in_(camera_ids))
    if place_id is not None:
        root = session.get(Place, place_id)
        if root is None:
            raise EventError(f"place {place_id} not found")
        in_place = select(Camera.id).join(Place, Place.id == Camera.place_id).where(Place.path.startswith(root.path))
        query = query.where(Event.camera_id.in_(in_place))
    if start is not None:
        query = query.where(or_(Event.end_at.is_(None), Event.end_at >= start))
    if end is not None:
        query = query.where(Event.start_at < end)
    if kind:
        if kind not in set(EventKind):
            raise EventError(f"unknown event kind {kind!r} (known: {', '.join(EventKind)})")
        query = query.where(Event.kind == kind)
    if label:
        query = query.where(Event.label == label)
    if zone:
        query = query.where(Event.zone == zone)
    if plate:
        query = _plate_filter(session, query, plate, fuzzy)
    return query.order_by(Event.start_at.desc(), Event.id.desc())


def _plate_filter(session: Session, query: Select, text: str, fuzzy: bool) -> Select:
    from kuzet.domain import plates

    cleaned = plates.clean(text)
    if not cleaned:
        raise EventError(f"{text!r} is not a plate or the start of one")
    if not fuzzy:
        return query.where(Event.plate.startswith(cleaned))
    # Fuzzy: compare the query with every distinct plate read in the window (plates are few next to events).
    seen = session.scalars(query.with_only_columns(Event.plate).where(Event.plate.is_not(None)).distinct()
                           .order_by(None)).all()
    close = [p for p in seen if plates.similar(cleaned, p)]
    return query.where(Event.plate.in_(close or ["\0"]))


def timeline_events(session: Session, camera_id: int, start: datetime, end: datetime,
                    limit: int = 5000) -> list[dict[str, Any]]:
    """Motion intervals and detections of a camera in a window, for the archive timeline."""
    rows = session.scalars(
        select(Event).where(Event.camera_id == camera_id, Event.start_at < end,
                            or_(Event.end_at.is_(None), Event.end_at >= start))
        .order_by(Event.start_at).limit(limit)).all()
    return [{"id": e.id, "kind": e.kind, "label": e.label, "plate": e.plate, "start": e.start_at,
             "end": e.end_at or e.start_at, "zone": e.zone} for e in rows]


# --- retention ------------------------------------------------------------------------------------------------------

def prune_rows(session: Session, older_than: datetime, batch: int = 500) -> tuple[int, list[str]]:
    """Delete events that ended before ``older_than``, except those an incident refers to; returns how many and the
    keys of their pictures (to delete once the transaction committed)."""
    kept = select(Alarm.event_id).where(Alarm.incident_id.is_not(None), Alarm.event_id.is_not(None))
    rows = session.execute(
        select(Event.id, Event.snapshot, Event.crop)
        .where(and_(Event.end_at.is_not(None), Event.end_at < older_than), Event.id.not_in(kept))
        .order_by(Event.end_at).limit(batch)).all()
    if not rows:
        return 0, []
    ids = [r.id for r in rows]
    session.execute(update(Alarm).where(Alarm.event_id.in_(ids)).values(event_id=None))
    session.execute(delete(Event).where(Event.id.in_(ids)))
    return len(ids), [key for row in rows for key in (row.snapshot, row.crop) if key]


def prune(session: Session, pictures: EventPictures | Path, older_than: datetime, batch: int = 500) -> int:
    """:func:`prune_rows` and their pictures (deleted before the caller commits; the retention service deletes them
    after)."""
    n, keys = prune_rows(session, older_than, batch)
    (LocalPictures(pictures) if isinstance(pictures, Path) else pictures).delete(keys)
    return n
