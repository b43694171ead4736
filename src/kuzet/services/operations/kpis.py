"""Response-time figures per unit and period, and false-alarm rates per camera and rule.

- time to acknowledge: alarm raised → the first thing an operator did with it (acknowledge, dismiss, incident);
- time to dispatch: the incident's first alarm (or its opening, if it had none) → the first crew sent;
- time to arrival: the first crew sent → the first crew on scene;
- false-alarm rate: alarms dismissed as false / alarms an operator decided on.

Platform admins, analysts and auditors read every unit; an operations control centre its own figures and those of
every police unit serving inside its area (the district duty units it coordinates); any other unit its own.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.domain.access import POLICE_KINDS, OrganisationKind, Role
from kuzet.domain.operations import AlarmState
from kuzet.store.models import Camera, Organisation, Place, User
from kuzet.store.models.operations import Alarm, AlarmRoute, AlarmRule, Dispatch, Incident

CITY_WIDE = frozenset({Role.PLATFORM_ADMIN, Role.ANALYST, Role.AUDITOR})
KPI_ROLES = CITY_WIDE | {Role.POLICE_OPERATOR, Role.ORGANISATION_ADMIN}


def may_read(user: User) -> bool:
    return user.role in KPI_ROLES and (user.role in CITY_WIDE or user.organisation_id is not None)


def _summary(seconds: list[float]) -> dict[str, Any]:
    if not seconds:
        return {"count": 0, "median": None, "mean": None, "p90": None, "max": None}
    ordered = sorted(seconds)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"count": len(ordered), "median": round(statistics.median(ordered), 1),
            "mean": round(statistics.fmean(ordered), 1), "p90": round(p90, 1), "max": round(ordered[-1], 1)}


def _rate(dismissed: int, decided: int) -> float | None:
    return round(100.0 * dismissed / decided, 1) if decided else None


def units_of(session: Session, user: User) -> list[int] | None:
    """The units whose figures the user reads (None: every unit)."""
    if user.role in CITY_WIDE:
        return None
    own = session.get(Organisation, user.organisation_id) if user.organisation_id else None
    if own is None:
        return []
    if own.kind != OrganisationKind.CONTROL_CENTRE or own.place_id is None:
        return [own.id]
    area = session.get(Place, own.place_id)
    served = session.scalars(select(Organisation.id).join(Place, Place.id == Organisation.place_id).where(
        Organisation.kind.in_([k.value for k in POLICE_KINDS]), Place.path.startswith(area.path),
        Organisation.id != own.id).order_by(Organisation.id)) if area is not None else []
    return [own.id, *served]


def kpis(session: Session, user: User, start: datetime, end: datetime,
         organisation_id: int | None = None) -> dict[str, Any]:
    """Figures for alarms raised and incidents opened in [start, end), per unit the user reads (``units_of``);
    ``organisation_id`` narrows them to one of those units."""
    unit_ids = units_of(session, user)
    if organisation_id:
        unit_ids = [organisation_id] if unit_ids is None or organisation_id in unit_ids else []
    routes = select(AlarmRoute.alarm_id, AlarmRoute.organisation_id)
    if unit_ids is not None:
        routes = routes.where(AlarmRoute.organisation_id.in_(unit_ids))
    alarm_units: dict[int, set[int]] = defaultdict(set)
    for alarm_id, org_id in session.execute(routes):
        alarm_units[alarm_id].add(org_id)
    alarms = session.scalars(select(Alarm).where(Alarm.raised_at >= start, Alarm.raised_at < end,
                                                 Alarm.id.in_(list(alarm_units) or [-1]))).all()
    incidents_q = select(Incident).where(Incident.created_at >= start, Incident.created_at < end)
    if unit_ids is not None:
        incidents_q = incidents_q.where(Incident.organisation_id.in_(unit_ids))
    incidents = session.scalars(incidents_q).all()
    first_alarm: dict[int, datetime] = {}
    for a in session.scalars(select(Alarm).where(Alarm.incident_id.in_([i.id for i in incidents] or [-1]))):
        if a.incident_id not in first_alarm or a.raised_at < first_alarm[a.incident_id]:
            first_alarm[a.incident_id] = a.raised_at
    dispatches: dict[int, list[Dispatch]] = defaultdict(list)
    for d in session.scalars(select(Dispatch).where(Dispatch.incident_id.in_([i.id for i in incidents] or [-1]))):
        dispatches[d.incident_id].append(d)

    units: dict[int | None, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for unit_id in unit_ids or []:  # every unit read has its row, with or without figures in the period
        units[unit_id]["alarms"] = []
    for a in alarms:
        for org_id in alarm_units[a.id]:
            bucket = units[org_id]
            bucket["alarms"].append(a)
            if a.acknowledged_at:
                bucket["ack"].append((a.acknowledged_at - a.raised_at).total_seconds())
    for inc in incidents:
        bucket = units[inc.organisation_id]
        bucket["incidents"].append(inc)
        sent = [d.sent_at for d in dispatches[inc.id]]
        arrived = [d.on_scene_at for d in dispatches[inc.id] if d.on_scene_at]
        origin = first_alarm.get(inc.id, inc.created_at)
        if sent:
            bucket["dispatch"].append((min(sent) - origin).total_seconds())
            if arrived:
                bucket["arrival"].append((min(arrived) - min(sent)).total_seconds())
                bucket["response"].append((min(arrived) - origin).total_seconds())
    names = dict(session.execute(select(Organisation.id, Organisation.name)
                                 .where(Organisation.id.in_([u for u in units if u] or [-1]))).all())
    out_units = []
    for org_id, bucket in sorted(units.items(), key=lambda kv: names.get(kv[0], "")):
        decided = [a for a in bucket["alarms"] if a.state != AlarmState.NEW]
        dismissed = [a for a in decided if a.state == AlarmState.DISMISSED]
        out_units.append({
            "organisation_id": org_id, "organisation": names.get(org_id),
            "alarms": len(bucket["alarms"]), "alarms_open": len(bucket["alarms"]) - len(decided),
            "false_alarms": len(dismissed), "false_alarm_rate": _rate(len(dismissed), len(decided)),
            "incidents": len(bucket["incidents"]),
            "incidents_closed": sum(1 for i in bucket["incidents"] if i.closed_at),
            "time_to_acknowledge": _summary(bucket["ack"]), "time_to_dispatch": _summary(bucket["dispatch"]),
            "time_to_arrival": _summary(bucket["arrival"]), "alarm_to_scene": _summary(bucket["response"]),
        })
    return {"start": start, "end": end, "units": out_units,
            "cameras": _false_rates(session, alarms, "camera"), "rules": _false_rates(session, alarms, "rule")}


def _false_rates(session: Session, alarms: list[Alarm], by: str) -> list[dict[str, Any]]:
    groups: dict[int, list[Alarm]] = defaultdict(list)
    for a in alarms:
        key = a.camera_id if by == "camera" else a.rule_id
        if key is not None:
            groups[key].append(a)
    model = Camera if by == "camera" else AlarmRule
    names = dict(session.execute(select(model.id, model.name).where(model.id.in_(list(groups) or [-1]))).all())
    rows = []
    for key, items in groups.items():
        decided = [a for a in items if a.state != AlarmState.NEW]
        dismissed = sum(1 for a in decided if a.state == AlarmState.DISMISSED)
        rows.append({f"{by}_id": key, "name": names.get(key), "alarms": len(items), "decided": len(decided),
                     "false_alarms": dismissed, "false_alarm_rate": _rate(dismissed, len(decided))})
    return sorted(rows, key=lambda r: (-(r["false_alarm_rate"] or 0), -r["alarms"]))
