"""Alarms: raised from events by rules or hot-list hits, routed to organisations, handled by operators.

An alarm is raised once per (event, rule) or (event, hot-list entry). It goes to the organisations that hold a grant
on its camera (``rules.rule_organisations``); an operator sees it when their organisation is among its routes and
they may watch the camera live. Acknowledge, dismiss as false (with a reason) or open an incident; every move is
timestamped for the response-time figures (``kpis.py``).

Repeats fold: while an alarm of a rule (or hot-list entry) on a camera is open in the queue (new or acknowledged) and
was last seen less than ``REPEAT_WINDOW`` ago, a further matching event on that camera raises nothing new — it
counts one more occurrence of that alarm and makes its event the alarm's latest picture. The queue, the WebSocket
(``{"type": "repeated"}``) and the KPIs therefore all see one alarm per pass of a parked car or a loitering person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, exists, func, select
from sqlalchemy.orm import Session

from kuzet.domain.access import POLICE_KINDS, OrganisationKind, Right, Role
from kuzet.domain.operations import ALARM_MOVES, PRIORITY_RANK, AlarmState
from kuzet.services import access, audit
from kuzet.services.audit import Actor
from kuzet.services.operations.events import EVENT_COLUMNS, event_out, event_zones
from kuzet.services.operations.hotlists import match as hotlist_match
from kuzet.services.operations.rules import matching_rules, rule_organisations
from kuzet.store.db import utcnow
from kuzet.store.models import Camera, Place, User
from kuzet.store.models.operations import Alarm, AlarmRoute, AlarmRule, Event, HotList, HotListEntry

# Who receives alarms of platform-wide rules: the organisations that respond to what cameras see.
RESPONDERS = frozenset({OrganisationKind.POLICE_DUTY_UNIT, OrganisationKind.CONTROL_CENTRE,
                        OrganisationKind.SECURITY_FIRM})
QUEUE_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.POLICE_OPERATOR, Role.ORGANISATION_ADMIN})
# While an alarm of a rule (or hot-list entry) on a camera is open in the queue and was last seen within this time,
# more matching events on that camera fold into it (one more occurrence, the latest picture) instead of raising new
# alarms: the operator already has the camera in front of them.
REPEAT_WINDOW = timedelta(minutes=5)
OPEN_STATES = (AlarmState.NEW, AlarmState.ACKNOWLEDGED)
# The offence type an incident opened from an alarm starts with (the operator may change it): from the hot list's kind,
# else from what the camera looks at ("Stop thefts": entrances, yards and shops; schools: damage).
HOT_LIST_OFFENCES = {"stolen": "vehicle_theft"}
CAMERA_OFFENCES = {"entrance": "theft", "yard": "theft", "shop": "theft", "school": "vandalism"}


class AlarmError(ValueError):
    pass


class Action:
    ACKNOWLEDGED = "alarm.acknowledged"
    DISMISSED = "alarm.dismissed"
    VIEWED = "alarm.viewed"


@dataclass(frozen=True)
class Outcome:
    """What an event did to the queue: an alarm ``raised``, or an open one ``repeated``."""

    alarm: Alarm
    kind: str  # "raised" | "repeated"


def raise_alarm(session: Session, event: Event, camera: Camera, title: str, priority: str, organisations: list[int],
                rule: AlarmRule | None = None, entry: HotListEntry | None = None) -> Alarm | None:
    """One alarm for an event, routed to ``organisations`` (none: nobody would see it, so it is not raised)."""
    if not organisations:
        return None
    now = utcnow()
    alarm = Alarm(event_id=event.id, rule_id=rule.id if rule else None, hot_list_entry_id=entry.id if entry else None,
                  camera_id=camera.id, title=title[:300], priority=priority, state=AlarmState.NEW,
                  raised_at=now, occurrences=1, last_seen_at=now, last_event_id=event.id)
    session.add(alarm)
    session.flush()
    for org_id in sorted(set(organisations)):
        session.add(AlarmRoute(alarm_id=alarm.id, organisation_id=org_id))
    session.flush()
    return alarm


def _open_alarm(session: Session, camera: Camera, column: Any, key: int) -> Alarm | None:
    """The alarm of this rule (``Alarm.rule_id``) or hot-list entry (``Alarm.hot_list_entry_id``) on this camera
    still open in the queue and seen within ``REPEAT_WINDOW``, if any."""
    seen = func.coalesce(Alarm.last_seen_at, Alarm.raised_at)
    return session.scalar(select(Alarm).where(
        Alarm.camera_id == camera.id, column == key, Alarm.state.in_(OPEN_STATES),
        seen >= utcnow() - REPEAT_WINDOW).order_by(Alarm.id.desc()).limit(1))


def repeat(alarm: Alarm, event: Event) -> Alarm:
    """One more sighting of what the alarm is about: counted, and its picture becomes the alarm's latest."""
    alarm.occurrences = (alarm.occurrences or 1) + 1
    alarm.last_seen_at = utcnow()
    alarm.last_event_id = event.id
    return alarm


def _new_sighting(session: Session, alarm: Alarm, event: Event) -> bool:
    """Whether the event is a later sighting than the alarm's latest (an update of an event already counted, or of
    an older one, is not)."""
    if event.id in (alarm.event_id, alarm.last_event_id):
        return False
    latest_id = alarm.last_event_id or alarm.event_id
    latest = session.get(Event, latest_id) if latest_id else None
    return latest is None or event.start_at > latest.start_at


def alarms_for_event(session: Session, event: Event, camera: Camera, duration: float, tz: str,
                     rules: list[AlarmRule] | None = None) -> list[Outcome]:
    """What this event does now: each matching rule and each hot-list hit of its plate raises an alarm once, or, when
    an alarm of the same rule or entry is open on this camera (``REPEAT_WINDOW``), counts as its repeat. An update of
    an event that already raised or repeated an alarm does nothing again. ``rules``: the enabled rules, if the caller
    keeps them at hand (the analysis service does, to spare a query per observation)."""
    out: list[Outcome] = []

    def handle(column: Any, key: int, done: set[int], make: Any) -> None:
        found = _open_alarm(session, camera, column, key)
        if found is not None:
            if _new_sighting(session, found, event):
                out.append(Outcome(repeat(found, event), "repeated"))
            return
        if key in done:  # this event already raised an alarm that has since been handled
            return
        alarm = make()
        if alarm is not None:
            out.append(Outcome(alarm, "raised"))

    def done_for(column: Any) -> set[int]:
        return set(session.scalars(select(column).where(
            (Alarm.event_id == event.id) | (Alarm.last_event_id == event.id), column.is_not(None))))

    matching = matching_rules(session, event, camera, duration, tz, event_zones(event), rules)
    if matching:
        done = done_for(Alarm.rule_id)
        for rule in matching:
            handle(Alarm.rule_id, rule.id, done, lambda rule=rule: raise_alarm(
                session, event, camera, rule.name, rule.priority,
                [o.id for o in rule_organisations(session, rule, camera, RESPONDERS)], rule=rule))
    if event.plate:
        done = done_for(Alarm.hot_list_entry_id)
        for entry, hot_list in hotlist_match(session, event.plate, event.start_at):
            def make(entry: HotListEntry = entry, hot_list: HotList = hot_list) -> Alarm | None:
                police = access.organisations_seeing(session, camera, Right.VIEW_LIVE, POLICE_KINDS)
                title = f"{hot_list.name}: {event.plate}" + (f" — {entry.reason}" if entry.reason else "")
                return raise_alarm(session, event, camera, title, hot_list.priority, [o.id for o in police],
                                   entry=entry)
            handle(Alarm.hot_list_entry_id, entry.id, done, make)
    session.flush()
    return out


def raise_for_event(session: Session, event: Event, camera: Camera, duration: float, tz: str,
                    rules: list[AlarmRule] | None = None) -> list[Alarm]:
    """The alarms this event raised (repeats of open alarms are counted on them, see ``alarms_for_event``)."""
    return [o.alarm for o in alarms_for_event(session, event, camera, duration, tz, rules) if o.kind == "raised"]


def suggested_offence(camera_kind: str | None, hot_list_kind: str | None) -> str:
    """The offence type an incident from this alarm starts with (the operator may change it)."""
    if hot_list_kind is not None:
        return HOT_LIST_OFFENCES.get(hot_list_kind, "other")
    return CAMERA_OFFENCES.get(camera_kind or "", "other")


def suggested_offence_for(session: Session, alarm: Alarm) -> str:
    camera = session.get(Camera, alarm.camera_id)
    entry = session.get(HotListEntry, alarm.hot_list_entry_id) if alarm.hot_list_entry_id else None
    hot_list = session.get(HotList, entry.list_id) if entry else None
    return suggested_offence(camera.kind if camera else None, hot_list.kind if hot_list else None)


# --- who sees what --------------------------------------------------------------------------------------------------

def may_use_queue(user: User) -> bool:
    return user.role in QUEUE_ROLES


def visible_alarms(user: User, session: Session | None = None, *, page_size: int | None = None) -> Select:
    """Alarms routed to the user's organisation on cameras the user may watch live; all for platform admins.
    With ``session``, the cameras come from the caller's cached reach (see ``access.camera_filter``): no camera
    condition for a caller who sees every camera, so the queue's order index serves the page directly; with
    ``page_size`` (keyset pages of that many, in the queue's order), a caller who sees a large share of the
    cameras has that index walked too on SQLite."""
    query = select(Alarm)
    if user.role == Role.PLATFORM_ADMIN:
        return query
    if not may_use_queue(user) or user.organisation_id is None:
        return query.where(Alarm.id.is_(None))
    routed = exists().where(AlarmRoute.alarm_id == Alarm.id, AlarmRoute.organisation_id == user.organisation_id)
    if session is not None:
        condition = access.camera_filter(session, user, Alarm.camera_id, Right.VIEW_LIVE, page_size=page_size)
        return query.where(routed) if condition is None else query.where(routed, condition)
    cameras = access.visible_cameras(user, Right.VIEW_LIVE).with_only_columns(Camera.id)
    return query.where(routed, Alarm.camera_id.in_(cameras))


# What the queue shows of an alarm: a page selects these columns (Core rows, no ORM objects to build).
ALARM_COLUMNS = (Alarm.id, Alarm.title, Alarm.priority, Alarm.state, Alarm.raised_at, Alarm.occurrences,
                 Alarm.last_seen_at, Alarm.event_id, Alarm.last_event_id, Alarm.camera_id, Alarm.rule_id,
                 Alarm.hot_list_entry_id, Alarm.acknowledged_at, Alarm.acknowledged_by, Alarm.dismissed_at,
                 Alarm.dismiss_reason, Alarm.incident_id)


# The statements of a page's details, built once (building a SELECT is a good part of its cost in Python): the ids
# are an expanding bound parameter.
_ROUTES = select(AlarmRoute.alarm_id, AlarmRoute.organisation_id).where(
    AlarmRoute.alarm_id.in_(bindparam("ids", expanding=True)))
_CAMERAS = (select(Camera.id, Camera.name, Camera.kind, Camera.lat, Camera.lon, Place.id.label("place_id"),
                   Place.name.label("place_name"), Place.address.label("place_address"))
            .outerjoin(Place, Place.id == Camera.place_id).where(Camera.id.in_(bindparam("ids", expanding=True))))
_EVENTS = select(*EVENT_COLUMNS).where(Event.id.in_(bindparam("ids", expanding=True)))
_HOT_LIST_ENTRIES = (select(HotListEntry.id, HotListEntry.plate, HotListEntry.reason, HotList.id.label("list_id"),
                            HotList.name.label("list_name"), HotList.kind.label("list_kind"))
                     .join(HotList, HotList.id == HotListEntry.list_id)
                     .where(HotListEntry.id.in_(bindparam("ids", expanding=True))))


def routes(session: Session, alarm_ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {i: [] for i in alarm_ids}
    if alarm_ids:
        for alarm_id, org_id in session.execute(_ROUTES, {"ids": alarm_ids}):
            out[alarm_id].append(org_id)
    return out


def alarms_out(session: Session, alarms: list[Any]) -> list[dict[str, Any]]:
    """A page of alarms (rows of ``ALARM_COLUMNS``, or ORM objects) as ``alarm_out`` shows each, from rows of their
    routes, cameras with their places, latest events and hot-list entries: four statements at most, whatever the
    page's size, and no ORM object built."""
    if not alarms:
        return []
    organisations = routes(session, [a.id for a in alarms])
    cameras = {row.id: row for row in session.execute(_CAMERAS, {"ids": sorted({a.camera_id for a in alarms})})}
    event_ids = sorted({i for a in alarms for i in (a.event_id, a.last_event_id) if i is not None})
    events = {row.id: row for row in session.execute(_EVENTS, {"ids": event_ids})} if event_ids else {}
    entry_ids = sorted({a.hot_list_entry_id for a in alarms if a.hot_list_entry_id})
    hot = {row.id: {"list_id": row.list_id, "list": row.list_name, "kind": row.list_kind, "plate": row.plate,
                    "reason": row.reason} for row in session.execute(_HOT_LIST_ENTRIES, {"ids": entry_ids})} \
        if entry_ids else {}
    out = []
    for a in alarms:
        camera = cameras.get(a.camera_id)
        place = ({"id": camera.place_id, "name": camera.place_name, "address": camera.place_address}
                 if camera is not None and camera.place_id is not None else None)
        event = events.get(a.event_id) if a.event_id else None
        latest = event
        if a.last_event_id and a.last_event_id != a.event_id:
            latest = events.get(a.last_event_id) or event
        out.append(_alarm_json(a, camera, place, latest, hot.get(a.hot_list_entry_id) if a.hot_list_entry_id else None,
                               organisations[a.id]))
    return out


def alarm_out(session: Session, alarm: Alarm, organisations: list[int] | None = None) -> dict[str, Any]:
    camera = session.get(Camera, alarm.camera_id)
    place = session.get(Place, camera.place_id) if camera else None
    event = session.get(Event, alarm.event_id) if alarm.event_id else None
    hot = None
    if alarm.hot_list_entry_id:
        entry = session.get(HotListEntry, alarm.hot_list_entry_id)
        hot_list = session.get(HotList, entry.list_id) if entry else None
        if entry and hot_list:
            hot = {"list_id": hot_list.id, "list": hot_list.name, "kind": hot_list.kind, "plate": entry.plate,
                   "reason": entry.reason}
    latest = event
    if alarm.last_event_id and alarm.last_event_id != alarm.event_id:
        latest = session.get(Event, alarm.last_event_id) or event
    return _alarm_json(alarm, camera, {"id": place.id, "name": place.name, "address": place.address} if place
                       else None, latest, hot,
                       organisations if organisations is not None else routes(session, [alarm.id])[alarm.id])


def _alarm_json(alarm: Any, camera: Any, place: dict[str, Any] | None, latest: Any, hot: dict[str, Any] | None,
                organisations: list[int]) -> dict[str, Any]:
    """One alarm as the API shows it, from its row (or object), its camera's, its latest event's, its place and
    hot-list entry."""
    ev = event_out(latest, camera) if latest is not None else None
    return {
        "id": alarm.id, "title": alarm.title, "priority": alarm.priority,
        "priority_rank": PRIORITY_RANK.get(alarm.priority, 0),  # Priority(…).rank; 0 for an unknown priority
        "state": alarm.state, "raised_at": alarm.raised_at,
        "occurrences": alarm.occurrences or 1, "last_seen_at": alarm.last_seen_at or alarm.raised_at,
        "first_event_id": alarm.event_id,
        "suggested_offence_type": suggested_offence(camera.kind if camera else None, hot["kind"] if hot else None),
        "camera": {"id": alarm.camera_id, "name": camera.name if camera else None, "kind": camera.kind if camera
                   else None, "lat": camera.lat if camera else None, "lon": camera.lon if camera else None},
        "place": place,
        "rule_id": alarm.rule_id, "hot_list": hot, "event": ev,
        "snapshot_url": ev["snapshot_url"] if ev else None, "crop_url": ev["crop_url"] if ev else None,
        "clip_url": ev["clip_url"] if ev else None, "live_url": f"/cameras/{alarm.camera_id}",
        "acknowledged_at": alarm.acknowledged_at, "acknowledged_by": alarm.acknowledged_by,
        "dismissed_at": alarm.dismissed_at, "dismiss_reason": alarm.dismiss_reason,
        "incident_id": alarm.incident_id,
        "organisations": organisations,
    }


# --- handling -------------------------------------------------------------------------------------------------------

def _move(alarm: Alarm, to: AlarmState) -> None:
    current = AlarmState(alarm.state)
    if to not in ALARM_MOVES[current]:
        raise AlarmError(f"alarm {alarm.id} is {current.value}; it cannot become {to.value}")


def _first_touch(alarm: Alarm, user: User, at: datetime) -> None:
    """Time to acknowledge counts to the first action an operator took on the alarm, whatever it was."""
    if alarm.acknowledged_at is None:
        alarm.acknowledged_at, alarm.acknowledged_by = at, user.id


def acknowledge(session: Session, actor: Actor, user: User, alarm: Alarm) -> Alarm:
    _move(alarm, AlarmState.ACKNOWLEDGED)
    _first_touch(alarm, user, utcnow())
    alarm.state = AlarmState.ACKNOWLEDGED
    audit.append(session, actor, Action.ACKNOWLEDGED, object_type="alarm", object_id=alarm.id,
                 camera_id=alarm.camera_id)
    return alarm


def dismiss(session: Session, actor: Actor, user: User, alarm: Alarm, reason: str) -> Alarm:
    if not (reason or "").strip():
        raise AlarmError("say why the alarm is false (a reason is required)")
    _move(alarm, AlarmState.DISMISSED)
    now = utcnow()
    _first_touch(alarm, user, now)
    alarm.state, alarm.dismissed_at, alarm.dismissed_by = AlarmState.DISMISSED, now, user.id
    alarm.dismiss_reason = reason.strip()[:2000]
    audit.append(session, actor, Action.DISMISSED, object_type="alarm", object_id=alarm.id, camera_id=alarm.camera_id,
                 details={"reason": alarm.dismiss_reason})
    return alarm


def attach_to_incident(session: Session, user: User, alarm: Alarm, incident_id: int) -> Alarm:
    _move(alarm, AlarmState.INCIDENT)
    _first_touch(alarm, user, utcnow())
    alarm.state, alarm.incident_id = AlarmState.INCIDENT, incident_id
    return alarm
