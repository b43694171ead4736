"""Alarms: raised from events by rules or hot-list hits, routed to organisations, handled by operators.

An alarm is raised once per (event, rule) or (event, hot-list entry). It goes to the organisations that hold a grant
on its camera (``rules.rule_organisations``); an operator sees it when their organisation is among its routes and
they may watch the camera live. Acknowledge, dismiss as false (with a reason) or open an incident; every move is
timestamped for the response-time figures (``kpis.py``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from kuzet.domain.access import POLICE_KINDS, OrganisationKind, Right, Role
from kuzet.domain.operations import ALARM_MOVES, AlarmState, Priority
from kuzet.services import access, audit
from kuzet.services.audit import Actor
from kuzet.services.operations.events import event_out, event_zones
from kuzet.services.operations.hotlists import match as hotlist_match
from kuzet.services.operations.rules import matching_rules, rule_organisations
from kuzet.store.db import utcnow
from kuzet.store.models import Camera, Place, User
from kuzet.store.models.operations import Alarm, AlarmRoute, AlarmRule, Event, HotList, HotListEntry

# Who receives alarms of platform-wide rules: the organisations that respond to what cameras see.
RESPONDERS = frozenset({OrganisationKind.POLICE_DUTY_UNIT, OrganisationKind.CONTROL_CENTRE,
                        OrganisationKind.SECURITY_FIRM})
QUEUE_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.POLICE_OPERATOR, Role.ORGANISATION_ADMIN})
# While an alarm of a rule (or hot-list entry) on a camera waits unhandled in the queue, more matching events on that
# camera within this time raise nothing new: the operator already has the camera in front of them.
REPEAT_WINDOW = timedelta(minutes=5)


class AlarmError(ValueError):
    pass


class Action:
    ACKNOWLEDGED = "alarm.acknowledged"
    DISMISSED = "alarm.dismissed"
    VIEWED = "alarm.viewed"


def raise_alarm(session: Session, event: Event, camera: Camera, title: str, priority: str, organisations: list[int],
                rule: AlarmRule | None = None, entry: HotListEntry | None = None) -> Alarm | None:
    """One alarm for an event, routed to ``organisations`` (none: nobody would see it, so it is not raised)."""
    if not organisations:
        return None
    alarm = Alarm(event_id=event.id, rule_id=rule.id if rule else None, hot_list_entry_id=entry.id if entry else None,
                  camera_id=camera.id, title=title[:300], priority=priority, state=AlarmState.NEW,
                  raised_at=utcnow())
    session.add(alarm)
    session.flush()
    for org_id in sorted(set(organisations)):
        session.add(AlarmRoute(alarm_id=alarm.id, organisation_id=org_id))
    session.flush()
    return alarm


def _waiting(session: Session, camera: Camera, column: Any) -> set[int]:
    """Rules (``Alarm.rule_id``) or hot-list entries (``Alarm.hot_list_entry_id``) with an alarm on this camera
    still new in the queue and recently raised."""
    return set(session.scalars(select(column).where(
        Alarm.camera_id == camera.id, Alarm.state == AlarmState.NEW, column.is_not(None),
        Alarm.raised_at >= utcnow() - REPEAT_WINDOW)))


def raise_for_event(session: Session, event: Event, camera: Camera, duration: float, tz: str,
                    rules: list[AlarmRule] | None = None) -> list[Alarm]:
    """Alarms this event raises now: each matching rule once, and each hot-list hit of its plate once, unless the
    same rule or entry already waits in the queue for this camera (``REPEAT_WINDOW``). ``rules``: the enabled rules,
    if the caller keeps them at hand (the analysis service does, to spare a query per observation)."""
    raised: list[Alarm] = []
    matching = matching_rules(session, event, camera, duration, tz, event_zones(event), rules)
    done_rules: set[int] = set()
    if matching:
        done_rules = set(session.scalars(select(Alarm.rule_id).where(Alarm.event_id == event.id,
                                                                     Alarm.rule_id.is_not(None))))
        done_rules |= _waiting(session, camera, Alarm.rule_id)
    for rule in matching:
        if rule.id in done_rules:
            continue
        orgs = [o.id for o in rule_organisations(session, rule, camera, RESPONDERS)]
        alarm = raise_alarm(session, event, camera, rule.name, rule.priority, orgs, rule=rule)
        if alarm:
            raised.append(alarm)
    if event.plate:
        done_entries = set(session.scalars(select(Alarm.hot_list_entry_id).where(
            Alarm.event_id == event.id, Alarm.hot_list_entry_id.is_not(None))))
        done_entries |= _waiting(session, camera, Alarm.hot_list_entry_id)
        for entry, hot_list in hotlist_match(session, event.plate, event.start_at):
            if entry.id in done_entries:
                continue
            police = access.organisations_seeing(session, camera, Right.VIEW_LIVE, POLICE_KINDS)
            orgs = [o.id for o in police]
            title = f"{hot_list.name}: {event.plate}" + (f" — {entry.reason}" if entry.reason else "")
            alarm = raise_alarm(session, event, camera, title, hot_list.priority, orgs, entry=entry)
            if alarm:
                raised.append(alarm)
    return raised


# --- who sees what --------------------------------------------------------------------------------------------------

def may_use_queue(user: User) -> bool:
    return user.role in QUEUE_ROLES


def visible_alarms(user: User) -> Select:
    """Alarms routed to the user's organisation on cameras the user may watch live; all for platform admins."""
    query = select(Alarm)
    if user.role == Role.PLATFORM_ADMIN:
        return query
    if not may_use_queue(user) or user.organisation_id is None:
        return query.where(Alarm.id.is_(None))
    routed = exists().where(AlarmRoute.alarm_id == Alarm.id, AlarmRoute.organisation_id == user.organisation_id)
    cameras = access.visible_cameras(user, Right.VIEW_LIVE).with_only_columns(Camera.id)
    return query.where(routed, Alarm.camera_id.in_(cameras))


def routes(session: Session, alarm_ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {i: [] for i in alarm_ids}
    if alarm_ids:
        for alarm_id, org_id in session.execute(select(AlarmRoute.alarm_id, AlarmRoute.organisation_id)
                                                .where(AlarmRoute.alarm_id.in_(alarm_ids))):
            out[alarm_id].append(org_id)
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
    ev = event_out(event, camera) if event else None
    return {
        "id": alarm.id, "title": alarm.title, "priority": alarm.priority,
        "priority_rank": Priority(alarm.priority).rank if alarm.priority in set(Priority) else 0,
        "state": alarm.state, "raised_at": alarm.raised_at,
        "camera": {"id": alarm.camera_id, "name": camera.name if camera else None, "kind": camera.kind if camera
                   else None, "lat": camera.lat if camera else None, "lon": camera.lon if camera else None},
        "place": {"id": place.id, "name": place.name, "address": place.address} if place else None,
        "rule_id": alarm.rule_id, "hot_list": hot, "event": ev,
        "snapshot_url": ev["snapshot_url"] if ev else None, "crop_url": ev["crop_url"] if ev else None,
        "clip_url": ev["clip_url"] if ev else None, "live_url": f"/cameras/{alarm.camera_id}",
        "acknowledged_at": alarm.acknowledged_at, "acknowledged_by": alarm.acknowledged_by,
        "dismissed_at": alarm.dismissed_at, "dismiss_reason": alarm.dismiss_reason,
        "incident_id": alarm.incident_id,
        "organisations": organisations if organisations is not None else routes(session, [alarm.id])[alarm.id],
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
