"""Operations API, response side: the alarm queue (with a live WebSocket), incidents, dispatch of response crews,
crews' reports, response-time KPIs and the incident export."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Response, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

from kuzet.api.deps import Caller, caller, installation, websocket_token, websocket_user
from kuzet.api.errors import ApiError, not_found
from kuzet.api.live_access import AccessWatch, guarded
from kuzet.api.routes.common import ERRORS, Id, KeysetPaging, errors, json_response
from kuzet.api.schemas import Latitude, Longitude, unset
from kuzet.domain.access import Right, Role
from kuzet.domain.crime import OFFENCE_TYPES
from kuzet.domain.operations import PRIORITY_RANK, AlarmState, IncidentStatus, Priority
from kuzet.installation import Installation
from kuzet.services import access, audit
from kuzet.services.operations import alarms as alarm_service
from kuzet.services.operations import incidents as incident_service
from kuzet.services.operations import kpis as kpi_service
from kuzet.services.operations.messages import ALARMS, INCIDENTS, alarm_subject, incident_subject
from kuzet.store.db import utcnow
from kuzet.store.models import Camera
from kuzet.store.models.operations import Alarm, Dispatch, Incident, alarm_rank

router = APIRouter(tags=["alarms and incidents"], responses=ERRORS)
MAX_PERIOD = timedelta(days=400)
OffenceType = Literal[tuple(OFFENCE_TYPES)]  # the crime analytics' offence types


def _publish(inst: Installation, subject: str, payload: dict) -> None:
    """Publish on the bus from a route's worker thread (routes that touch the database are plain ``def``: FastAPI
    runs them in its thread pool, never on the event loop), waiting until the bus took the message."""
    bus = inst.running.bus
    if bus is not None:
        with contextlib.suppress(Exception):
            anyio.from_thread.run(bus.publish, subject, payload)


# --- alarms ---------------------------------------------------------------------------------------------------------

def _queue_user(who: Caller) -> None:
    if not alarm_service.may_use_queue(who.user):
        raise not_found()


def _alarm_for(session: Any, who: Caller, alarm_id: int) -> Alarm:
    _queue_user(who)
    alarm = session.scalar(alarm_service.visible_alarms(who.user, session).where(Alarm.id == alarm_id))
    if alarm is None:
        raise not_found("alarm not found")
    return alarm


@router.get("/alarms", response_model=dict)
def list_alarms(state: list[AlarmState] = Query(default=[]), camera: Id | None = None, since: datetime | None = None,
                paging: KeysetPaging = Depends(), who: Caller = Depends(caller),
                inst: Installation = Depends(installation)) -> Response:
    """The caller's alarm queue: alarms routed to their organisation, most urgent and newest first.
    ``state=new&state=acknowledged`` for what still needs handling."""
    _queue_user(who)
    for s in state:
        if s not in set(AlarmState):
            raise ApiError(422, f"state must be one of {', '.join(AlarmState)}")
    with inst.db.session(readonly=True) as session:
        # keyset pages: the plan may follow the caller's share of the cameras (access.camera_filter)
        query = (alarm_service.visible_alarms(who.user, session, page_size=paging.limit if paging.keyset else None)
                 .with_only_columns(*alarm_service.ALARM_COLUMNS))
        if state:
            query = query.where(Alarm.state.in_(state))
        if camera is not None:
            query = query.where(Alarm.camera_id == camera)
        if since is not None:
            query = query.where(Alarm.raised_at >= since)
        # Most urgent first, then newest (as documented): the priority's rank, not its name, orders them.
        rank = alarm_rank()  # the expression of the index ix_alarms_rank_raised_id, spelled the same
        query = query.order_by(rank.desc(), Alarm.raised_at.desc(), Alarm.id.desc())
        # the page's columns as rows, then its routes, cameras with places, events and hot-list entries as rows
        page = paging.page_by(session, query, [rank, Alarm.raised_at, Alarm.id],
                              lambda a: (PRIORITY_RANK.get(a.priority, 0), a.raised_at, a.id), rows=True)
        page["items"] = alarm_service.alarms_out(session, page["items"])
    return json_response(page)


@router.get("/alarms/{alarm_id}")
def get_alarm(alarm_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session(readonly=True) as session:
        return alarm_service.alarm_out(session, _alarm_for(session, who, alarm_id))


def _alarm_changed(inst: Installation, alarm_out: dict, kind: str) -> None:
    _publish(inst, alarm_subject(alarm_out["id"]), {"type": kind, "alarm": alarm_out,
                                                          "organisations": alarm_out["organisations"]})


@router.post("/alarms/{alarm_id}/acknowledge", responses=errors(409))
def acknowledge_alarm(alarm_id: Id, who: Caller = Depends(caller),
                            inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        alarm = _alarm_for(session, who, alarm_id)
        try:
            alarm_service.acknowledge(session, who.actor, who.user, alarm)
        except alarm_service.AlarmError as exc:
            raise ApiError(409, str(exc)) from None
        out = alarm_service.alarm_out(session, alarm)
    _alarm_changed(inst, out, "acknowledged")
    return out


class DismissIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/alarms/{alarm_id}/dismiss", responses=errors(409))
def dismiss_alarm(alarm_id: Id, body: DismissIn, who: Caller = Depends(caller),
                        inst: Installation = Depends(installation)) -> dict:
    """A false alarm, with the reason (counts in the false-alarm rate of its camera and rule)."""
    with inst.db.session() as session:
        alarm = _alarm_for(session, who, alarm_id)
        try:
            alarm_service.dismiss(session, who.actor, who.user, alarm, body.reason)
        except alarm_service.AlarmError as exc:
            raise ApiError(409, str(exc)) from None
        out = alarm_service.alarm_out(session, alarm)
    _alarm_changed(inst, out, "dismissed")
    return out


class AlarmIncidentIn(BaseModel):
    incident_id: Id | None = None  # link to an open incident instead of opening a new one
    # None: the alarm's suggested_offence_type (a stolen-car hot-list alarm → vehicle_theft, …)
    offence_type: OffenceType | None = None
    title: str = Field("", max_length=300)
    description: str = Field("", max_length=20_000)
    priority: Priority | None = None


@router.post("/alarms/{alarm_id}/incident", status_code=201, responses=errors(409))
def alarm_to_incident(alarm_id: Id, body: AlarmIncidentIn, who: Caller = Depends(caller),
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
                offence = body.offence_type or alarm_service.suggested_offence_for(session, alarm)
                incident = incident_service.create_incident(
                    session, who.actor, who.user, offence_type=offence, title=body.title,
                    description=body.description, priority=body.priority or alarm.priority, alarm_ids=[alarm.id])
                kind = "created"
        except incident_service.IncidentError as exc:
            raise ApiError(422, str(exc)) from None
        out = incident_service.incident_out(session, incident, full=True)
        orgs = incident_service.incident_organisations(session, incident)
        alarm_json = alarm_service.alarm_out(session, alarm)
    _alarm_changed(inst, alarm_json, "incident")
    _publish(inst, incident_subject(out["id"]), {"type": kind, "incident": out, "organisations": orgs})
    return out


async def _open_push(websocket: WebSocket, inst: Installation,
                     allowed: Callable[[Any], bool]) -> tuple[Any, Any] | None:
    """Open a push WebSocket for a signed-in caller ``allowed`` to use it: (user, bus), or None once closed
    (4401 without a valid token, 4404 when not allowed, an ``unavailable`` error without an event bus)."""
    user = await asyncio.to_thread(websocket_user, websocket)
    if user is None:
        await websocket.close(code=4401)
        return None
    if not allowed(user):
        await websocket.close(code=4404)
        return None
    bus = inst.running.bus
    await websocket.accept()
    if bus is None:
        await websocket.send_text(json.dumps({"type": "error", "code": "unavailable",
                                              "message": "the event bus is not running"}))
        await websocket.close()
        return None
    return user, bus


@router.websocket("/alarms/live")
async def alarms_live(websocket: WebSocket) -> None:
    """Alarms pushed as they are raised or change: ``{"type": "raised" | "acknowledged" | …, "alarm": {…}}``, and
    incident changes ``{"type": "incident", "change": …, "incident": {…}}``, for the caller's organisation.

    A push reaches the caller only when ``GET /alarms`` would show them the alarm (routed to their organisation, on a
    camera they may watch live) or ``GET /incidents`` the incident; access is checked again every few seconds, so a
    revoked grant or a logout ends the stream (``live_access``)."""
    inst: Installation = websocket.app.state.installation
    opened = await _open_push(websocket, inst, alarm_service.may_use_queue)
    if opened is None:
        return
    user, bus = opened
    outbox: asyncio.Queue[dict] = asyncio.Queue(maxsize=256)
    admin = user.role == Role.PLATFORM_ADMIN
    live: dict[str, frozenset[int]] = {"cameras": frozenset()}  # replaced whole: read on the loop, set in a thread

    def check(session: Any, who: Any) -> bool:
        if not alarm_service.may_use_queue(who):
            return False
        if not admin:
            live["cameras"] = frozenset(session.scalars(access.visible_cameras(who, Right.VIEW_LIVE)
                                                        .with_only_columns(Camera.id)))
        return True

    watch = AccessWatch(inst, websocket_token(websocket) or "", check)
    await asyncio.to_thread(watch.check_now)

    async def on_message(subject: str, payload: dict) -> None:
        if not admin and user.organisation_id not in (payload.get("organisations") or []):
            return
        if subject.startswith(ALARMS + "."):
            alarm = payload.get("alarm") or {}
            if not admin and (alarm.get("camera") or {}).get("id") not in live["cameras"]:
                return
            message = {"type": payload.get("type"), "alarm": alarm}
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

    async def listen() -> None:
        while True:  # the client sends pings or nothing; we only need to notice it leaving
            await websocket.receive_text()

    sender = asyncio.create_task(pump())
    try:
        await guarded(websocket, watch, listen())
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
def list_incidents(status: list[IncidentStatus] = Query(default=[]), start: datetime | None = None,
                   end: datetime | None = None, paging: KeysetPaging = Depends(), who: Caller = Depends(caller),
                   inst: Installation = Depends(installation)) -> dict:
    with inst.db.session(readonly=True) as session:
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
        page = paging.page_by(session, query, [Incident.created_at, Incident.id], lambda i: (i.created_at, i.id))
        incident_service.preload(session, page["items"])
        page["items"] = [incident_service.incident_out(session, i) for i in page["items"]]
        return page


class CameraLinkIn(BaseModel):
    camera_id: Id
    start_at: datetime
    end_at: datetime


class IncidentIn(BaseModel):
    offence_type: OffenceType
    title: str = Field("", max_length=300)
    description: str = Field("", max_length=20_000)
    place_id: Id | None = None
    priority: Priority = Priority.MEDIUM
    alarm_ids: list[Id] = Field(default_factory=list, max_length=100)
    cameras: list[CameraLinkIn] = Field(default_factory=list, max_length=32)
    lat: Latitude | None = None
    lon: Longitude | None = None


def _incident_changed(inst: Installation, incident_id: int, kind: str) -> dict:
    with inst.db.session() as session:
        incident = session.get(Incident, incident_id)
        out = incident_service.incident_out(session, incident, full=True)
        orgs = incident_service.incident_organisations(session, incident)
    _publish(inst, incident_subject(incident_id), {"type": kind, "incident": out, "organisations": orgs})
    return out


@router.post("/incidents", status_code=201)
def create_incident(body: IncidentIn, who: Caller = Depends(caller),
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
    return _incident_changed(inst, incident_id, "created")


@router.get("/incidents/export", response_model=None,
            responses={200: {"description": "The incidents, as JSON (``format=json``) or CSV (``format=csv``)",
                             "content": {"application/json": {"schema": {"type": "object"}},
                                         "text/csv": {"schema": {"type": "string"}}}}})
def export_incidents(start: datetime, end: datetime, format: Literal["json", "csv"] = "json",
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
def get_incident(incident_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """An incident with its cameras and clips, alarms, crews and timeline (audited: it may hold personal data)."""
    with inst.db.session() as session:
        incident = _incident_for(session, who, incident_id)
        audit.append(session, who.actor, incident_service.Action.VIEWED, object_type="incident",
                     object_id=incident_id)
        return incident_service.incident_out(session, incident, full=True)


class IncidentPatch(BaseModel):
    offence_type: OffenceType = unset()
    title: str = unset(max_length=300)
    description: str = unset(max_length=20_000)
    priority: Priority = unset()


@router.patch("/incidents/{incident_id}", responses=errors(409))
def patch_incident(incident_id: Id, body: IncidentPatch, who: Caller = Depends(caller),
                         inst: Installation = Depends(installation)) -> dict:
    _operator(who)
    with inst.db.session() as session:
        incident = _incident_for(session, who, incident_id)
        try:
            incident_service.update_incident(session, who.actor, incident, **body.model_dump(exclude_none=True))
        except incident_service.IncidentError as exc:
            raise ApiError(409 if "closed" in str(exc) else 422, str(exc)) from None
    return _incident_changed(inst, incident_id, "updated")


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=5000)


@router.post("/incidents/{incident_id}/notes", status_code=201)
def add_note(incident_id: Id, body: NoteIn, who: Caller = Depends(caller),
                   inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        incident = _incident_for(session, who, incident_id)
        try:
            incident_service.add_note(session, who.actor, incident, body.text)
        except incident_service.IncidentError as exc:
            raise ApiError(422, str(exc)) from None
    return _incident_changed(inst, incident_id, "note")


@router.post("/incidents/{incident_id}/cameras", status_code=201)
def link_camera(incident_id: Id, body: CameraLinkIn, who: Caller = Depends(caller),
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
    return _incident_changed(inst, incident_id, "updated")


@router.get("/incidents/{incident_id}/responders")
def responders(incident_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Response crews the caller may send to this incident, with whether each is busy on an open dispatch. When none
    is free: ``reason`` (``none_in_district`` — the unit has no crew on duty — or ``all_busy``), the incident's
    ``district``, and the crews of the neighbouring districts' duty units (``neighbours``), which may then be sent."""
    _operator(who)
    with inst.db.session() as session:
        incident = _incident_for(session, who, incident_id)
        return incident_service.crews(session, who.user, incident)


class DispatchIn(BaseModel):
    responder_ids: list[Id] = Field(min_length=1, max_length=50)
    note: str = Field("", max_length=2000)


@router.post("/incidents/{incident_id}/dispatches", status_code=201)
def dispatch(incident_id: Id, body: DispatchIn, who: Caller = Depends(caller),
                   inst: Installation = Depends(installation)) -> dict:
    """Send response crews (responders of the caller's unit or of an organisation the incident's alarms went to)."""
    _operator(who)
    with inst.db.session() as session:
        incident = _incident_for(session, who, incident_id)
        try:
            incident_service.dispatch(session, who.actor, who.user, incident, body.responder_ids, body.note)
        except incident_service.IncidentError as exc:
            raise ApiError(422, str(exc)) from None
    return _incident_changed(inst, incident_id, "dispatched")


class CloseIn(BaseModel):
    resolution: str = Field(min_length=1, max_length=5000)


@router.post("/incidents/{incident_id}/close", responses=errors(409))
def close_incident(incident_id: Id, body: CloseIn, who: Caller = Depends(caller),
                         inst: Installation = Depends(installation)) -> dict:
    _operator(who)
    with inst.db.session() as session:
        incident = _incident_for(session, who, incident_id)
        try:
            incident_service.close_incident(session, who.actor, incident, body.resolution)
        except incident_service.IncidentError as exc:
            raise ApiError(409, str(exc)) from None
    return _incident_changed(inst, incident_id, "closed")


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


@router.websocket("/dispatches/live")
async def dispatches_live(websocket: WebSocket) -> None:
    """A crew's calls pushed as they come and change: ``{"type": "dispatch", "change": "dispatched" | "dispatch" |
    "closed" | …, "item": {…}}`` with ``item`` shaped like an item of ``GET /dispatches/mine`` (the dispatch and a
    summary of its incident), only for dispatches sent to the caller — what ``GET /dispatches/mine`` would show. The
    token and the role are checked again every few seconds; a logout or deactivation ends the stream
    (``live_access``)."""
    inst: Installation = websocket.app.state.installation
    opened = await _open_push(websocket, inst, incident_service.may_take_calls)
    if opened is None:
        return
    user, bus = opened
    outbox: asyncio.Queue[dict] = asyncio.Queue(maxsize=256)
    watch = AccessWatch(inst, websocket_token(websocket) or "",
                        lambda session, who: incident_service.may_take_calls(who))

    async def on_message(subject: str, payload: dict) -> None:
        for item in incident_service.crew_items(payload.get("incident") or {}, user.id):
            with contextlib.suppress(asyncio.QueueFull):
                outbox.put_nowait({"type": "dispatch", "change": payload.get("type"), "item": item})

    sub = await bus.subscribe(f"{INCIDENTS}.>", on_message)
    await websocket.send_text(json.dumps({"type": "hello", "user": user.username}))

    async def pump() -> None:
        while True:
            await websocket.send_text(json.dumps(await outbox.get(), default=str))

    async def listen() -> None:
        while True:
            await websocket.receive_text()

    sender = asyncio.create_task(pump())
    try:
        await guarded(websocket, watch, listen())
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


class ReportIn(BaseModel):
    status: Literal["acknowledged", "en_route", "on_scene", "closed"]  # forward only, from "sent"
    note: str = Field("", max_length=2000)


@router.post("/dispatches/{dispatch_id}/status", responses=errors(409))
def report_status(dispatch_id: Id, body: ReportIn, who: Caller = Depends(caller),
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
    _incident_changed(inst, incident_id, "dispatch")
    return out


# --- KPIs -----------------------------------------------------------------------------------------------------------

@router.get("/operations/kpis")
def kpis(start: datetime | None = None, end: datetime | None = None, organisation: Id | None = None,
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

