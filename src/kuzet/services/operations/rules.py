"""Alarm rules: which events become alarms (where, when, what, for how long, how urgent).

A rule applies to one camera, to the cameras of a place subtree, or — with neither — to every camera its organisation
sees (every camera for a platform-wide rule). An organisation's own rule raises alarms for that organisation only; a
platform-wide rule raises them for every responding organisation that holds a grant on the camera (the district duty
unit, the control centre, the site's security firm).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from kuzet.domain.access import Right, Role
from kuzet.domain.operations import OBJECT_LABELS, EventKind, Priority, ScheduleError, in_schedule, parse_schedule
from kuzet.services import access, audit
from kuzet.services.audit import Actor
from kuzet.store.models import Camera, Organisation, Place, User
from kuzet.store.models.operations import AlarmRule, Event

RULE_KINDS = (*EventKind, "any")
FIELDS = ("name", "place_id", "camera_id", "event_kind", "labels", "zone", "min_duration", "schedule", "priority",
          "enabled")


class RuleError(ValueError):
    pass


class Action:
    RULE_CREATED = "alarm_rule.created"
    RULE_CHANGED = "alarm_rule.changed"
    RULE_DELETED = "alarm_rule.deleted"


def may_manage_rules(user: User) -> bool:
    return user.role in (Role.PLATFORM_ADMIN, Role.POLICE_OPERATOR, Role.ORGANISATION_ADMIN)


def visible_rules(user: User) -> Select:
    query = select(AlarmRule).order_by(AlarmRule.id)
    if user.role == Role.PLATFORM_ADMIN:
        return query
    if not may_manage_rules(user) or user.organisation_id is None:
        return query.where(AlarmRule.id.is_(None))
    return query.where(AlarmRule.organisation_id == user.organisation_id)


def rule_out(rule: AlarmRule) -> dict[str, Any]:
    return {"id": rule.id, "name": rule.name, "organisation_id": rule.organisation_id, "place_id": rule.place_id,
            "camera_id": rule.camera_id, "event_kind": rule.event_kind,
            "labels": rule.labels.split(",") if rule.labels else None, "zone": rule.zone,
            "min_duration": rule.min_duration, "schedule": rule.schedule, "priority": rule.priority,
            "enabled": rule.enabled, "created_at": rule.created_at}


def _validate(session: Session, user: User, values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "name" in out and not (out["name"] or "").strip():
        raise RuleError("a rule needs a name")
    if out.get("event_kind") is not None and out["event_kind"] not in RULE_KINDS:
        raise RuleError(f"event_kind must be one of {', '.join(RULE_KINDS)}")
    labels = out.get("labels")
    if isinstance(labels, str):
        labels = [p.strip() for p in labels.split(",") if p.strip()]
    if labels:
        unknown = [label for label in labels if label not in (*OBJECT_LABELS, "plate")]
        if unknown:
            raise RuleError(f"unknown label(s) {', '.join(unknown)} (known: {', '.join(OBJECT_LABELS)})")
        out["labels"] = ",".join(labels)
    elif "labels" in out:
        out["labels"] = None
    if out.get("priority") is not None and out["priority"] not in set(Priority):
        raise RuleError(f"priority must be one of {', '.join(Priority)}")
    if out.get("min_duration") is not None and not 0 <= float(out["min_duration"]) <= 86400:
        raise RuleError("min_duration must be between 0 and 86400 seconds")
    if "schedule" in out:
        try:
            parse_schedule(out["schedule"])
        except ScheduleError as exc:
            raise RuleError(str(exc)) from None
        out["schedule"] = out["schedule"] or None
    if out.get("camera_id") is not None and out.get("place_id") is not None:
        raise RuleError("a rule applies to a camera or to a place, not both")
    if out.get("camera_id") is not None:
        camera = session.get(Camera, out["camera_id"])
        if camera is None or not access.camera_rights(session, user, camera):
            raise RuleError(f"camera {out['camera_id']} not found")
    if out.get("place_id") is not None:
        place = session.get(Place, out["place_id"])
        if place is None or place.id not in set(session.scalars(
                access.visible_places(session, user).with_only_columns(Place.id).where(Place.id == place.id))):
            raise RuleError(f"place {out['place_id']} not found")
    return out


def create_rule(session: Session, actor: Actor, user: User, **values: Any) -> AlarmRule:
    if not may_manage_rules(user):
        raise RuleError("your role may not make alarm rules")
    values = _validate(session, user, {k: v for k, v in values.items() if k in FIELDS})
    organisation_id = values.pop("organisation_id", None)
    if user.role != Role.PLATFORM_ADMIN:
        organisation_id = user.organisation_id  # an organisation's rules are its own
    rule = AlarmRule(**{k: v for k, v in values.items() if v is not None}, organisation_id=organisation_id,
                     created_by=actor.user_id)
    session.add(rule)
    session.flush()
    audit.append(session, actor, Action.RULE_CREATED, object_type="alarm_rule", object_id=rule.id,
                 details=rule_out(rule) | {"created_at": None})
    return rule


def update_rule(session: Session, actor: Actor, user: User, rule: AlarmRule, **changes: Any) -> AlarmRule:
    changes = _validate(session, user, {k: v for k, v in changes.items() if k in FIELDS})
    for key, value in changes.items():
        setattr(rule, key, value)
    if rule.camera_id is not None and rule.place_id is not None:
        raise RuleError("a rule applies to a camera or to a place, not both")
    audit.append(session, actor, Action.RULE_CHANGED, object_type="alarm_rule", object_id=rule.id, details=changes)
    return rule


def delete_rule(session: Session, actor: Actor, rule: AlarmRule) -> None:
    audit.append(session, actor, Action.RULE_DELETED, object_type="alarm_rule", object_id=rule.id,
                 details={"name": rule.name})
    session.delete(rule)


# --- evaluation -----------------------------------------------------------------------------------------------------

def _covers(session: Session, rule: AlarmRule, camera: Camera, place_paths: dict[int, str]) -> bool:
    if rule.camera_id is not None:
        return rule.camera_id == camera.id
    if rule.place_id is not None:
        camera_path = place_paths.get(camera.place_id) or ""
        rule_path = place_paths.get(rule.place_id)
        return rule_path is not None and camera_path.startswith(rule_path)
    if rule.organisation_id is None:
        return True
    return any(org.id == rule.organisation_id for org in access.organisations_seeing(session, camera, Right.VIEW_LIVE))


def enabled_rules(session: Session) -> list[AlarmRule]:
    return list(session.scalars(select(AlarmRule).where(AlarmRule.enabled.is_(True))))


def matching_rules(session: Session, event: Event, camera: Camera, duration: float, tz: str,
                   zones: list[str], rules: list[AlarmRule] | None = None) -> list[AlarmRule]:
    """Enabled rules this event satisfies now (kind, label, zone, schedule at its start, lasted long enough)."""
    if rules is None:
        rules = enabled_rules(session)
    candidates = [
        rule for rule in rules
        if rule.enabled and rule.event_kind in ("any", event.kind)
        and not (rule.labels and (event.label or "") not in rule.labels.split(","))
        and not (rule.zone and rule.zone not in zones)
        and duration + 1e-6 >= (rule.min_duration or 0)
        and in_schedule(parse_schedule(rule.schedule), event.start_at, tz)
    ]
    if not candidates:
        return []
    place_ids = {camera.place_id} | {r.place_id for r in candidates if r.place_id}
    place_paths = dict(session.execute(select(Place.id, Place.path).where(Place.id.in_(place_ids))).all())
    return [rule for rule in candidates if _covers(session, rule, camera, place_paths)]


def rule_organisations(session: Session, rule: AlarmRule | None, camera: Camera,
                       responders: frozenset[str]) -> list[Organisation]:
    """Where an alarm of this rule on this camera goes."""
    seeing = access.organisations_seeing(session, camera, Right.VIEW_LIVE)
    if rule is not None and rule.organisation_id is not None:
        return [org for org in seeing if org.id == rule.organisation_id]
    return [org for org in seeing if org.kind in responders]

