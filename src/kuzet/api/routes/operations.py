"""Operations API, detection side: per-camera analysis settings (zones and masks), the current picture, events and
their search, hot lists, alarm rules. Alarms, incidents and dispatch are in ``alarms.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from kuzet.api.deps import Caller, caller, installation, media_caller, running
from kuzet.api.errors import ApiError, error_body, not_found
from kuzet.api.limits import spool
from kuzet.api.routes.common import ERRORS, Id, KeysetPaging, Paging, camera_for, errors, json_response, media
from kuzet.api.routes.watching import audit_view
from kuzet.api.schemas import unset
from kuzet.domain.access import Right
from kuzet.domain.audit import Action
from kuzet.domain.operations import OBJECT_LABELS, EventKind, Priority
from kuzet.installation import Installation, Running
from kuzet.services import access
from kuzet.services.operations import events as events_service
from kuzet.services.operations import hotlists, rules
from kuzet.services.operations.analysis import default_anpr, plan_for
from kuzet.services.operations.pictures import PicturesUnavailable, event_pictures
from kuzet.services.watching.streams import Purpose, resolve_stream
from kuzet.store.models import Camera
from kuzet.store.models.operations import AlarmRule, CameraAnalysis, Event, HotList, HotListEntry

router = APIRouter(tags=["operations"], responses=ERRORS)
MAX_ZONES = 32
MAX_HOTLIST_FILE = 5_000_000  # a hot list is plates and reasons: 5 MB is a hundred thousand rows
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, description="0..1 of the picture")]
EventLabel = Literal[(*OBJECT_LABELS, "plate")]  # what objects and plates are labelled
HotListKind = Literal[hotlists.KINDS]


# --- analysis settings ----------------------------------------------------------------------------------------------

class Zone(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["zone", "mask"] = "zone"
    points: list[tuple[Fraction, Fraction]] = Field(min_length=3, max_length=64)


class AnalysisIn(BaseModel):
    motion: bool = True
    fps: float = Field(5.0, gt=0, le=25)
    sensitivity: int = Field(60, ge=1, le=100)
    min_area: float = Field(0.002, ge=0, le=1)
    zones: list[Zone] = Field(default_factory=list, max_length=MAX_ZONES)
    objects: bool = False
    detector: Literal["hog", "onnx"] = "hog"
    anpr: bool | None = None  # None: on for road and gate cameras
    stream: Literal["auto", "sub", "main"] = "auto"


def _analysis_out(camera: Camera, row: CameraAnalysis | None) -> dict[str, Any]:
    plan = plan_for(camera, row, bool(camera.sub_url))
    values = {"motion": True, "fps": 5.0, "sensitivity": 60, "min_area": 0.002, "zones": [], "objects": False,
              "detector": "hog", "anpr": default_anpr(camera), "stream": "auto"}
    if row is not None:
        values = {k: getattr(row, k) for k in values}
    return {"camera_id": camera.id, **values, "customised": row is not None,
            "analysed": plan is not None, "analysed_stream": plan.stream if plan else None}


@router.get("/cameras/{camera_id}/analysis")
def get_analysis(camera_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """What is analysed on the camera: motion (rate, sensitivity, minimum area, zones and masks), objects, plates."""
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id, Right.VIEW_LIVE)
        return _analysis_out(camera, session.get(CameraAnalysis, camera_id))


@router.put("/cameras/{camera_id}/analysis")
def put_analysis(camera_id: Id, body: AnalysisIn, who: Caller = Depends(caller),
                 inst: Installation = Depends(installation)) -> dict:
    """Change the camera's analysis (needs the manage right on the camera). Zone points are 0..1 of the picture."""
    names = [z.name.strip() for z in body.zones]
    if len(set(names)) != len(names):
        raise ApiError(422, "zone names must be unique")
    for zone in body.zones:
        if any(not (0 <= x <= 1 and 0 <= y <= 1) for x, y in zone.points):
            raise ApiError(422, f"zone {zone.name!r}: points must lie within the picture (0..1)")
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id, Right.VIEW_LIVE)
        if Right.MANAGE not in access.camera_rights(session, who.user, camera):
            raise ApiError(403, "changing a camera's analysis needs the manage right on it")
        row = session.get(CameraAnalysis, camera_id) or CameraAnalysis(camera_id=camera_id)
        values = body.model_dump()
        values["zones"] = [{"name": z.name.strip(), "kind": z.kind, "points": [list(p) for p in z.points]}
                           for z in body.zones]
        if values["anpr"] is None:
            values["anpr"] = default_anpr(camera)
        for key, value in values.items():
            setattr(row, key, value)
        session.add(row)
        from kuzet.services import audit

        audit.append(session, who.actor, Action.CAMERA_CHANGED, object_type="camera", object_id=camera_id,
                     camera_id=camera_id, details={"analysis": values})
        session.flush()
        return _analysis_out(camera, row)


@router.get("/cameras/{camera_id}/snapshot.jpg", response_class=Response,
            responses=errors(503) | media("image/jpeg"))
async def camera_snapshot(camera_id: Id, stream: Literal["sub", "main"] = "sub", who: Caller = Depends(media_caller),
                          inst: Installation = Depends(installation),
                          parts: Running = Depends(running)) -> Response:
    """The camera's current picture (its latest keyframe), e.g. to draw zones on. A live view: audited."""
    import asyncio

    from kuzet.services.operations.decode import keyframe_jpeg

    def allowed() -> Camera:  # in a worker thread, never on the event loop
        with inst.db.session() as session:
            return camera_for(session, who.user, camera_id, Right.VIEW_LIVE)

    camera = await asyncio.to_thread(allowed)
    hub, recorder = parts.hub, parts.recorder
    if hub is None or recorder is None:
        raise ApiError(503, "the recorder is not running")
    stream = resolve_stream(camera, stream, Purpose.TILE)
    async def first_keyframe(sub) -> Any:  # noqa: ANN001
        async for fragment in sub:  # a new subscription starts with the current GOP: its keyframe comes first
            if fragment.keyframe:
                return fragment
        return None

    try:
        async with hub.subscribe(camera_id, stream, wait_init=10.0) as sub:
            fragment = await asyncio.wait_for(first_keyframe(sub), 10)
            init = sub.init
    except TimeoutError:
        raise ApiError(503, "camera is offline") from None
    if fragment is None or init is None:
        raise ApiError(503, "camera is offline")
    jpeg = await asyncio.to_thread(keyframe_jpeg, init, fragment)
    if jpeg is None:
        raise ApiError(503, "no picture could be decoded from the camera")
    await asyncio.to_thread(audit_view, inst, who, who.user, camera, Action.LIVE_VIEWED, Right.VIEW_LIVE,
                            {"via": "snapshot"})
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


# --- events ---------------------------------------------------------------------------------------------------------

def _ts(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ApiError(422, f"{name} must carry a timezone (e.g. 2025-01-31T10:00:00Z)")
    return value


@router.get("/events", response_model=dict)
def search_events(camera: list[Id] = Query(default=[], max_length=100), place: Id | None = None,
                  start: datetime | None = None, end: datetime | None = None, kind: EventKind | None = None,
                  label: EventLabel | None = None, plate: str | None = Query(None, max_length=32),
                  fuzzy: bool = False, zone: str | None = Query(None, max_length=100),
                  paging: KeysetPaging = Depends(), who: Caller = Depends(caller),
                  inst: Installation = Depends(installation)) -> Response:
    """Detections on the cameras the caller may see in the archive, newest first. ``plate`` is a prefix (``123AB``)
    or, with ``fuzzy=true``, a whole plate matched within one OCR-style error."""
    with inst.db.session(readonly=True) as session:
        try:
            query = events_service.search(session, who.user, camera_ids=camera, place_id=place,
                                          start=_ts(start, "start"), end=_ts(end, "end"), kind=kind, label=label,
                                          plate=plate, fuzzy=fuzzy, zone=zone,
                                          page_size=paging.limit if paging.keyset else None)
        except events_service.EventError as exc:
            raise ApiError(422, str(exc)) from None
        # the page's columns as rows (no ORM objects), its cameras' names in one statement
        page = paging.page_by(session, query.with_only_columns(*events_service.EVENT_COLUMNS),
                              [Event.start_at, Event.id], lambda e: (e.start_at, e.id), rows=True)
        page["items"] = events_service.events_out(session, page["items"])
    return json_response(page)


def _event_for(session: Any, who: Caller, event_id: int) -> Event:
    event = session.scalar(events_service.visible_events(who.user, session=session).where(Event.id == event_id))
    if event is None:
        raise not_found("event not found")
    return event


@router.get("/events/{event_id}")
def get_event(event_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session(readonly=True) as session:
        event = _event_for(session, who, event_id)
        return events_service.event_out(event, session.get(Camera, event.camera_id))


def _event_image(event_id: int, which: str, who: Caller, inst: Installation) -> Response:
    with inst.db.session() as session:
        event = _event_for(session, who, event_id)
        camera = session.get(Camera, event.camera_id)
        key = event.snapshot if which == "snapshot" else event.crop
    try:
        data = event_pictures(inst.settings).open(key)
    except PicturesUnavailable:
        raise ApiError(503, "the picture cannot be read now: the object store does not answer",
                       headers={"Retry-After": "5"}) from None
    if data is None:
        raise not_found(f"this event has no {which}")
    audit_view(inst, who, who.user, camera, Action.ARCHIVE_VIEWED, Right.VIEW_ARCHIVE,
               {"event_id": event_id, "via": which})
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/events/{event_id}/snapshot.jpg", response_class=Response,
            responses={**media("image/jpeg"), **errors(503)})
def event_snapshot(event_id: Id, who: Caller = Depends(media_caller),
                   inst: Installation = Depends(installation)) -> Response:
    """The picture at the detection's best moment (audited as an archive view)."""
    return _event_image(event_id, "snapshot", who, inst)


@router.get("/events/{event_id}/crop.jpg", response_class=Response,
            responses={**media("image/jpeg"), **errors(503)})
def event_crop(event_id: Id, who: Caller = Depends(media_caller),
               inst: Installation = Depends(installation)) -> Response:
    """The plate as read (plate events only; audited as an archive view)."""
    return _event_image(event_id, "crop", who, inst)


# --- hot lists ------------------------------------------------------------------------------------------------------

class HotListIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: HotListKind = "wanted"
    priority: Priority = Priority.HIGH


class HotListPatch(BaseModel):
    name: str = unset(min_length=1, max_length=200)
    kind: HotListKind = unset()
    priority: Priority = unset()
    active: bool = unset()


class EntryIn(BaseModel):
    plate: str = Field(min_length=1, max_length=32)
    reason: str = Field("", max_length=2000)
    valid_to: datetime | None = None


def _hotlist_user(session: Any, who: Caller) -> None:
    if not hotlists.may_use(session, who.user):
        raise not_found()


def _hot_list(session: Any, who: Caller, list_id: int, *, change: bool = False) -> HotList:
    """A hot list every police operator reads; ``change``: only its own organisation (and platform admins) edit it."""
    _hotlist_user(session, who)
    hot_list = session.get(HotList, list_id)
    if hot_list is None:
        raise not_found("hot list not found")
    if change and not hotlists.may_change(who.user, hot_list):
        raise ApiError(403, "only the organisation that keeps this list changes it")
    return hot_list


@router.get("/hotlists")
def list_hotlists(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Hot lists (police operators and platform admins; everyone else 404)."""
    with inst.db.session() as session:
        _hotlist_user(session, who)
        counts = dict(session.execute(select(HotListEntry.list_id, func.count()).group_by(HotListEntry.list_id)).all())
        items = [hotlists.list_out(h, counts.get(h.id, 0)) for h in session.scalars(select(HotList)
                                                                                     .order_by(HotList.name))]
        return {"items": items, "total": len(items), "limit": len(items), "offset": 0}


@router.post("/hotlists", status_code=201)
def create_hotlist(body: HotListIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        _hotlist_user(session, who)
        try:
            hot_list = hotlists.create_list(session, who.actor, body.name, body.kind, body.priority,
                                            organisation_id=who.user.organisation_id)
        except hotlists.HotListError as exc:
            raise ApiError(422, str(exc)) from None
        return hotlists.list_out(hot_list, 0)


@router.patch("/hotlists/{list_id}")
def patch_hotlist(list_id: Id, body: HotListPatch, who: Caller = Depends(caller),
                  inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        hot_list = _hot_list(session, who, list_id, change=True)
        try:
            hotlists.update_list(session, who.actor, hot_list, **body.model_dump(exclude_none=True))
        except hotlists.HotListError as exc:
            raise ApiError(422, str(exc)) from None
        return hotlists.list_out(hot_list)


@router.delete("/hotlists/{list_id}", status_code=204)
def delete_hotlist(list_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> Response:
    with inst.db.session() as session:
        hotlists.delete_list(session, who.actor, _hot_list(session, who, list_id, change=True))
    return Response(status_code=204)


@router.get("/hotlists/{list_id}/entries")
def list_entries(list_id: Id, plate: str | None = Query(None, max_length=32), paging: Paging = Depends(),
                 who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        _hot_list(session, who, list_id)
        query = select(HotListEntry).where(HotListEntry.list_id == list_id).order_by(HotListEntry.plate)
        if plate:
            from kuzet.domain.plates import clean

            query = query.where(HotListEntry.plate.startswith(clean(plate)))
        return paging.page(session, query, hotlists.entry_out)


@router.post("/hotlists/{list_id}/entries", status_code=201)
def add_entry(list_id: Id, body: EntryIn, who: Caller = Depends(caller),
              inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        hot_list = _hot_list(session, who, list_id, change=True)
        try:
            entry = hotlists.add_entry(session, who.actor, hot_list, body.plate, body.reason, _ts(body.valid_to,
                                                                                                  "valid_to"))
        except hotlists.HotListError as exc:
            raise ApiError(422, str(exc)) from None
        return hotlists.entry_out(entry)


@router.delete("/hotlists/{list_id}/entries/{entry_id}", status_code=204)
def delete_entry(list_id: Id, entry_id: Id, who: Caller = Depends(caller),
                 inst: Installation = Depends(installation)) -> Response:
    with inst.db.session() as session:
        _hot_list(session, who, list_id, change=True)
        entry = session.get(HotListEntry, entry_id)
        if entry is None or entry.list_id != list_id:
            raise not_found("entry not found")
        hotlists.remove_entry(session, who.actor, entry)
    return Response(status_code=204)


@router.post("/hotlists/{list_id}/import", responses=errors(413))
async def import_entries(list_id: Id, file: UploadFile = File(...), replace: bool = Form(False),
                         who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> Any:
    """CSV with columns plate, reason, valid_to (Russian headers accepted): every row valid, or nothing imported."""
    import csv
    import io

    with await spool(file, min(MAX_HOTLIST_FILE, inst.settings.http.max_upload_bytes), ".csv") as raw:
        try:
            text = io.TextIOWrapper(raw, "utf-8-sig", newline="").read()
        except UnicodeDecodeError:
            raise ApiError(422, "the file is not UTF-8 text") from None
    def work() -> Any:  # in a worker thread, never on the event loop
        with inst.db.session() as session:
            hot_list = _hot_list(session, who, list_id, change=True)
            try:
                result = hotlists.import_csv(session, who.actor, hot_list, io.StringIO(text), replace=replace)
            except csv.Error as exc:  # a NUL byte, an unterminated quote at the end, …
                raise ApiError(422, f"the file is not readable as CSV: {exc}") from None
            except hotlists.HotListImportRejected as exc:
                # Every bad line, not only those the message has room for, so the console can list them all.
                body = error_body("import_rejected", str(exc))
                body["error"]["errors"] = [{"line": e.line, "message": e.message} for e in exc.errors]
                return JSONResponse(body, status_code=422)
            return {"added": result.added, "updated": result.updated}

    return await run_in_threadpool(work)


# --- alarm rules ----------------------------------------------------------------------------------------------------

Clock = Annotated[str, Field(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", description="HH:MM, local time")]
Duration = Annotated[float, Field(ge=0, le=86_400, allow_inf_nan=False, description="Seconds")]
RuleKind = Literal["motion", "object", "plate", "any"]


class ScheduleWindow(BaseModel):
    """When a rule raises alarms: days 0 (Monday) … 6 (Sunday), from–to in local time (over midnight allowed)."""

    model_config = ConfigDict(populate_by_name=True)
    days: list[Annotated[int, Field(ge=0, le=6)]] = Field(default_factory=lambda: list(range(7)), min_length=1,
                                                           max_length=7)
    start: Clock = Field("00:00", alias="from")
    end: Clock = Field("24:00", alias="to")


class RuleIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    place_id: Id | None = None
    camera_id: Id | None = None
    event_kind: RuleKind = "object"
    labels: list[EventLabel] | None = Field(None, max_length=len(OBJECT_LABELS) + 1)
    zone: str | None = Field(None, max_length=100)
    min_duration: Duration = 0.0
    schedule: list[ScheduleWindow] | None = Field(None, max_length=50)
    priority: Priority = Priority.MEDIUM
    enabled: bool = True
    organisation_id: Id | None = None  # platform admins only; others' rules belong to their organisation


class RulePatch(BaseModel):
    """Leave a field out to keep it; ``null`` clears place, camera, labels (any), zone and schedule (always)."""

    name: str = unset(min_length=1, max_length=200)
    place_id: Id | None = None
    camera_id: Id | None = None
    event_kind: RuleKind = unset()
    labels: list[EventLabel] | None = Field(None, max_length=len(OBJECT_LABELS) + 1)
    zone: str | None = Field(None, max_length=100)
    min_duration: Duration = unset()
    schedule: list[ScheduleWindow] | None = Field(None, max_length=50)
    priority: Priority = unset()
    enabled: bool = unset()


def _rule_for(session: Any, who: Caller, rule_id: int) -> AlarmRule:
    rule = session.scalar(rules.visible_rules(who.user).where(AlarmRule.id == rule_id))
    if rule is None:
        raise not_found("rule not found")
    return rule


@router.get("/alarm-rules")
def list_rules(paging: Paging = Depends(), who: Caller = Depends(caller),
               inst: Installation = Depends(installation)) -> dict:
    """The caller's organisation's rules (all for platform admins)."""
    with inst.db.session() as session:
        if not rules.may_manage_rules(who.user):
            raise not_found()
        return paging.page(session, rules.visible_rules(who.user), rules.rule_out)


@router.post("/alarm-rules", status_code=201)
def create_rule(body: RuleIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        if not rules.may_manage_rules(who.user):
            raise not_found()
        try:
            rule = rules.create_rule(session, who.actor, who.user, **body.model_dump(by_alias=True))
        except rules.RuleError as exc:
            raise ApiError(422, str(exc)) from None
        return rules.rule_out(rule)


@router.get("/alarm-rules/{rule_id}")
def get_rule(rule_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        return rules.rule_out(_rule_for(session, who, rule_id))


@router.patch("/alarm-rules/{rule_id}")
def patch_rule(rule_id: Id, body: RulePatch, who: Caller = Depends(caller),
               inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        rule = _rule_for(session, who, rule_id)
        try:
            rules.update_rule(session, who.actor, who.user, rule, **body.model_dump(exclude_unset=True, by_alias=True))
        except rules.RuleError as exc:
            raise ApiError(422, str(exc)) from None
        return rules.rule_out(rule)


@router.delete("/alarm-rules/{rule_id}", status_code=204)
def delete_rule(rule_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> Response:
    with inst.db.session() as session:
        rules.delete_rule(session, who.actor, _rule_for(session, who, rule_id))
    return Response(status_code=204)
