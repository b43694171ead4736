"""Operations API, response side: the alarm queue (with a live WebSocket), incidents, dispatch of response crews,
crews' reports, response-time KPIs and the incident export."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Response, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field
from sqlalchemy import case, select

from kuzet.api.deps import Caller, caller, installation, websocket_user
from kuzet.api.errors import ApiError, not_found
from kuzet.api.routes.common import Paging
from kuzet.domain.access import Role
from kuzet.domain.crime import OFFENCE_TYPES
from kuzet.domain.operations import PRIORITY_RANK, AlarmState, IncidentStatus
from kuzet.installation import Installation
from kuzet.services import audit
from kuzet.services.operations import alarms as alarm_service
from kuzet.services.operations import incidents as incident_service
from kuzet.services.operations import kpis as kpi_service
from kuzet.services.operations.messages import ALARMS, INCIDENTS, alarm_subject, incident_subject
from kuzet.store.db import utcnow
from kuzet.store.models.operations import Alarm, Dispatch, Incident

router = APIRouter(tags=["alarms and incidents"])
MAX_PERIOD = timedelta(days=400)


async def _publish(inst: Installation, subject: str, payload: dict) -> None:
    bus = inst.extras.get("bus")
    if bus is not None:
        with contextlib.suppress(Exception):
            await bus.publish(subject, payload)


# --- alarms ---------------------------------------------------------------------------------------------------------

def _queue_user(who: Caller) -> None:
    if not alarm_service.may_use_queue(who.user):
        raise not_found()


def _alarm_for(session: Any, who: Caller, alarm_id: int) -> Alarm:
    _queue_user(who)
    alarm = session.scalar(alarm_service.visible_alarms(who.user).where(Alarm.id == alarm_id))
    if alarm is None:
        raise not_found("alarm not found")
    return alarm


@router.get("/alarms")
def list_alarms(state: list[str] = Query(default=[]), camera: int | None = None, since: datetime | None = None,
                paging: Paging = Depends(), who: Caller = Depends(caller),
                inst: Installation = Depends(installation)) -> dict:
    """The caller's alarm queue: alarms routed to their organisation, most urgent and newest first.
    ``state=new&state=acknowledged`` for what still needs handling."""
    _queue_user(who)
    for s in state:
        if s not in set(AlarmState):
            raise ApiError(422, f"state must be one of {', '.join(AlarmState)}")
    with inst.db.session() as session:
        query = alarm_service.visible_alarms(who.user)
        if state:
            query = query.where(Alarm.state.in_(state))
        if camera is not None:
            query = query.where(Alarm.camera_id == camera)
        if since is not None:
            query = query.where(Alarm.raised_at >= since)
        # Most urgent first, then newest (as documented): the priority's rank, not its name, orders them.
        rank = case({p.value: r for p, r in PRIORITY_RANK.items()}, value=Alarm.priority, else_=0)
        query = query.order_by(rank.desc(), Alarm.raised_at.desc(), Alarm.id.desc())
        page = paging.page(session, query)
        ids = [a.id for a in page["items"]]
        routes = alarm_service.routes(session, ids)
        page["items"] = [alarm_service.alarm_out(session, a, routes[a.id]) for a in page["items"]]
        return page


@router.get("/alarms/{alarm_id}")
def get_alarm(alarm_id: int, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        return alarm_service.alarm_out(session, _alarm_for(session, who, alarm_id))


async def _alarm_changed(inst: Installation, alarm_out: dict, kind: str) -> None:
    await _publish(inst, alarm_subject(alarm_out["id"]), {"type": kind, "alarm": alarm_out,
                                                          "organisations": alarm_out["organisations"]})


@router.post("/alarms/{alarm_id}/acknowledge")
async def acknowledge_alarm(alarm_id: int, who: Caller = Depends(caller),
                            inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        alarm = _alarm_for(session, who, alarm_id)
        try:
            alarm_service.acknowledge(session, who.actor, who.user, alarm)
        except alarm_service.AlarmError as exc:
            raise ApiError(409, str(exc)) from None
        out = alarm_service.alarm_out(session, alarm)
    await _alarm_changed(inst, out, "acknowledged")
    return out


class DismissIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/alarms/{alarm_id}/dismiss")
async def dismiss_alarm(alarm_id: int, body: DismissIn, who: Caller = Depends(caller),
                        inst: Installation = Depends(installation)) -> dict:
    """A false alarm, with the reason (counts in the false-alarm rate of its camera and rule)."""
    with inst.db.session() as session:
        alarm = _alarm_for(session, who, alarm_id)
        try:
            alarm_service.dismiss(session, who.actor, who.user, alarm, body.reason)
        except alarm_service.AlarmError as exc:
            raise ApiError(409, str(exc)) from None
        out = alarm_service.alarm_out(session, alarm)
    await _alarm_changed(inst, out, "dismissed")
    return out


class AlarmIncidentIn(BaseModel):
    incident_id: int | None = None  # link to an open incident instead of opening a new one
    offence_type: str = "other"
    title: str = ""
    description: str = ""
    priority: str | None = None


@router.post("/alarms/{alarm_id}/incident", status_code=201)
async def alarm_to_incident(alarm_id: int, body: AlarmIncidentIn, who: Caller = Depends(caller),
                            inst: Installation = Depends(installation)) -> dict:
    """Open an incident from the alarm (its camera and clip are linked), or link it to an open incident."""
    with inst.db.session() as session:
        alarm = _alarm_for(session, who, alarm_id)
        if AlarmState.INCIDENT not in alarm_service.ALARM_MOVES[AlarmState(alarm.state)]:
            raise ApiError(409, f"alarm {alarm.id} is {alarm.state}")
        try:
            if body.incident_id is not None:
                incident = _incident_for(session, who, body.incident_id)
                alarm_service.attach_to_incident(session, who.user, alarm, incident.id)
                incident_service.link_alarm(session, who.actor, who.user, incident, alarm)
                kind = "updated"
            else:
                incident = incident_service.create_incident(
                    session, who.actor, who.user, offence_type=body.offence_type, title=body.title,
                    description=body.description, priority=body.priority or alarm.priority, alarm_ids=[alarm.id])
                kind = "created"
        except incident_service.IncidentError as exc:
            raise ApiError(422, str(exc)) from None
        out = incident_service.incident_out(session, incident, full=True)
        orgs = incident_service.incident_organisations(session, incident)
        alarm_json = alarm_service.alarm_out(session, alarm)
    await _alarm_changed(inst, alarm_json, "incident")
    await _publish(inst, incident_subject(out["id"]), {"type": kind, "incident": out, "organisations": orgs})
    return out


@router.websocket("/alarms/live")
async def alarms_live(websocket: WebSocket) -> None:
    """Alarms pushed as they are raised or change: ``{"type": "raised" | "acknowledged" | …, "alarm": {…}}``, and
    incident changes ``{"type": "incident", "change": …, "incident": {…}}``, for the caller's organisation."""
    inst: Installation = websocket.app.state.installation
    user = websocket_user(websocket)
    if user is None:
        await websocket.close(code=4401)
        return
    if not alarm_service.may_use_queue(user):
        await websocket.close(code=4404)
        return
    bus = inst.extras.get("bus")
    await websocket.accept()
    if bus is None:
        await websocket.send_text(json.dumps({"type": "error", "code": "unavailable",
                                              "message": "the event bus is not running"}))
        await websocket.close()
        return
    outbox: asyncio.Queue[dict] = asyncio.Queue(maxsize=256)
    admin = user.role == Role.PLATFORM_ADMIN

    async def on_message(subject: str, payload: dict) -> None:
        if not admin and user.organisation_id not in (payload.get("organisations") or []):
            return
        if subject.startswith(ALARMS + "."):
            message = {"type": payload.get("type"), "alarm": payload.get("alarm")}
        else:
            message = {"type": "incident", "change": payload.get("type"), "incident": payload.get("incident")}
        with contextlib.suppress(asyncio.QueueFull):  # a viewer that cannot keep up misses pushes, not the queue
            outbox.put_nowait(message)

    subs = [await bus.subscribe(f"{ALARMS}.>", on_message), await bus.subscribe(f"{INCIDENTS}.>", on_message)]
    await websocket.send_text(json.dumps({"type": "hello", "user": user.username}))

    async def pump() -> None:
        while True:
            message = await outbox.get()
            await websocket.send_text(json.dumps(message, default=str))

    sender = asyncio.create_task(pump())
    try:
        while True:  # the client sends pings or nothing; we only need to notice it leaving
            await websocket.receive_text()
    except (WebSocketDisconnect, RuntimeError, OSError):  # OSError: uvicorn's ClientDisconnected
        pass
    finally:
        sender.cancel()
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


# --- incidents ------------------------------------------------------------------------------------------------------

def _incident_for(session: Any, who: Caller, incident_id: int) -> Incident:
    incident = session.scalar(incident_service.visible_incidents(who.user).where(Incident.id == incident_id))
    if incident is None:
        raise not_found("incident not found")
    return incident


def _operator(who: Caller) -> None:
    if not incident_service.may_operate(who.user):
        raise not_found()


@router.get("/incidents/types")
def offence_types(who: Caller = Depends(caller)) -> dict:
    """Offence types of incidents (the crime analytics' types) with their names in ru/kk/en."""
    return {"items": [{"id": key, "ru": n[0], "kk": n[1], "en": n[2]} for key, n in OFFENCE_TYPES.items()]}


@router.get("/incidents")
def list_incidents(status: list[str] = Query(default=[]), start: datetime | None = None,
                   end: datetime | None = None, paging: Paging = Depends(), who: Caller = Depends(caller),
                   inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        query = incident_service.visible_incidents(who.user)
        for s in status:
            if s not in set(IncidentStatus):
                raise ApiError(422, f"status must be one of {', '.join(IncidentStatus)}")
        if status:
            query = query.where(Incident.status.in_(status))
        if start is not None:
            query = query.where(Incident.created_at >= start)
        if end is not None:
            query = query.where(Incident.created_at < end)
        query = query.order_by(Incident.created_at.desc(), Incident.id.desc())
        return paging.page(session, query, lambda i: incident_service.incident_out(session, i))


class CameraLinkIn(BaseModel):
    camera_id: int
    start_at: datetime
    end_at: datetime


class IncidentIn(BaseModel):
    offence_type: str
    title: str = ""
    description: str = ""
    place_id: int | None = None
    priority: str = "medium"
    alarm_ids: list[int] = Field(default_factory=list)
    cameras: list[CameraLinkIn] = Field(default_factory=list)
    lat: float | None = None
    lon: float | None = None


async def _incident_changed(inst: Installation, incident_id: int, kind: str) -> dict:
    with inst.db.session() as session:
        incident = session.get(Incident, incident_id)
        out = incident_service.incident_out(session, incident, full=True)
        orgs = incident_service.incident_organisations(session, incident)
    await _publish(inst, incident_subject(incident_id), {"type": kind, "incident": out, "organisations": orgs})
    return out


@router.post("/incidents", status_code=201)
async def create_incident(body: IncidentIn, who: Caller = Depends(caller),
                          inst: Installation = Depends(installation)) -> dict:
    _operator(who)
    with inst.db.session() as session:
        try:
            incident = incident_service.create_incident(
                session, who.actor, who.user, **body.model_dump(exclude={"cameras"}),
                cameras=[c.model_dump() for c in body.cameras])
        except incident_service.IncidentError as exc:
            raise ApiError(422, str(exc)) from None
        incident_id = incident.id
    return await _incident_changed(inst, incident_id, "created")


@router.get("/incidents/export", response_model=None)
def export_incidents(start: datetime, end: datetime, format: str = Query("json", pattern="^(json|csv)$"),
                     who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> Any:
    """Incidents opened in [start, end) with their response times, as JSON or CSV (audited)."""
    if start.tzinfo is None or end.tzinfo is None or end <= start or end - start > MAX_PERIOD:
        raise ApiError(422, "start and end must carry a timezone, end after start, at most 400 days apart")
    if not (incident_service.may_operate(who.user) or who.user.role in kpi_service.CITY_WIDE):
        raise not_found()
    with inst.db.session() as session:
        rows = incident_service.export_rows(session, who.user, start, end)
        audit.append(session, who.actor, incident_service.Action.EXPORTED, object_type="incident",
                     details={"start": start.isoformat(), "end": end.isoformat(), "count": len(rows),
                              "format": format})
    if format == "csv":
        return Response(incident_service.to_csv(rows), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="incidents-{start:%Y%m%d}-{end:%Y%m%d}.csv"'})
    return {"start": start, "end": end, "items": rows}


@router.get("/incidents/{incident_id}")
def get_incident(incident_id: int, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """An incident with its cameras and clips, alarms, crews and timeline (audited: it may hold personal data)."""
    with inst.db.session() as session:
        incident = _incident_for(session, who, incident_id)
        audit.append(session, who.actor, incident_service.Action.VIEWED, object_type="incident",
                     object_id=incident_id)
        return incident_service.incident_out(session, incident, full=True)


class IncidentPatch(BaseModel):
    offence_type: str | None = None
    title: str | None = None
    description: str | None = None
    priority: str | None = None


@router.patch("/incidents/{incident_id}")
async def patch_incident(incident_id: int, body: IncidentPatch, who: Caller = Depends(caller),
                         inst: Installation = Depends(installation)) -> dict:
    _operator(who)
    with inst.db.session() as session:
        incident = _incident_for(session, who, incident_id)
        try:
            incident_service.update_incident(session, who.actor, incident, **body.model_dump(exclude_none=True))
        except incident_service.IncidentError as exc:
            raise ApiError(409 if "closed" in str(exc) else 422, str(exc)) from None
    return await _incident_changed(inst, incident_id, "updated")


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=5000)


@router.post("/incidents/{incident_id}/notes", status_code=201)
async def add_note(incident_id: int, body: NoteIn, who: Caller = Depends(caller),
                   inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        incident = _incident_for(session, who, incident_id)
        try:
            incident_service.add_note(session, who.actor, incident, body.text)
        except incident_service.IncidentError as exc:
            raise ApiError(422, str(exc)) from None
    return await _incident_changed(inst, incident_id, "note")


@router.post("/incidents/{incident_id}/cameras", status_code=201)
async def link_camera(incident_id: int, body: CameraLinkIn, who: Caller = Depends(caller),
                      inst: Installation = Depends(installation)) -> dict:
    """Link a camera and a window (the clip to look at and export) to the incident."""
    _operator(who)
    with inst.db.session() as session:
        incident = _incident_for(session, who, incident_id)
        try:
            incident_service.link_camera(session, who.actor, who.user, incident, body.camera_id, body.start_at,
                                         body.end_at)
        except incident_service.IncidentError as exc:
            raise ApiError(422, str(exc)) from None
    return await _incident_changed(inst, incident_id, "updated")


@router.get("/incidents/{incident_id}/responders")
def responders(incident_id: int, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Response crews the caller may send to this incident, with whether each is busy on an open dispatch."""
    _operator(who)
    with inst.db.session() as session:
        incident = _incident_for(session, who, incident_id)
        busy = set(session.scalars(select(Dispatch.responder_id).where(Dispatch.status != "closed")))
        items = [{"id": u.id, "username": u.username, "full_name": u.full_name,
                  "organisation_id": u.organisation_id, "busy": u.id in busy}
                 for u in session.scalars(incident_service.dispatchable(session, who.user, incident))]
        return {"items": items, "total": len(items), "limit": len(items), "offset": 0}


class DispatchIn(BaseModel):
    responder_ids: list[int] = Field(min_length=1)
    note: str = ""


@router.post("/incidents/{incident_id}/dispatches", status_code=201)
async def dispatch(incident_id: int, body: DispatchIn, who: Caller = Depends(caller),
                   inst: Installation = Depends(installation)) -> dict:
    """Send response crews (responders of the caller's unit or of an organisation the incident's alarms went to)."""
    _operator(who)
    with inst.db.session() as session:
        incident = _incident_for(session, who, incident_id)
        try:
            incident_service.dispatch(session, who.actor, who.user, incident, body.responder_ids, body.note)
        except incident_service.IncidentError as exc:
            raise ApiError(422, str(exc)) from None
    return await _incident_changed(inst, incident_id, "dispatched")


class CloseIn(BaseModel):
    resolution: str = Field(min_length=1, max_length=5000)


@router.post("/incidents/{incident_id}/close")
async def close_incident(incident_id: int, body: CloseIn, who: Caller = Depends(caller),
                         inst: Installation = Depends(installation)) -> dict:
    _operator(who)
    with inst.db.session() as session:
        incident = _incident_for(session, who, incident_id)
        try:
            incident_service.close_incident(session, who.actor, incident, body.resolution)
        except incident_service.IncidentError as exc:
            raise ApiError(409, str(exc)) from None
    return await _incident_changed(inst, incident_id, "closed")


# --- crews ----------------------------------------------------------------------------------------------------------

@router.get("/dispatches/mine")
def my_dispatches(all: bool = False, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """A responder's dispatches (open ones unless ``all=true``), each with its incident."""
    with inst.db.session() as session:
        items = []
        for d in session.scalars(incident_service.my_dispatches(who.user, active_only=not all)):
            incident = session.get(Incident, d.incident_id)
            items.append(incident_service.dispatch_out(session, d) | {
                "incident": incident_service.incident_out(session, incident)})
        return {"items": items, "total": len(items), "limit": len(items), "offset": 0}


class ReportIn(BaseModel):
    status: str
    note: str = ""


@router.post("/dispatches/{dispatch_id}/status")
async def report_status(dispatch_id: int, body: ReportIn, who: Caller = Depends(caller),
                        inst: Installation = Depends(installation)) -> dict:
    """A crew reports: acknowledged, en_route, on_scene, closed (forward only)."""
    with inst.db.session() as session:
        d = session.get(Dispatch, dispatch_id)
        if d is None or (d.responder_id != who.user.id and who.user.role != Role.PLATFORM_ADMIN):
            raise not_found("dispatch not found")
        try:
            incident_service.report(session, who.actor, who.user, d, body.status, body.note)
        except incident_service.IncidentError as exc:
            raise ApiError(409, str(exc)) from None
        incident_id = d.incident_id
        out = incident_service.dispatch_out(session, d)
    await _incident_changed(inst, incident_id, "dispatch")
    return out


# --- KPIs -----------------------------------------------------------------------------------------------------------

@router.get("/operations/kpis")
def kpis(start: datetime | None = None, end: datetime | None = None, organisation: int | None = None,
         who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Per unit: alarms, time to acknowledge / dispatch / arrival (median, mean, p90), false-alarm rate; and the
    false-alarm rate per camera and per rule. Default period: the last 30 days."""
    if not kpi_service.may_read(who.user):
        raise not_found()
    end = end or utcnow()
    start = start or end - timedelta(days=30)
    if start.tzinfo is None or end.tzinfo is None or end <= start or end - start > MAX_PERIOD:
        raise ApiError(422, "start and end must carry a timezone, end after start, at most 400 days apart")
    with inst.db.session() as session:
        return kpi_service.kpis(session, who.user, start, end, organisation)

