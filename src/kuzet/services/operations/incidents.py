"""Incidents and the dispatch of response crews.

An incident has an offence type (the crime analytics' types), a place, linked cameras with the window to look at,
notes and a status timeline. An operator dispatches responders — users of their own unit, or of an organisation the
incident's alarms were routed to (e.g. the security firm guarding that yard). A crew reports acknowledged → en route
→ on scene → closed from its phone; the incident's status follows the furthest report; the operator closes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import Session

from kuzet.domain.access import OrganisationKind, Right, Role
from kuzet.domain.crime import OFFENCE_TYPES
from kuzet.domain.operations import (
    ALARM_MOVES,
    STATUS_FROM_DISPATCH,
    AlarmState,
    DispatchStatus,
    IncidentStatus,
    Priority,
    dispatch_may_move,
    furthest,
)
from kuzet.domain.spreadsheets import csv_text
from kuzet.services import access, audit
from kuzet.services.audit import Actor
from kuzet.services.operations.alarms import attach_to_incident, routes
from kuzet.services.operations.events import clip_url, clip_window
from kuzet.store.db import iso_utc, load_by_ids, utcnow
from kuzet.store.models import Camera, Organisation, Place, User
from kuzet.store.models.operations import (
    Alarm,
    AlarmRoute,
    Dispatch,
    Event,
    Incident,
    IncidentCamera,
    IncidentEntry,
)

MAX_WINDOW = timedelta(hours=24)
OPERATOR_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.POLICE_OPERATOR, Role.ORGANISATION_ADMIN})


class IncidentError(ValueError):
    pass


class Action:
    CREATED = "incident.created"
    VIEWED = "incident.viewed"
    CHANGED = "incident.changed"
    DISPATCHED = "incident.dispatched"
    DISPATCH_STATUS = "dispatch.status"
    CLOSED = "incident.closed"
    EXPORTED = "incident.exported"


# --- who sees what --------------------------------------------------------------------------------------------------

def may_operate(user: User) -> bool:
    return user.role in OPERATOR_ROLES


def visible_incidents(user: User) -> Select:
    """Platform admins: all. Operators: their unit's incidents and those opened from alarms routed to their unit.
    Responders: the incidents they were dispatched to."""
    query = select(Incident)
    if user.role == Role.PLATFORM_ADMIN:
        return query
    sent_to_me = exists().where(Dispatch.incident_id == Incident.id, Dispatch.responder_id == user.id)
    if user.role == Role.RESPONDER:
        return query.where(sent_to_me)
    if not may_operate(user) or user.organisation_id is None:
        return query.where(Incident.id.is_(None))
    routed = exists().where(Alarm.incident_id == Incident.id, AlarmRoute.alarm_id == Alarm.id,
                            AlarmRoute.organisation_id == user.organisation_id)
    return query.where(or_(Incident.organisation_id == user.organisation_id, routed))


def preload(session: Session, incidents: list[Incident]) -> None:
    """Everything ``incident_out`` shows of a page of incidents (not ``full``), in three statements."""
    load_by_ids(session, Place, [i.place_id for i in incidents])
    load_by_ids(session, Organisation, [i.organisation_id for i in incidents])
    load_by_ids(session, User, [i.created_by for i in incidents])


def incident_organisations(session: Session, incident: Incident) -> list[int]:
    """The organisations that may see the incident: its unit and the routes of its alarms."""
    orgs = {incident.organisation_id} if incident.organisation_id else set()
    alarm_ids = list(session.scalars(select(Alarm.id).where(Alarm.incident_id == incident.id)))
    for ids in routes(session, alarm_ids).values():
        orgs.update(ids)
    return sorted(orgs)


# --- output ---------------------------------------------------------------------------------------------------------

def _name(session: Session, user_id: int | None) -> str | None:
    user = session.get(User, user_id) if user_id else None
    return user.username if user else None


def dispatch_out(session: Session, d: Dispatch) -> dict[str, Any]:
    responder = session.get(User, d.responder_id)
    org = session.get(Organisation, d.organisation_id) if d.organisation_id else None
    return {"id": d.id, "incident_id": d.incident_id, "responder_id": d.responder_id,
            "responder": responder.username if responder else None,
            "responder_name": responder.full_name if responder else None,
            "organisation": org.name if org else None, "status": d.status, "sent_at": d.sent_at,
            "sent_by": _name(session, d.sent_by), "acknowledged_at": d.acknowledged_at, "en_route_at": d.en_route_at,
            "on_scene_at": d.on_scene_at, "closed_at": d.closed_at, "note": d.note}


def incident_out(session: Session, incident: Incident, full: bool = False) -> dict[str, Any]:
    place = session.get(Place, incident.place_id) if incident.place_id else None
    org = session.get(Organisation, incident.organisation_id) if incident.organisation_id else None
    out: dict[str, Any] = {
        "id": incident.id, "offence_type": incident.offence_type, "title": incident.title,
        "description": incident.description, "priority": incident.priority, "status": incident.status,
        "place": {"id": place.id, "name": place.name, "address": place.address} if place else None,
        "lat": incident.lat, "lon": incident.lon,
        "organisation": {"id": org.id, "name": org.name} if org else None,
        "created_by": _name(session, incident.created_by), "created_at": incident.created_at,
        "closed_at": incident.closed_at, "resolution": incident.resolution,
    }
    if not full:
        return out
    cams = session.execute(select(IncidentCamera, Camera).join(Camera, Camera.id == IncidentCamera.camera_id)
                           .where(IncidentCamera.incident_id == incident.id).order_by(IncidentCamera.id)).all()
    out["cameras"] = [{
        "id": link.id, "camera_id": cam.id, "camera_name": cam.name, "start_at": link.start_at, "end_at": link.end_at,
        "clip_url": clip_url(cam.id, link.start_at, link.end_at),
    } for link, cam in cams]
    entries = session.scalars(select(IncidentEntry).where(IncidentEntry.incident_id == incident.id)
                              .order_by(IncidentEntry.at, IncidentEntry.id)).all()
    out["timeline"] = [{"id": e.id, "at": e.at, "kind": e.kind, "text": e.text, "actor": _name(session, e.actor_id),
                        "details": e.details} for e in entries]
    out["dispatches"] = [dispatch_out(session, d) for d in session.scalars(
        select(Dispatch).where(Dispatch.incident_id == incident.id).order_by(Dispatch.id))]
    out["alarms"] = [{"id": a.id, "title": a.title, "raised_at": a.raised_at, "camera_id": a.camera_id,
                      "event_id": a.event_id}
                     for a in session.scalars(select(Alarm).where(Alarm.incident_id == incident.id))]
    return out


def _entry(session: Session, incident: Incident, actor: Actor, kind: str, text: str = "",
           details: dict | None = None, at: datetime | None = None) -> IncidentEntry:
    entry = IncidentEntry(incident_id=incident.id, at=at or utcnow(), actor_id=actor.user_id, kind=kind, text=text,
                          details=details)
    session.add(entry)
    return entry


# --- creating and changing ------------------------------------------------------------------------------------------

def _alarm_windows(session: Session, alarm: Alarm) -> list[tuple[int, datetime, datetime]]:
    """The clips an alarm brings to an incident: its first sighting's, and its latest's when it was seen again."""
    windows = []
    for event_id in dict.fromkeys([alarm.event_id, alarm.last_event_id]):
        event = session.get(Event, event_id) if event_id else None
        if event is not None:
            windows.append((alarm.camera_id, *clip_window(event)))
    if not windows:
        windows.append((alarm.camera_id, alarm.raised_at - timedelta(seconds=30),
                        alarm.raised_at + timedelta(seconds=30)))
    return windows


def _camera_window(session: Session, user: User, camera_id: int, start: datetime, end: datetime) -> Camera:
    camera = session.get(Camera, camera_id)
    if camera is None or Right.VIEW_ARCHIVE not in access.camera_rights(session, user, camera):
        raise IncidentError(f"camera {camera_id} not found")
    if start.tzinfo is None or end.tzinfo is None:
        raise IncidentError("start and end must carry a timezone")
    if end <= start or end - start > MAX_WINDOW:
        raise IncidentError("a linked window must end after it starts and span at most 24 hours")
    return camera


def create_incident(session: Session, actor: Actor, user: User, *, offence_type: str, title: str = "",
                    description: str = "", place_id: int | None = None, priority: str = "medium",
                    alarm_ids: list[int] | None = None, cameras: list[dict] | None = None,
                    lat: float | None = None, lon: float | None = None) -> Incident:
    """Open an incident, optionally from alarms (their cameras and clips are linked, they leave the queue)."""
    if not may_operate(user):
        raise IncidentError("your role may not open incidents")
    if offence_type not in OFFENCE_TYPES:
        raise IncidentError(f"offence_type must be one of {', '.join(OFFENCE_TYPES)}")
    if priority not in set(Priority):
        raise IncidentError(f"priority must be one of {', '.join(Priority)}")
    from kuzet.services.operations.alarms import visible_alarms

    alarms: list[Alarm] = []
    for alarm_id in dict.fromkeys(alarm_ids or []):  # each once, in the order given
        alarm = session.scalar(visible_alarms(user).where(Alarm.id == alarm_id))
        if alarm is None:
            raise IncidentError(f"alarm {alarm_id} not found")
        if alarm.state not in ALARM_MOVES or AlarmState.INCIDENT not in ALARM_MOVES[alarm.state]:
            raise IncidentError(f"alarm {alarm_id} is {alarm.state} already: it cannot open an incident")
        alarms.append(alarm)
    links: list[tuple[int, datetime, datetime]] = []
    for alarm in alarms:
        links.extend(_alarm_windows(session, alarm))
    for item in cameras or []:
        try:
            start = item["start_at"] if isinstance(item["start_at"], datetime) else datetime.fromisoformat(
                str(item["start_at"]).replace("Z", "+00:00"))
            end = item["end_at"] if isinstance(item["end_at"], datetime) else datetime.fromisoformat(
                str(item["end_at"]).replace("Z", "+00:00"))
            camera_id = int(item["camera_id"])
        except (KeyError, TypeError, ValueError):
            raise IncidentError("each linked camera needs camera_id, start_at and end_at (ISO-8601)") from None
        _camera_window(session, user, camera_id, start, end)
        links.append((camera_id, start, end))
    if place_id is None and links:
        place_id = session.get(Camera, links[0][0]).place_id
    place = session.get(Place, place_id) if place_id else None
    if place_id is not None and place is None:
        raise IncidentError(f"place {place_id} not found")
    if lat is None and links:
        first = session.get(Camera, links[0][0])
        lat, lon = first.lat, first.lon
    elif lat is None and place is not None:
        lat, lon = place.lat, place.lon
    if not title.strip():
        title = alarms[0].title if alarms else (place.name if place else offence_type)
    incident = Incident(offence_type=offence_type, title=title.strip()[:300], description=description or "",
                        place_id=place_id, lat=lat, lon=lon, priority=priority, status=IncidentStatus.OPEN,
                        organisation_id=user.organisation_id, created_by=user.id, created_at=utcnow())
    session.add(incident)
    session.flush()
    _entry(session, incident, actor, "created", incident.title, {"offence_type": offence_type}, incident.created_at)
    for alarm in alarms:
        attach_to_incident(session, user, alarm, incident.id)
        _entry(session, incident, actor, "alarm", alarm.title, {"alarm_id": alarm.id})
    for camera_id, start, end in links:
        session.add(IncidentCamera(incident_id=incident.id, camera_id=camera_id, start_at=start, end_at=end))
    session.flush()
    audit.append(session, actor, Action.CREATED, object_type="incident", object_id=incident.id,
                 details={"offence_type": offence_type, "alarms": [a.id for a in alarms]})
    return incident


def link_alarm(session: Session, actor: Actor, user: User, incident: Incident, alarm: Alarm) -> None:
    """An alarm joins an open incident: its camera and clip are linked and the timeline says so."""
    if incident.status == IncidentStatus.CLOSED:
        raise IncidentError("the incident is closed")
    for camera_id, start, end in _alarm_windows(session, alarm):
        session.add(IncidentCamera(incident_id=incident.id, camera_id=camera_id, start_at=start, end_at=end))
    _entry(session, incident, actor, "alarm", alarm.title, {"alarm_id": alarm.id})
    session.flush()


def add_note(session: Session, actor: Actor, incident: Incident, text: str) -> IncidentEntry:
    if not (text or "").strip():
        raise IncidentError("a note needs text")
    entry = _entry(session, incident, actor, "note", text.strip()[:5000])
    session.flush()
    return entry


def link_camera(session: Session, actor: Actor, user: User, incident: Incident, camera_id: int, start: datetime,
                end: datetime) -> IncidentCamera:
    camera = _camera_window(session, user, camera_id, start, end)
    link = IncidentCamera(incident_id=incident.id, camera_id=camera_id, start_at=start, end_at=end)
    session.add(link)
    _entry(session, incident, actor, "camera", camera.name, {"camera_id": camera_id, "start": iso_utc(start),
                                                             "end": iso_utc(end)})
    session.flush()
    return link


def update_incident(session: Session, actor: Actor, incident: Incident, **changes: Any) -> Incident:
    if incident.status == IncidentStatus.CLOSED:
        raise IncidentError("the incident is closed")
    if "offence_type" in changes and changes["offence_type"] not in OFFENCE_TYPES:
        raise IncidentError(f"offence_type must be one of {', '.join(OFFENCE_TYPES)}")
    if "priority" in changes and changes["priority"] not in set(Priority):
        raise IncidentError(f"priority must be one of {', '.join(Priority)}")
    applied = {}
    for key in ("offence_type", "title", "description", "priority"):
        if changes.get(key) is not None and getattr(incident, key) != changes[key]:
            setattr(incident, key, changes[key])
            applied[key] = changes[key]
    if applied:
        _entry(session, incident, actor, "changed", "", applied)
        audit.append(session, actor, Action.CHANGED, object_type="incident", object_id=incident.id, details=applied)
    return incident


def dispatchable(session: Session, user: User, incident: Incident) -> Select:
    """Responders the user may send: of the user's unit, or of an organisation the incident's alarms went to."""
    query = select(User).where(User.role == Role.RESPONDER, User.is_active.is_(True)).order_by(User.username)
    if user.role == Role.PLATFORM_ADMIN:
        return query
    orgs = set(incident_organisations(session, incident))
    if user.organisation_id:
        orgs.add(user.organisation_id)
    return query.where(User.organisation_id.in_(orgs or {-1}))


def incident_district(session: Session, incident: Incident) -> Place | None:
    """The district the incident happened in (the district among its place's ancestors), if known."""
    place = session.get(Place, incident.place_id) if incident.place_id else None
    if place is None:
        return None
    ids = [int(x) for x in place.path.strip("/").split("/") if x.isdigit()] or [place.id]
    return session.scalar(select(Place).where(Place.id.in_(ids), Place.kind == "district").order_by(Place.path.desc()))


def busy_responders(session: Session) -> set[int]:
    """Responders on an open dispatch."""
    return set(session.scalars(select(Dispatch.responder_id).where(Dispatch.status != DispatchStatus.CLOSED)))


def neighbour_responders(session: Session, user: User, incident: Incident) -> Select:
    """Crews of the police duty units serving the districts next to the incident's (same parent), other than those
    the user may send anyway: whom to ask for help when the district has no crew free."""
    none = select(User).where(User.id.is_(None))
    district = incident_district(session, incident)
    if district is None or district.parent_id is None:
        return none
    siblings = select(Place.id).where(Place.parent_id == district.parent_id, Place.kind == "district",
                                      Place.id != district.id)
    units = select(Organisation.id).where(Organisation.kind == OrganisationKind.POLICE_DUTY_UNIT,
                                          Organisation.place_id.in_(siblings))
    own = dispatchable(session, user, incident).with_only_columns(User.id)
    return (select(User).where(User.role == Role.RESPONDER, User.is_active.is_(True),
                               User.organisation_id.in_(units), User.id.not_in(own))
            .order_by(User.username))


def crews(session: Session, user: User, incident: Incident) -> dict[str, Any]:
    """The crews the user may send, and when none of them is free, why (``none_in_district``: the unit has no crew
    on duty; ``all_busy``: every one is on another call) and the neighbouring districts' crews (``neighbours``),
    which may then be sent too."""
    busy = busy_responders(session)
    district = incident_district(session, incident)

    def out(u: User) -> dict[str, Any]:
        org = session.get(Organisation, u.organisation_id) if u.organisation_id else None
        home = session.get(Place, org.place_id) if org and org.place_id else None
        return {"id": u.id, "username": u.username, "full_name": u.full_name, "organisation_id": u.organisation_id,
                "organisation": org.name if org else None, "district": home.name if home else None,
                "busy": u.id in busy}

    items = [out(u) for u in session.scalars(dispatchable(session, user, incident))]
    reason = None if any(not i["busy"] for i in items) else ("all_busy" if items else "none_in_district")
    neighbours = ([out(u) for u in session.scalars(neighbour_responders(session, user, incident))]
                  if reason else [])
    return {"items": items, "total": len(items), "limit": len(items), "offset": 0, "reason": reason,
            "district": {"id": district.id, "name": district.name} if district else None,
            "neighbours": neighbours}


def dispatch(session: Session, actor: Actor, user: User, incident: Incident, responder_ids: list[int],
             note: str = "") -> list[Dispatch]:
    """Send crews: the user's own (``dispatchable``), or, while none of those is free, a neighbouring district's."""
    if incident.status == IncidentStatus.CLOSED:
        raise IncidentError("the incident is closed")
    if not responder_ids:
        raise IncidentError("choose at least one responder")
    allowed = {u.id: u for u in session.scalars(dispatchable(session, user, incident))}
    busy = busy_responders(session)
    if all(u in busy for u in allowed):
        allowed |= {u.id: u for u in session.scalars(neighbour_responders(session, user, incident))}
    active = set(session.scalars(select(Dispatch.responder_id).where(
        Dispatch.incident_id == incident.id, Dispatch.status != DispatchStatus.CLOSED)))
    sent = []
    now = utcnow()
    for responder_id in responder_ids:
        responder = allowed.get(responder_id)
        if responder is None:
            raise IncidentError(f"responder {responder_id} not found")
        if responder_id in active:
            raise IncidentError(f"{responder.username} is already on this incident")
        d = Dispatch(incident_id=incident.id, responder_id=responder_id, organisation_id=responder.organisation_id,
                     status=DispatchStatus.SENT, sent_by=user.id, sent_at=now, note=note or None)
        session.add(d)
        session.flush()
        sent.append(d)
        _entry(session, incident, actor, "dispatched", responder.username, {"dispatch_id": d.id,
                                                                             "responder_id": responder_id}, now)
    incident.status = furthest(incident.status, IncidentStatus.DISPATCHED)
    audit.append(session, actor, Action.DISPATCHED, object_type="incident", object_id=incident.id,
                 details={"responders": responder_ids})
    return sent


def report(session: Session, actor: Actor, user: User, d: Dispatch, status: str, note: str = "") -> Dispatch:
    """A crew reports its progress (forward only; steps may be skipped)."""
    if d.responder_id != user.id and user.role != Role.PLATFORM_ADMIN:
        raise IncidentError(f"dispatch {d.id} not found")
    if status not in set(DispatchStatus) or status == DispatchStatus.SENT:
        raise IncidentError("status must be acknowledged, en_route, on_scene or closed")
    if not dispatch_may_move(d.status, status):
        raise IncidentError(f"the crew already reported {d.status}; it cannot go back to {status}")
    incident = session.get(Incident, d.incident_id)
    now = utcnow()
    d.status = status
    stamp = {DispatchStatus.ACKNOWLEDGED: "acknowledged_at", DispatchStatus.EN_ROUTE: "en_route_at",
             DispatchStatus.ON_SCENE: "on_scene_at", DispatchStatus.CLOSED: "closed_at"}
    # Skipped steps take this time too: arriving without "en route" still answers "when were they on the way".
    order = [DispatchStatus.ACKNOWLEDGED, DispatchStatus.EN_ROUTE, DispatchStatus.ON_SCENE, DispatchStatus.CLOSED]
    for step in order[:order.index(DispatchStatus(status)) + 1]:
        if getattr(d, stamp[step]) is None:
            setattr(d, stamp[step], now)
    if note.strip():
        d.note = note.strip()[:2000]
    if incident.status != IncidentStatus.CLOSED:
        incident.status = furthest(incident.status, STATUS_FROM_DISPATCH[DispatchStatus(status)])
    _entry(session, incident, actor, f"crew_{status}", note.strip(), {"dispatch_id": d.id,
                                                                     "responder": user.username}, now)
    audit.append(session, actor, Action.DISPATCH_STATUS, object_type="dispatch", object_id=d.id,
                 details={"incident_id": incident.id, "status": status})
    return d


def close_incident(session: Session, actor: Actor, incident: Incident, resolution: str) -> Incident:
    if incident.status == IncidentStatus.CLOSED:
        raise IncidentError("the incident is already closed")
    if not (resolution or "").strip():
        raise IncidentError("say how the incident ended (a resolution is required)")
    now = utcnow()
    incident.status, incident.closed_at, incident.resolution = IncidentStatus.CLOSED, now, resolution.strip()
    _entry(session, incident, actor, "closed", incident.resolution, None, now)
    audit.append(session, actor, Action.CLOSED, object_type="incident", object_id=incident.id)
    return incident


CREW_ROLES = frozenset({Role.RESPONDER, Role.PLATFORM_ADMIN})
INCIDENT_SUMMARY = ("id", "offence_type", "title", "description", "priority", "status", "place", "lat", "lon",
                    "organisation", "created_by", "created_at", "closed_at", "resolution")


def may_take_calls(user: User) -> bool:
    """Who has a crew's page (``/respond``) and its push of new calls."""
    return user.role in CREW_ROLES


def crew_items(incident: dict[str, Any], user_id: int) -> list[dict[str, Any]]:
    """From an incident as the bus carries it (``incident_out(full=True)``), the user's dispatches in the shape of
    ``GET /dispatches/mine`` (the dispatch and a summary of its incident): what the crew's push may show."""
    summary = {k: incident.get(k) for k in INCIDENT_SUMMARY}
    return [d | {"incident": summary} for d in incident.get("dispatches") or []
            if d.get("responder_id") == user_id]


def my_dispatches(user: User, active_only: bool = True) -> Select:
    query = select(Dispatch).where(Dispatch.responder_id == user.id).order_by(Dispatch.sent_at.desc())
    if active_only:
        query = query.where(Dispatch.status != DispatchStatus.CLOSED)
    return query


# --- export ---------------------------------------------------------------------------------------------------------

EXPORT_COLUMNS = ("id", "offence_type", "title", "priority", "status", "place", "lat", "lon", "organisation",
                  "created_at", "first_alarm_at", "first_dispatch_at", "first_on_scene_at", "closed_at",
                  "alarms", "responders", "resolution")


def export_rows(session: Session, user: User, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Incidents opened in [start, end) that the user sees, one flat row each (for CSV) with response times."""
    incidents = session.scalars(visible_incidents(user).where(Incident.created_at >= start, Incident.created_at < end)
                                .order_by(Incident.created_at)).all()
    rows = []
    for inc in incidents:
        alarms = session.scalars(select(Alarm).where(Alarm.incident_id == inc.id)).all()
        dispatches = session.scalars(select(Dispatch).where(Dispatch.incident_id == inc.id)).all()
        place = session.get(Place, inc.place_id) if inc.place_id else None
        org = session.get(Organisation, inc.organisation_id) if inc.organisation_id else None
        on_scene = [d.on_scene_at for d in dispatches if d.on_scene_at]
        rows.append({
            "id": inc.id, "offence_type": inc.offence_type, "title": inc.title, "priority": inc.priority,
            "status": inc.status, "place": place.name if place else "", "lat": inc.lat, "lon": inc.lon,
            "organisation": org.name if org else "", "created_at": inc.created_at,
            "first_alarm_at": min((a.raised_at for a in alarms), default=None),
            "first_dispatch_at": min((d.sent_at for d in dispatches), default=None),
            "first_on_scene_at": min(on_scene, default=None), "closed_at": inc.closed_at,
            "alarms": len(alarms), "responders": ",".join(sorted({_name(session, d.responder_id) or ""
                                                                  for d in dispatches})),
            "resolution": inc.resolution or "",
        })
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The export as CSV; text that a spreadsheet would run as a formula is neutralised (``safe_cell``)."""
    return csv_text(EXPORT_COLUMNS, ([iso_utc(v) if isinstance(v, datetime) else ("" if v is None else v)
                                      for v in (row.get(k) for k in EXPORT_COLUMNS)] for row in rows))

