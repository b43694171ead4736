"""Recordings after ingest: reading them (audited), categories with retention, the officer's list of uncategorised
recordings, evidence holds, search, and deletion when a category's retention has run out (never while held)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from kuzet.domain.bodycams import Action, retention_end
from kuzet.services import audit
from kuzet.services.access import is_platform_admin
from kuzet.services.audit import Actor
from kuzet.services.bodycams.units import keeps_recording, sees_recording, visible_recordings
from kuzet.store.db import utcnow
from kuzet.store.models import User
from kuzet.store.models.bodycams import BodycamCategory, BodycamHold, BodycamRecording


class RecordingDenied(Exception):
    """Outside the caller's reach (404), or ``forbidden`` (403: seen, but not theirs to do)."""

    def __init__(self, message: str, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


class RecordingError(ValueError):
    """The request is wrong (422)."""


def recording_for(session: Session, user: User, recording_id: int, *, keep: bool = False) -> BodycamRecording:
    recording = session.get(BodycamRecording, recording_id)
    if recording is None or not sees_recording(session, user, recording):
        raise RecordingDenied("recording not found")
    if keep and not keeps_recording(session, user, recording):
        raise RecordingDenied("only the unit's supervisors and custodians do this", forbidden=True)
    return recording


def categories(session: Session) -> list[BodycamCategory]:
    return list(session.scalars(select(BodycamCategory).order_by(BodycamCategory.id)))


def set_retention(session: Session, actor: Actor, by: User, code: str, retention_days: int | None,
                  evidence: bool | None = None) -> BodycamCategory:
    if not is_platform_admin(by):
        raise RecordingDenied("only platform admins set retention", forbidden=True)
    category = session.scalar(select(BodycamCategory).where(BodycamCategory.code == code))
    if category is None:
        raise RecordingDenied("category not found")
    before = {"retention_days": category.retention_days, "evidence": category.evidence}
    category.retention_days = retention_days
    if evidence is not None:
        category.evidence = evidence
    audit.append(session, actor, Action.CATEGORY_CHANGED, object_type="bodycam_category", object_id=code,
                 details={"before": before, "retention_days": retention_days, "evidence": category.evidence})
    return category


def categorise(session: Session, actor: Actor, by: User, recording: BodycamRecording, code: str,
               title: str | None = None) -> BodycamRecording:
    """The officer who made it or a keeper of the unit. An evidence category (arrest, use of force) holds it."""
    category = session.scalar(select(BodycamCategory).where(BodycamCategory.code == code))
    if category is None:
        known = ", ".join(c.code for c in categories(session))
        raise RecordingError(f"category: unknown {code!r} (known: {known})")
    before = recording.category_id
    recording.category_id = category.id
    recording.categorised_by = by.id
    recording.categorised_at = utcnow()
    if title is not None:
        recording.title = title.strip()[:300]
    audit.append(session, actor, Action.CATEGORISED, object_type="bodycam_recording", object_id=recording.id,
                 details={"category": code, "before": before, "sha256": recording.sha256})
    if category.evidence:
        hold(session, actor, by, recording, f"category {code}", source=f"category:{code}")
    return recording


def open_holds(session: Session, recording_id: int) -> list[BodycamHold]:
    return list(session.scalars(select(BodycamHold).where(BodycamHold.recording_id == recording_id,
                                                          BodycamHold.released_at.is_(None))))


def held_among(session: Session, recording_ids: list[int]) -> set[int]:
    """Which of ``recording_ids`` are under an open hold, in one statement (a page of recordings)."""
    if not recording_ids:
        return set()
    return set(session.scalars(select(BodycamHold.recording_id).where(
        BodycamHold.recording_id.in_(recording_ids), BodycamHold.released_at.is_(None)).distinct()))


def hold(session: Session, actor: Actor, by: User | None, recording: BodycamRecording, reason: str,
         source: str | None = None) -> BodycamHold:
    if not reason.strip():
        raise RecordingError("reason: say why the recording is held")
    if source is not None:
        existing = session.scalar(select(BodycamHold).where(
            BodycamHold.recording_id == recording.id, BodycamHold.source == source,
            BodycamHold.released_at.is_(None)))
        if existing is not None:
            return existing
    row = BodycamHold(recording_id=recording.id, reason=reason.strip(), source=source,
                      created_by=by.id if by else None)
    session.add(row)
    session.flush()
    audit.append(session, actor, Action.HELD, object_type="bodycam_recording", object_id=recording.id,
                 details={"hold_id": row.id, "reason": row.reason, "source": source})
    return row


def release_hold(session: Session, actor: Actor, by: User, hold_id: int) -> BodycamHold:
    row = session.get(BodycamHold, hold_id)
    recording = session.get(BodycamRecording, row.recording_id) if row else None
    if row is None or recording is None or not sees_recording(session, by, recording):
        raise RecordingDenied("hold not found")
    if not keeps_recording(session, by, recording):
        raise RecordingDenied("only the unit's supervisors and custodians release holds", forbidden=True)
    if row.released_at is None:
        row.released_at = utcnow()
        row.released_by = by.id
        audit.append(session, actor, Action.HOLD_RELEASED, object_type="bodycam_recording", object_id=recording.id,
                     details={"hold_id": row.id})
    return row


@dataclass
class Search:
    officer_id: int | None = None
    device_id: int | None = None
    category: str | None = None  # a code, or "none" for uncategorised
    start: datetime | None = None
    end: datetime | None = None
    near: tuple[float, float, float] | None = None  # lat, lon, radius in metres
    incident_id: int | None = None


def search(session: Session, user: User, query: Search, limit: int = 100, offset: int = 0
           ) -> tuple[list[BodycamRecording], int]:
    from sqlalchemy import func

    from kuzet.store.models.bodycams import BodycamIncidentLink

    q = select(BodycamRecording).where(visible_recordings(session, user), BodycamRecording.deleted_at.is_(None))
    if query.officer_id is not None:
        q = q.where(BodycamRecording.officer_id == query.officer_id)
    if query.device_id is not None:
        q = q.where(BodycamRecording.device_id == query.device_id)
    if query.category == "none":
        q = q.where(BodycamRecording.category_id.is_(None))
    elif query.category:
        q = q.where(BodycamRecording.category_id == select(BodycamCategory.id).where(
            BodycamCategory.code == query.category).scalar_subquery())
    if query.start is not None:
        q = q.where(BodycamRecording.ended_at >= query.start)
    if query.end is not None:
        q = q.where(BodycamRecording.started_at <= query.end)
    if query.incident_id is not None:
        q = q.where(exists().where(BodycamIncidentLink.recording_id == BodycamRecording.id,
                                   BodycamIncidentLink.incident_id == query.incident_id))
    if query.near is not None:
        from kuzet.services.bodycams.tracks import near_clause

        q = q.where(near_clause(*query.near))
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(q.order_by(BodycamRecording.started_at.desc(), BodycamRecording.id.desc())
                           .limit(limit).offset(offset)).all()
    return list(rows), total


def uncategorised_of(session: Session, officer: User) -> list[BodycamRecording]:
    """The officer's own recordings still waiting for a category: flagged to them in the console."""
    return list(session.scalars(select(BodycamRecording).where(
        BodycamRecording.officer_id == officer.id, BodycamRecording.category_id.is_(None),
        BodycamRecording.deleted_at.is_(None)).order_by(BodycamRecording.started_at)))


def expires_at(session: Session, recording: BodycamRecording,
               kept_days: dict[int, int | None] | None = None) -> datetime | None:
    """When retention lets the recording go (None: no category yet, or kept until deleted by hand).
    ``kept_days``: each category's retention, when the caller has them all already (a page of recordings)."""
    if recording.category_id is None:
        return None
    if kept_days is not None and recording.category_id in kept_days:
        return retention_end(recording.started_at, kept_days[recording.category_id])
    category = session.get(BodycamCategory, recording.category_id)
    return retention_end(recording.started_at, category.retention_days)


def apply_retention(session: Session, root: Path, now: datetime | None = None) -> list[int]:
    """Delete the files of categorised recordings past their category's retention and not held; the row stays as the
    record that they existed (hash included). Uncategorised recordings are never deleted: they wait for their
    officer. Returns the ids deleted."""
    now = now or utcnow()
    deleted = []
    rows = session.execute(select(BodycamRecording, BodycamCategory).join(
        BodycamCategory, BodycamCategory.id == BodycamRecording.category_id).where(
        BodycamRecording.deleted_at.is_(None), BodycamCategory.retention_days.is_not(None),
        ~exists().where(BodycamHold.recording_id == BodycamRecording.id, BodycamHold.released_at.is_(None)))).all()
    for recording, category in rows:
        end = retention_end(recording.started_at, category.retention_days)
        if end is None or end > now:
            continue
        for relative in (recording.path, recording.playable_path):
            if relative:
                target = root / relative
                if target.exists():
                    os.chmod(target, 0o600)
                    target.unlink()
        recording.deleted_at = now
        audit.append(session, audit.SYSTEM, Action.DELETED, object_type="bodycam_recording", object_id=recording.id,
                     details={"sha256": recording.sha256, "category": category.code,
                              "retention_days": category.retention_days})
        deleted.append(recording.id)
    return deleted


def link_incident(session: Session, actor: Actor, by: User, recording: BodycamRecording, incident_id: int):  # noqa: ANN201
    """Link a recording to an operations-centre incident the caller sees: an entry on the incident's timeline, an
    evidence hold (``incident:N``) and an audit record. Linking twice changes nothing."""
    from kuzet.services.operations.incidents import _entry, visible_incidents
    from kuzet.store.models.bodycams import BodycamIncidentLink
    from kuzet.store.models.operations import Incident

    incident = session.scalar(visible_incidents(by).where(Incident.id == incident_id))
    if incident is None:
        raise RecordingError("incident_id: no such incident among the ones you see")
    link = session.scalar(select(BodycamIncidentLink).where(BodycamIncidentLink.incident_id == incident_id,
                                                            BodycamIncidentLink.recording_id == recording.id))
    if link is not None:
        return link
    link = BodycamIncidentLink(incident_id=incident_id, recording_id=recording.id, linked_by=by.id)
    session.add(link)
    _entry(session, incident, actor, "bodycam_linked", details={"recording_id": recording.id,
                                                                "sha256": recording.sha256})
    hold(session, actor, by, recording, f"incident {incident_id}", source=f"incident:{incident_id}")
    session.flush()
    audit.append(session, actor, Action.INCIDENT_LINKED, object_type="bodycam_recording", object_id=recording.id,
                 details={"incident_id": incident_id, "sha256": recording.sha256})
    return link


def _where_made(session: Session, recording: BodycamRecording) -> tuple[list[tuple[float, float]], str | None]:
    """Where the recording was made: its GPS track (or first fix), else the place of the incidents it is linked to."""
    from kuzet.services.bodycams.tracks import track_of
    from kuzet.store.models.bodycams import BodycamIncidentLink
    from kuzet.store.models.operations import Incident

    points = [(p.lat, p.lon) for p in track_of(session, recording.id)]
    if not points and recording.lat is not None:
        points = [(recording.lat, recording.lon)]
    if points:
        return points[:: max(1, len(points) // 200)], "track"
    incidents = session.execute(select(Incident.lat, Incident.lon).join(
        BodycamIncidentLink, BodycamIncidentLink.incident_id == Incident.id).where(
        BodycamIncidentLink.recording_id == recording.id, Incident.lat.is_not(None), Incident.lon.is_not(None)))
    points = [(lat, lon) for lat, lon in incidents]
    return points, "incident" if points else None


def archive_covered(session: Session, camera_ids: list[int], start: datetime, end: datetime) -> dict[int, float]:
    """Seconds of [start, end) each camera's archive (main stream) holds, in one query for all the cameras."""
    from kuzet.store.models.recording import Recording

    totals = dict.fromkeys(camera_ids, 0.0)
    if not camera_ids:
        return totals
    for camera_id, begin, finish in session.execute(select(Recording.camera_id, Recording.start_at, Recording.end_at)
                                                    .where(Recording.camera_id.in_(camera_ids),
                                                           Recording.stream == "main", Recording.start_at < end,
                                                           Recording.end_at > start)):
        totals[camera_id] += max(0.0, (min(finish, end) - max(begin, start)).total_seconds())
    span = (end - start).total_seconds()
    return {camera_id: round(min(total, span), 1) for camera_id, total in totals.items()}


def nearby_cameras(session: Session, user: User, recording: BodycamRecording, radius_m: float = 300,
                   covering: bool = True) -> list[dict]:
    """Fixed cameras whose archive the user may watch, within ``radius_m`` of where the recording was made (its GPS
    track, else the place of its incidents), nearest first; with ``covering`` only those whose archive holds some of
    the recording's time. Each with the window to play beside it, on the same clock: the recording's start and end
    (both server time: the device's clock was corrected by its shift's offset)."""
    import math

    from kuzet.domain.access import Right
    from kuzet.services.access import visible_cameras

    points, source = _where_made(session, recording)
    if not points:
        return []

    def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
        lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
        h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
        return 2 * 6_371_000 * math.asin(math.sqrt(h))

    from kuzet.store.models import Camera

    # Only the cameras in the track's bounding box widened by the radius are read (not every visible camera of the
    # city); the exact distance to the track is measured below.
    dlat = radius_m / 111_320
    dlon = radius_m / (111_320 * max(0.01, min(math.cos(math.radians(lat)) for lat, _ in points)))
    lats, lons = [p[0] for p in points], [p[1] for p in points]
    nearby = visible_cameras(user, Right.VIEW_ARCHIVE, session=session).where(
        Camera.lat.between(min(lats) - dlat, max(lats) + dlat), Camera.lon.between(min(lons) - dlon, max(lons) + dlon))
    end = max(recording.ended_at, recording.started_at + timedelta(seconds=1))
    within = []
    for camera in session.scalars(nearby):
        distance = min(metres(p, (camera.lat, camera.lon)) for p in points)
        if distance <= radius_m:
            within.append((camera, distance))
    covered = archive_covered(session, [camera.id for camera, _ in within], recording.started_at, end)
    out = []
    for camera, distance in within:
        if covering and covered[camera.id] <= 0:
            continue
        out.append({"camera_id": camera.id, "name": camera.name, "distance_m": round(distance, 1),
                    "at": recording.started_at, "until": end, "covered_seconds": covered[camera.id],
                    "near": source})
    return sorted(out, key=lambda c: c["distance_m"])


def near_camera(session: Session, user: User, camera_lat: float | None, camera_lon: float | None, start: datetime,
                end: datetime, radius_m: float = 300, limit: int = 100) -> list[dict]:
    """Body-worn and dash camera recordings the user sees, made during [start, end) within ``radius_m`` of a fixed
    camera: a GPS fix of their track (one in the window, when the track has any there) or their first fix within the
    radius. Earliest first, each with the distance and its window in server time (the device's clock corrected at
    ingest), to be played in step with the camera's archive. A camera without a place has none near it."""
    import math

    from kuzet.services.bodycams.tracks import near_clause
    from kuzet.store.models.bodycams import BodycamDevice, BodycamTrackPoint

    if camera_lat is None or camera_lon is None:
        return []
    rows = session.execute(
        select(BodycamRecording, BodycamDevice.serial, BodycamDevice.kind)
        .join(BodycamDevice, BodycamDevice.id == BodycamRecording.device_id)
        .where(visible_recordings(session, user), BodycamRecording.deleted_at.is_(None),
               BodycamRecording.started_at < end, BodycamRecording.ended_at > start,
               near_clause(camera_lat, camera_lon, radius_m))
        .order_by(BodycamRecording.started_at, BodycamRecording.id).limit(limit)).all()
    if not rows:
        return []
    dlat = radius_m / 111_320
    dlon = radius_m / max(1.0, 111_320 * math.cos(math.radians(camera_lat)))
    fixes: dict[int, list[tuple[datetime, float, float]]] = {}
    for recording_id, at, lat, lon in session.execute(
            select(BodycamTrackPoint.recording_id, BodycamTrackPoint.at, BodycamTrackPoint.lat, BodycamTrackPoint.lon)
            .where(BodycamTrackPoint.recording_id.in_([r.id for r, _s, _k in rows]),
                   BodycamTrackPoint.lat.between(camera_lat - dlat, camera_lat + dlat),
                   BodycamTrackPoint.lon.between(camera_lon - dlon, camera_lon + dlon))):
        fixes.setdefault(recording_id, []).append((at, lat, lon))

    def metres(lat: float, lon: float) -> float:
        lat1, lon1, lat2, lon2 = map(math.radians, (camera_lat, camera_lon, lat, lon))
        h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
        return 2 * 6_371_000 * math.asin(math.sqrt(h))

    out = []
    for recording, serial, kind in rows:
        near = fixes.get(recording.id, [])
        during = [f for f in near if start <= _aware(f[0]) < end] or near
        if during:
            closest = min(during, key=lambda f: metres(f[1], f[2]))
            distance, closest_at = metres(closest[1], closest[2]), _aware(closest[0])
        elif recording.lat is not None and recording.lon is not None:
            distance, closest_at = metres(recording.lat, recording.lon), None
        else:
            continue
        if distance > radius_m:
            continue
        out.append({"id": recording.id, "serial": serial, "device_kind": kind, "officer_id": recording.officer_id,
                    "title": recording.title, "started_at": recording.started_at, "ended_at": recording.ended_at,
                    "distance_m": round(distance, 1), "closest_at": closest_at})
    return out


def _aware(at: datetime) -> datetime:
    from datetime import UTC

    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
