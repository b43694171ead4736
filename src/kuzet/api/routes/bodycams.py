"""Body-worn and dash cameras (docs/bodycams.md): duties, devices and shifts, resumable offload (tus 1.0), recordings
with categories, holds, search, tracks and playback. Routes are thin: the rules live in services/bodycams."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from kuzet.api.deps import Caller, caller, installation, media_caller
from kuzet.api.errors import ApiError, not_found
from kuzet.api.routes.common import ERRORS, MAX_ID, Id, errors, media
from kuzet.domain.bodycams import Action
from kuzet.installation import Installation
from kuzet.services import audit
from kuzet.services.bodycams import devices as devices_service
from kuzet.services.bodycams import offload, recordings, units
from kuzet.store.db import load_by_ids
from kuzet.store.models.bodycams import (
    BodycamCategory,
    BodycamDevice,
    BodycamDuty,
    BodycamRecording,
    BodycamRedaction,
    BodycamShift,
    BodycamUpload,
)

router = APIRouter(tags=["bodycams"], responses=ERRORS)

TUS_VERSION = "1.0.0"
UPLOADS = "/api/v1/bodycams/uploads"
DutyName = Literal["officer", "supervisor", "custodian"]
KindName = Literal["body", "dash"]


def _denied(exc: Exception) -> ApiError:
    if getattr(exc, "forbidden", False):
        return ApiError(403, str(exc))
    return not_found(str(exc))


_REFUSED = (units.DutyDenied, devices_service.DeviceDenied, recordings.RecordingDenied)
_CONFLICTS = (devices_service.DeviceConflict,)
_INVALID = (units.DutyError, devices_service.DeviceError, recordings.RecordingError)


@contextmanager
def _service_answers() -> Iterator[None]:
    """The services' refusals as answers: not the caller's to see → 404 (403 where the service says the caller may see
    it but not do this), a clash with the current state → 409, a request that cannot be carried out → 422."""
    try:
        yield
    except _REFUSED as exc:
        raise _denied(exc) from None
    except _CONFLICTS as exc:
        raise ApiError(409, str(exc)) from None
    except _INVALID as exc:
        raise ApiError(422, str(exc)) from None


# --- duties ----------------------------------------------------------------------------------------------------------

class DutyIn(BaseModel):
    user_id: Id
    duty: DutyName
    legal_basis: str = Field(..., min_length=1, max_length=500)
    organisation_id: Id | None = None


class DutyOut(BaseModel):
    id: int
    user_id: int
    organisation_id: int
    duty: str
    legal_basis: str
    assigned_by: int | None
    assigned_at: datetime
    ended_at: datetime | None

    @classmethod
    def of(cls, row: BodycamDuty) -> DutyOut:
        return cls(id=row.id, user_id=row.user_id, organisation_id=row.organisation_id, duty=row.duty,
                   legal_basis=row.legal_basis, assigned_by=row.assigned_by, assigned_at=row.assigned_at,
                   ended_at=row.ended_at)


@router.get("/bodycams/duties", response_model=list[DutyOut])
def list_duties(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[DutyOut]:
    """One's own duties, and those of the units one administers or keeps."""
    with inst.db.session() as session:
        return [DutyOut.of(d) for d in units.visible_duties(session, who.user)]


@router.post("/bodycams/duties", status_code=201, response_model=DutyOut)
def assign_duty(body: DutyIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> DutyOut:
    """Give a member of a police unit a duty (officer, supervisor, custodian): platform admins and the unit's admin."""
    with _service_answers():
        with inst.db.session() as session:
            row = units.assign_duty(session, who.actor, session.merge(who.user), user_id=body.user_id,
                                    duty=body.duty, legal_basis=body.legal_basis,
                                    organisation_id=body.organisation_id)
            return DutyOut.of(row)


@router.delete("/bodycams/duties/{duty_id}", response_model=DutyOut)
def end_duty(duty_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> DutyOut:
    with _service_answers():
        with inst.db.session() as session:
            return DutyOut.of(units.end_duty(session, who.actor, session.merge(who.user), duty_id))


# --- devices and shifts ----------------------------------------------------------------------------------------------

class DeviceIn(BaseModel):
    serial: str = Field(..., min_length=1, max_length=64)
    kind: KindName
    organisation_id: Id
    model: str = Field("", max_length=100)


class ShiftOut(BaseModel):
    id: int
    device_id: int
    officer_id: int
    checked_out_at: datetime
    checked_out_by: int | None
    checked_in_at: datetime | None
    checked_in_by: int | None
    clock_offset_ms: int | None

    @classmethod
    def of(cls, s: BodycamShift) -> ShiftOut:
        return cls(id=s.id, device_id=s.device_id, officer_id=s.officer_id, checked_out_at=s.checked_out_at,
                   checked_out_by=s.checked_out_by, checked_in_at=s.checked_in_at, checked_in_by=s.checked_in_by,
                   clock_offset_ms=s.clock_offset_ms)


class DeviceOut(BaseModel):
    id: int
    serial: str
    kind: str
    model: str
    organisation_id: int
    registered_at: datetime
    retired_at: datetime | None
    current_shift: ShiftOut | None = None


class DeviceDetailOut(DeviceOut):
    shifts: list[ShiftOut]


_UNKNOWN = object()


def _device_out(session, device: BodycamDevice, shift: BodycamShift | None | object = _UNKNOWN) -> dict:  # noqa: ANN001
    if shift is _UNKNOWN:
        shift = devices_service.open_shift(session, device.id)
    return {"id": device.id, "serial": device.serial, "kind": device.kind, "model": device.model,
            "organisation_id": device.organisation_id, "registered_at": device.registered_at,
            "retired_at": device.retired_at, "current_shift": ShiftOut.of(shift) if shift else None}


@router.get("/bodycams/devices", response_model=list[DeviceOut])
def list_devices(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[dict]:
    """The devices of the units the caller works in or administers."""
    with inst.db.session(readonly=True) as session:
        devices = devices_service.visible_devices(session, who.user)
        shifts = devices_service.open_shifts(session, [d.id for d in devices])  # one statement, not one a device
        return [_device_out(session, d, shifts.get(d.id)) for d in devices]


@router.post("/bodycams/devices", status_code=201, response_model=DeviceOut)
def register_device(body: DeviceIn, who: Caller = Depends(caller),
                    inst: Installation = Depends(installation)) -> dict:
    with _service_answers():
        with inst.db.session() as session:
            device = devices_service.register_device(session, who.actor, session.merge(who.user),
                                                     serial=body.serial, kind=body.kind,
                                                     organisation_id=body.organisation_id, model=body.model)
            return _device_out(session, device)


@router.get("/bodycams/devices/{device_id}", response_model=DeviceDetailOut)
def get_device(device_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with _service_answers():
        with inst.db.session() as session:
            device = devices_service.device_for(session, who.user, device_id)
            return {**_device_out(session, device),
                    "shifts": [ShiftOut.of(s) for s in devices_service.shifts_of(session, device)]}


class CheckOutIn(BaseModel):
    officer_id: Id


class CheckInIn(BaseModel):
    device_clock: datetime | None = Field(None, description="What the device's clock shows now (with its zone); "
                                                            "the offset to the server's clock is kept with the shift")


def _shift_change(device_id: int, who: Caller, inst: Installation, change) -> ShiftOut:  # noqa: ANN001
    with _service_answers():
        with inst.db.session() as session:
            user = session.merge(who.user)
            device = devices_service.device_for(session, user, device_id)
            return ShiftOut.of(change(session, user, device))


@router.post("/bodycams/devices/{device_id}/check-out", status_code=201, response_model=ShiftOut)
def check_out(device_id: Id, body: CheckOutIn, who: Caller = Depends(caller),
              inst: Installation = Depends(installation)) -> ShiftOut:
    """Hand the device to an officer of its unit for a shift (audited)."""
    return _shift_change(device_id, who, inst, lambda s, u, d: devices_service.check_out(
        s, who.actor, u, d, body.officer_id))


@router.post("/bodycams/devices/{device_id}/check-in", response_model=ShiftOut)
def check_in(device_id: Id, body: CheckInIn, who: Caller = Depends(caller),
             inst: Installation = Depends(installation)) -> ShiftOut:
    """Take the device back (audited), recording its clock's offset."""
    return _shift_change(device_id, who, inst, lambda s, u, d: devices_service.check_in(
        s, who.actor, u, d, body.device_clock))


# --- offload: tus 1.0 (core, creation, termination) ------------------------------------------------------------------
# Implemented here rather than with a tus server library: the one maintained FastAPI router (tuspyserver) keeps its own
# files and JSON state beside them, answers with its own error bodies and authorises nothing; Kuzet needs every request
# authorised against the device's unit (404 for what the caller may not see), the upload's state in the database
# beside the audit record, errors in the API's one shape, and the finished file handed to ingest without a copy. The
# protocol's core is small (HEAD offset, PATCH append at offset, POST create, DELETE terminate).

def _tus_headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **extra}


def _tus_version(value: str | None) -> None:
    if value != TUS_VERSION:
        raise ApiError(412, f"Tus-Resumable: this server speaks tus {TUS_VERSION}",
                       headers={"Tus-Version": TUS_VERSION, "Tus-Resumable": TUS_VERSION})


def _tus_int(name: str, value: str | None) -> int:
    if value is None or not value.isdigit() or len(value) > 18:
        raise ApiError(400, f"{name}: a non-negative whole number of bytes is required")
    return int(value)


@router.options("/bodycams/uploads", status_code=204, response_class=Response,
                responses={204: {"description": "The tus protocol versions and extensions this server offers"}})
def tus_options(inst: Installation = Depends(installation)) -> Response:
    """tus discovery: version, extensions and the largest upload (no token needed; it reveals nothing else)."""
    return Response(status_code=204, headers={
        "Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION, "Tus-Extension": "creation,termination",
        "Tus-Max-Size": str(inst.settings.bodycams.max_file_bytes)})


@router.post("/bodycams/uploads", status_code=201, response_class=Response, responses={
    201: {"description": "Created; Location is the upload's URL"}, **errors(412)})
def tus_create(who: Caller = Depends(caller), inst: Installation = Depends(installation),
               tus_resumable: str | None = Header(None), upload_length: str | None = Header(None),
               upload_metadata: str | None = Header(None)) -> Response:
    """Create an upload (tus creation). ``Upload-Metadata``: ``device`` (serial, required), ``filename``,
    ``recorded_at`` (ISO 8601 by the device's clock). The device's unit keepers and admin, and the officer who has or
    last had it, may offload it."""
    _tus_version(tus_resumable)
    length = _tus_int("Upload-Length", upload_length)
    try:
        metadata = offload.parse_metadata(upload_metadata)
        with inst.db.session() as session:
            upload = offload.create_upload(session, inst.settings.bodycams_path, who.actor, session.merge(who.user),
                                           length=length, metadata=metadata,
                                           max_bytes=inst.settings.bodycams.max_file_bytes,
                                           expiry_hours=inst.settings.bodycams.upload_expiry_hours)
            upload_id = upload.id
    except offload.UploadDenied as exc:
        raise not_found(str(exc)) from None
    except offload.UploadError as exc:
        status = 413 if "larger than" in str(exc) else 422
        raise ApiError(status, str(exc)) from None
    return Response(status_code=201, headers=_tus_headers(Location=f"{UPLOADS}/{upload_id}"))


def _upload(inst: Installation, who: Caller, upload_id: str) -> BodycamUpload:
    with inst.db.session() as session:
        try:
            upload = offload.upload_for(session, who.user, upload_id)
        except offload.UploadDenied as exc:
            raise not_found(str(exc)) from None
        session.expunge(upload)
        return upload


@router.head("/bodycams/uploads/{upload_id}", response_class=Response, responses={
    200: {"description": "Upload-Offset and Upload-Length headers"}, **errors(412)})
def tus_offset(upload_id: str = PathParam(..., max_length=64), who: Caller = Depends(caller),
               inst: Installation = Depends(installation),
               tus_resumable: str | None = Header(None)) -> Response:
    """How many bytes of the upload arrived (resume from there)."""
    upload = _upload(inst, who, upload_id)
    _tus_version(tus_resumable)
    return Response(status_code=200, headers=_tus_headers(**{"Upload-Offset": str(upload.offset),
                                                            "Upload-Length": str(upload.length)}))


@router.patch("/bodycams/uploads/{upload_id}", status_code=204, response_class=Response, responses={
    204: {"description": "Appended; Upload-Offset is the new offset (X-Kuzet-Recording once complete)"},
    **errors(412, 413, 415)}, openapi_extra={"requestBody": {"required": True, "content": {
        "application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def tus_append(request: Request, upload_id: str = PathParam(..., max_length=64), who: Caller = Depends(caller),
                     inst: Installation = Depends(installation), tus_resumable: str | None = Header(None),
                     upload_offset: str | None = Header(None), content_type: str | None = Header(None)) -> Response:
    """Append bytes at ``Upload-Offset``. A cut connection keeps what arrived; the client asks HEAD and resumes.
    When the last byte arrives the file is ingested (hashed, indexed, kept read-only) and linked to its officer."""
    upload = await asyncio.to_thread(_upload, inst, who, upload_id)
    _tus_version(tus_resumable)
    if (content_type or "").split(";")[0].strip().lower() != "application/offset+octet-stream":
        raise ApiError(415, "Content-Type: application/offset+octet-stream is required")
    offset = _tus_int("Upload-Offset", upload_offset)
    if offset != upload.offset:
        raise ApiError(409, f"Upload-Offset {offset} does not match the upload's offset {upload.offset}",
                       headers=_tus_headers(**{"Upload-Offset": str(upload.offset)}))
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and offset + int(declared) > upload.length:
        raise ApiError(413, f"the body goes past Upload-Length ({upload.length}); nothing was written")
    root = inst.settings.bodycams_path
    try:
        writer = await asyncio.to_thread(offload.PartWriter, offload.part_path(root, upload.id), offset, upload.id)
    except offload.UploadConflict as exc:
        raise ApiError(409, str(exc)) from None
    buffer = bytearray()
    too_long = False
    pending: asyncio.Future | None = None  # the block being written (and hashed) while the next one arrives

    def write(block: bytes) -> None:  # written, hashed, and its offset saved: HEAD shows progress of a long upload
        writer.write(block)
        _save_offset(inst, upload.id, offset + writer.written)

    try:
        async for chunk in request.stream():
            if offset + writer.written + len(buffer) + len(chunk) > upload.length:
                too_long = True
                break
            buffer += chunk
            if len(buffer) >= 4 << 20:
                block = bytes(buffer)
                buffer.clear()
                if pending is not None:
                    await pending  # one block at a time, in order
                pending = asyncio.ensure_future(asyncio.to_thread(write, block))
    except ClientDisconnect:
        pass  # keep what arrived: the client resumes from the offset HEAD reports
    finally:
        try:
            if pending is not None:
                await pending
            if buffer:
                await asyncio.to_thread(writer.write, bytes(buffer))
        finally:
            await asyncio.to_thread(writer.close)
            new_offset = offset + writer.written
            await asyncio.to_thread(_save_offset, inst, upload.id, new_offset)
    if too_long:
        raise ApiError(413, f"the body goes past Upload-Length ({upload.length}); the bytes before the chunk that "
                       "went past it were kept",
                       headers=_tus_headers(**{"Upload-Offset": str(new_offset)}))
    headers = _tus_headers(**{"Upload-Offset": str(new_offset)})
    if new_offset == upload.length:
        recording_id = await asyncio.to_thread(_finish, inst, who, upload.id, writer.sha256())
        headers["X-Kuzet-Recording"] = str(recording_id)
    return Response(status_code=204, headers=headers)


def _save_offset(inst: Installation, upload_id: str, offset: int) -> None:
    with inst.db.session() as session:
        row = session.get(BodycamUpload, upload_id)
        if row is not None:
            row.offset = offset


def _finish(inst: Installation, who: Caller, upload_id: str, sha256: str) -> int:
    """Ingest the complete part: hashed as it arrived (``sha256``), so this only indexes its header and renames it."""
    return offload.finish_upload(inst.db, inst.settings.bodycams_path, who.actor, upload_id, sha256)


@router.delete("/bodycams/uploads/{upload_id}", status_code=204, response_class=Response,
               responses={204: {"description": "The upload and its bytes are gone"}, **errors(412)})
def tus_terminate(upload_id: str = PathParam(..., max_length=64), who: Caller = Depends(caller),
                  inst: Installation = Depends(installation), tus_resumable: str | None = Header(None)) -> Response:
    """tus termination: drop an unfinished upload and the bytes that arrived."""
    with inst.db.session() as session:
        try:
            upload = offload.upload_for(session, who.user, upload_id)
        except offload.UploadDenied as exc:
            raise not_found(str(exc)) from None
        _tus_version(tus_resumable)
        offload.cancel_upload(session, inst.settings.bodycams_path, who.actor, upload)
    return Response(status_code=204, headers=_tus_headers())


# --- recordings ------------------------------------------------------------------------------------------------------

class CategoryOut(BaseModel):
    code: str
    retention_days: int | None
    evidence: bool


class CategoryIn(BaseModel):
    retention_days: int | None = Field(..., ge=1, le=36500, description="None: kept until deleted by hand")
    evidence: bool | None = None


class HoldOut(BaseModel):
    id: int
    reason: str
    source: str | None
    created_by: int | None
    created_at: datetime
    released_at: datetime | None


class RecordingOut(BaseModel):
    id: int
    device_id: int
    serial: str
    officer_id: int | None
    shift_id: int | None
    organisation_id: int
    filename: str
    bytes: int
    sha256: str
    media: dict | None
    started_at: datetime
    ended_at: datetime
    device_started_at: datetime | None
    ingested_at: datetime
    ingested_by: int | None
    via: str
    category: str | None
    title: str
    playable_sha256: str | None
    lat: float | None
    lon: float | None
    expires_at: datetime | None
    held: bool
    deleted: bool


class RecordingDetailOut(RecordingOut):
    holds: list[HoldOut]


class RecordingPage(BaseModel):
    items: list[RecordingOut]
    total: int
    limit: int
    offset: int


def _recording_out(session, r: BodycamRecording, codes: dict[int, str] | None = None,  # noqa: ANN001
                   kept_days: dict[int, int | None] | None = None, held: bool | None = None) -> dict:
    """A recording as the API shows it; a page passes its categories and holds (``codes``, ``kept_days``,
    ``held``) and has loaded its devices (``load_by_ids``), so that a row costs no statement of its own."""
    if codes is None:
        codes = {c.id: c.code for c in recordings.categories(session)}
    device = session.get(BodycamDevice, r.device_id)
    return {"id": r.id, "device_id": r.device_id, "serial": device.serial, "officer_id": r.officer_id,
            "shift_id": r.shift_id, "organisation_id": r.organisation_id, "filename": r.filename, "bytes": r.bytes,
            "sha256": r.sha256, "media": r.media, "started_at": r.started_at, "ended_at": r.ended_at,
            "device_started_at": r.device_started_at, "ingested_at": r.ingested_at, "ingested_by": r.ingested_by,
            "via": r.via, "category": codes.get(r.category_id) if r.category_id else None, "title": r.title,
            "playable_sha256": r.playable_sha256, "lat": r.lat, "lon": r.lon,
            "expires_at": recordings.expires_at(session, r, kept_days),
            "held": bool(recordings.open_holds(session, r.id)) if held is None else held,
            "deleted": r.deleted_at is not None}


@router.get("/bodycams/categories", response_model=list[CategoryOut])
def list_categories(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[dict]:
    with inst.db.session() as session:
        return [{"code": c.code, "retention_days": c.retention_days, "evidence": c.evidence}
                for c in recordings.categories(session)]


@router.put("/bodycams/categories/{code}", response_model=CategoryOut)
def set_category(code: str, body: CategoryIn, who: Caller = Depends(caller),
                 inst: Installation = Depends(installation)) -> dict:
    """A category's retention (platform admins): recordings of it are deleted that many days after they began."""
    with _service_answers():
        with inst.db.session() as session:
            c: BodycamCategory = recordings.set_retention(session, who.actor, session.merge(who.user), code[:32],
                                                          body.retention_days, body.evidence)
            return {"code": c.code, "retention_days": c.retention_days, "evidence": c.evidence}


@router.get("/bodycams/recordings", response_model=RecordingPage)
def search_recordings(officer_id: Id | None = None, device_id: Id | None = None,
                      category: str | None = Query(None, max_length=32, description="A code, or 'none'"),
                      start: datetime | None = None, end: datetime | None = None,
                      lat: float | None = Query(None, ge=-90, le=90), lon: float | None = Query(None, ge=-180, le=180),
                      radius_m: float = Query(300, gt=0, le=50_000), incident_id: Id | None = None,
                      limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=MAX_ID),
                      who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Recordings the caller sees (their own; their unit's for supervisors and custodians), newest first, by
    officer, device, category (``none``: uncategorised), time, place (``lat``, ``lon``, ``radius_m``), incident."""
    if (lat is None) != (lon is None):
        raise ApiError(422, "lat and lon go together")
    query = recordings.Search(officer_id=officer_id, device_id=device_id, category=category, start=start, end=end,
                              near=(lat, lon, radius_m) if lat is not None else None, incident_id=incident_id)
    with inst.db.session(readonly=True) as session:
        rows, total = recordings.search(session, who.user, query, limit, offset)
        kinds = recordings.categories(session)
        codes = {c.id: c.code for c in kinds}
        kept_days = {c.id: c.retention_days for c in kinds}
        load_by_ids(session, BodycamDevice, [r.device_id for r in rows])  # the page's devices: one statement
        held = recordings.held_among(session, [r.id for r in rows])
        return {"items": [_recording_out(session, r, codes, kept_days, r.id in held) for r in rows],
                "total": total, "limit": limit, "offset": offset}


@router.get("/bodycams/recordings/{recording_id}", response_model=RecordingDetailOut)
def get_recording(recording_id: Id, who: Caller = Depends(caller),
                  inst: Installation = Depends(installation)) -> dict:
    """One recording with its hashes and holds (the view is audited)."""
    with _service_answers():
        with inst.db.session() as session:
            r = recordings.recording_for(session, who.user, recording_id)
            audit.append(session, who.actor, Action.VIEWED, object_type="bodycam_recording", object_id=r.id,
                         details={"sha256": r.sha256})
            holds = [HoldOut(id=h.id, reason=h.reason, source=h.source, created_by=h.created_by,
                             created_at=h.created_at, released_at=h.released_at)
                     for h in recordings.open_holds(session, r.id)]
            return {**_recording_out(session, r), "holds": holds}


@router.get("/bodycams/recordings/{recording_id}/video.mp4", response_class=FileResponse,
            responses=media("video/mp4", "application/octet-stream") | errors(410))
def recording_video(recording_id: Id, original: bool = False, who: Caller = Depends(media_caller),
                    inst: Installation = Depends(installation)) -> FileResponse:
    """The browser-playable copy, or the original (``original=true``, or when it plays as it is); HTTP Range works.
    Audited once per viewing session."""
    with _service_answers():
        with inst.db.session() as session:
            r = recordings.recording_for(session, who.user, recording_id)
            if r.deleted_at is not None:
                raise ApiError(410, "the recording's retention ran out; its files were deleted")
            is_original = original or not r.playable_path
            relative = r.path if is_original else r.playable_path
            digest = r.sha256 if is_original else r.playable_sha256
    try:
        path = offload.stored_file(inst.settings.bodycams_path, relative)
    except FileNotFoundError:
        raise ApiError(410, "the recording's file is missing from storage") from None
    sessions = inst.running.viewing_sessions
    if sessions.starts(who.token, "bodycam", recording_id, relative):
        with inst.db.session() as session:
            audit.append(session, who.actor, Action.PLAYED, object_type="bodycam_recording",
                         object_id=recording_id, details={"file": "original" if is_original else "playable",
                                                          "sha256": digest})
    kind = "video/mp4" if path.suffix in (".mp4", ".m4v", ".mov") else "application/octet-stream"
    return FileResponse(path, media_type=kind)


class CategoriseIn(BaseModel):
    category: str = Field(..., min_length=1, max_length=32)
    title: str | None = Field(None, max_length=300)


@router.post("/bodycams/recordings/{recording_id}/category", response_model=RecordingOut)
def categorise(recording_id: Id, body: CategoriseIn, who: Caller = Depends(caller),
               inst: Installation = Depends(installation)) -> dict:
    """The officer who made it, or a keeper of the unit, says what it shows (its retention follows)."""
    with _service_answers():
        with inst.db.session() as session:
            user = session.merge(who.user)
            r = recordings.recording_for(session, user, recording_id)
            recordings.categorise(session, who.actor, user, r, body.category, body.title)
            return _recording_out(session, r)


class HoldIn(BaseModel):
    reason: str = Field(..., min_length=1, max_length=2000)


@router.post("/bodycams/recordings/{recording_id}/holds", status_code=201, response_model=HoldOut)
def hold_recording(recording_id: Id, body: HoldIn, who: Caller = Depends(caller),
                   inst: Installation = Depends(installation)) -> HoldOut:
    """An evidence hold: retention never deletes the recording while one is open (keepers of the unit)."""
    with _service_answers():
        with inst.db.session() as session:
            user = session.merge(who.user)
            r = recordings.recording_for(session, user, recording_id, keep=True)
            h = recordings.hold(session, who.actor, user, r, body.reason)
            return HoldOut(id=h.id, reason=h.reason, source=h.source, created_by=h.created_by,
                           created_at=h.created_at, released_at=h.released_at)


@router.delete("/bodycams/holds/{hold_id}", response_model=HoldOut)
def release_hold(hold_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> HoldOut:
    with _service_answers():
        with inst.db.session() as session:
            h = recordings.release_hold(session, who.actor, session.merge(who.user), hold_id)
            return HoldOut(id=h.id, reason=h.reason, source=h.source, created_by=h.created_by,
                           created_at=h.created_at, released_at=h.released_at)


class TrackPointOut(BaseModel):
    at: datetime
    lat: float
    lon: float
    speed_kmh: float | None


@router.get("/bodycams/recordings/{recording_id}/track", response_model=list[TrackPointOut])
def recording_track(recording_id: Id, who: Caller = Depends(caller),
                    inst: Installation = Depends(installation)) -> list[dict]:
    """A dash camera's GPS fixes along the recording (from its GPX/NMEA side file)."""
    from kuzet.services.bodycams.tracks import track_of

    with _service_answers():
        with inst.db.session() as session:
            r = recordings.recording_for(session, who.user, recording_id)
            return [{"at": p.at, "lat": p.lat, "lon": p.lon, "speed_kmh": p.speed_kmh}
                    for p in track_of(session, r.id)]


class IncidentLinkIn(BaseModel):
    incident_id: Id


class IncidentLinkOut(BaseModel):
    incident_id: int
    recording_id: int
    linked_by: int | None
    linked_at: datetime


@router.post("/bodycams/recordings/{recording_id}/incidents", status_code=201, response_model=IncidentLinkOut)
def link_incident(recording_id: Id, body: IncidentLinkIn, who: Caller = Depends(caller),
                  inst: Installation = Depends(installation)) -> IncidentLinkOut:
    """Link the recording to an operations-centre incident (keepers of the unit): the incident's timeline shows it,
    and it is held as evidence of that incident."""
    with _service_answers():
        with inst.db.session() as session:
            user = session.merge(who.user)
            r = recordings.recording_for(session, user, recording_id, keep=True)
            link = recordings.link_incident(session, who.actor, user, r, body.incident_id)
            return IncidentLinkOut(incident_id=link.incident_id, recording_id=link.recording_id,
                                   linked_by=link.linked_by, linked_at=link.linked_at)


# --- disclosure with redaction ---------------------------------------------------------------------------------------

class AddedBox(BaseModel):
    from_frame: int = Field(..., alias="from", ge=0, le=MAX_ID)
    to_frame: int = Field(..., alias="to", ge=0, le=MAX_ID)
    box: list[int] = Field(..., min_length=4, max_length=4, description="x, y, width, height in pixels")

    model_config = {"populate_by_name": True}


class TrackOut(BaseModel):
    id: int
    first: int
    last: int
    frames: int
    excluded: bool
    samples: dict[str, list[int]] = Field(description="The padded box every `step` frames (frame → x, y, w, h)")


class RedactionOut(BaseModel):
    id: int
    recording_id: int
    state: str = Field(description="queued → planning (faces being found in the background) → planned → rendered; "
                                   "or failed")
    frames_done: int | None = Field(None, description="The background job's progress")
    frames_total: int | None = Field(None, description="Frames in the video (estimated until the plan is made)")
    error: str | None = None
    width: int = 0
    height: int = 0
    fps: float = 0
    frames: int = 0
    tracks: list[TrackOut] = Field(default_factory=list)
    added: list[AddedBox] = Field(default_factory=list)
    audio: bool = Field(True, description="The copy carries the recording's sound")
    sha256: str | None
    original_sha256: str
    created_at: datetime
    rendered_at: datetime | None


class RedactionEditIn(BaseModel):
    excluded: list[Id] = Field(default_factory=list, max_length=10_000,
                               description="Tracks left unblurred (an officer, the person the court must see)")
    added: list[AddedBox] = Field(default_factory=list, max_length=10_000, description="Boxes drawn by hand")
    audio: bool | None = Field(None, description="Keep the recording's sound in the copy (default yes); "
                                                 "unchanged when left out")


def _redaction_out(inst: Installation, session, row, step: int = 25) -> RedactionOut:  # noqa: ANN001
    from kuzet.services.bodycams.disclosure import load_plan

    recording = session.get(BodycamRecording, row.recording_id)
    common = {"id": row.id, "recording_id": row.recording_id, "state": row.state, "frames_done": row.frames_done,
              "frames_total": row.frames_total, "error": row.error, "sha256": row.sha256,
              "original_sha256": recording.sha256, "created_at": row.created_at, "rendered_at": row.rendered_at}
    if row.state not in ("planned", "rendered"):
        return RedactionOut(**common)
    plan = load_plan(inst.settings.bodycams_path, row)
    tracks = [TrackOut(id=tid, first=min(boxes), last=max(boxes), frames=len(boxes), excluded=tid in plan.excluded,
                       samples={str(k): v for k, v in sorted(boxes.items()) if (k - min(boxes)) % step == 0})
              for tid, boxes in sorted(plan.tracks.items()) if boxes]
    return RedactionOut(**common, width=plan.width, height=plan.height, fps=plan.fps, frames=plan.frames,
                        tracks=tracks, added=[AddedBox.model_validate(a) for a in plan.added], audio=plan.audio)


def _disclosure_errors(exc: Exception) -> ApiError:
    from kuzet.services.bodycams import disclosure

    if isinstance(exc, disclosure.DisclosureDenied | recordings.RecordingDenied):
        return _denied(exc)
    if isinstance(exc, disclosure.DisclosureConflict):
        return ApiError(409, str(exc))
    return ApiError(422, str(exc))


def _disclosure_exceptions() -> tuple[type[Exception], ...]:
    from kuzet.services.bodycams import disclosure

    return (disclosure.DisclosureDenied, disclosure.DisclosureConflict, disclosure.DisclosureError,
            recordings.RecordingDenied)


@router.post("/bodycams/recordings/{recording_id}/redactions", status_code=201, response_model=RedactionOut)
def start_redaction(recording_id: Id, who: Caller = Depends(caller),
                    inst: Installation = Depends(installation)) -> RedactionOut:
    """Queue the search for faces in a recording (keepers of the unit): a background job reads the whole video (about
    as long as it plays) and makes the plan the operator reviews; ``GET /bodycams/redactions/{id}`` shows its
    progress (``state``, ``frames_done`` of ``frames_total``)."""
    from kuzet.services.bodycams import disclosure
    from kuzet.services.bodycams.runtime import wake_redactions

    try:
        with inst.db.session() as session:
            user = session.merge(who.user)
            r = recordings.recording_for(session, user, recording_id, keep=True)
            row = disclosure.start_redaction(session, inst.settings.bodycams_path, who.actor, user, r)
            out = _redaction_out(inst, session, row)
    except _disclosure_exceptions() as exc:
        raise _disclosure_errors(exc) from None
    wake_redactions(inst).set()
    return out


@router.get("/bodycams/recordings/{recording_id}/redactions", response_model=list[RedactionOut])
def list_redactions(recording_id: Id, who: Caller = Depends(caller),
                    inst: Installation = Depends(installation)) -> list[RedactionOut]:
    """The recording's redactions, oldest first, with each job's state and progress (keepers of the unit)."""
    from kuzet.services.bodycams import disclosure

    try:
        with inst.db.session() as session:
            r = recordings.recording_for(session, who.user, recording_id, keep=True)
            return [_redaction_out(inst, session, row, step=10_000) for row in disclosure.redactions_of(session, r)]
    except _disclosure_exceptions() as exc:
        raise _disclosure_errors(exc) from None


@router.get("/bodycams/redactions/{redaction_id}", response_model=RedactionOut)
def get_redaction(redaction_id: Id, step: int = Query(25, ge=1, le=10_000), who: Caller = Depends(caller),
                  inst: Installation = Depends(installation)) -> RedactionOut:
    """The plan: every face track with its box every ``step`` frames, what the operator changed, the hashes."""
    from kuzet.services.bodycams import disclosure

    try:
        with inst.db.session() as session:
            return _redaction_out(inst, session, disclosure.redaction_for(session, who.user, redaction_id), step)
    except _disclosure_exceptions() as exc:
        raise _disclosure_errors(exc) from None


@router.put("/bodycams/redactions/{redaction_id}", response_model=RedactionOut)
def edit_redaction(redaction_id: Id, body: RedactionEditIn, who: Caller = Depends(caller),
                   inst: Installation = Depends(installation)) -> RedactionOut:
    """The operator's review: tracks left unblurred and boxes added (audited)."""
    from kuzet.services.bodycams import disclosure

    try:
        with inst.db.session() as session:
            row = disclosure.redaction_for(session, who.user, redaction_id)
            disclosure.edit_redaction(session, inst.settings.bodycams_path, who.actor, row, list(body.excluded),
                                      [a.model_dump(by_alias=True) for a in body.added], body.audio)
            return _redaction_out(inst, session, row)
    except _disclosure_exceptions() as exc:
        raise _disclosure_errors(exc) from None


@router.post("/bodycams/redactions/{redaction_id}/render", response_model=RedactionOut)
def render_redaction(redaction_id: Id, who: Caller = Depends(caller),
                     inst: Installation = Depends(installation)) -> RedactionOut:
    """Write the redacted copy (a new file, hashed, linked to the original; the original is only read)."""
    from kuzet.services.bodycams import disclosure

    try:
        with inst.db.session() as session:
            row = disclosure.redaction_for(session, who.user, redaction_id)
            disclosure.render_redaction(session, inst.settings.bodycams_path, who.actor, row)
            return _redaction_out(inst, session, row)
    except _disclosure_exceptions() as exc:
        raise _disclosure_errors(exc) from None


@router.get("/bodycams/redactions/{redaction_id}/video.mp4", response_class=FileResponse,
            responses=media("video/mp4"))
def redaction_video(redaction_id: Id, who: Caller = Depends(media_caller),
                    inst: Installation = Depends(installation)) -> FileResponse:
    """The redacted copy, to check before disclosing it (audited)."""
    from kuzet.services.bodycams import disclosure

    try:
        with inst.db.session() as session:
            row = disclosure.redaction_for(session, who.user, redaction_id)
            if row.state != "rendered":
                raise ApiError(409, "the redacted copy is not written yet")
            relative, digest, recording_id = row.path, row.sha256, row.recording_id
    except _disclosure_exceptions() as exc:
        raise _disclosure_errors(exc) from None
    sessions = inst.running.viewing_sessions
    if sessions.starts(who.token, "bodycam-redaction", redaction_id):
        with inst.db.session() as session:
            audit.append(session, who.actor, Action.PLAYED, object_type="bodycam_recording", object_id=recording_id,
                         details={"file": "redacted", "redaction_id": redaction_id, "sha256": digest})
    try:
        path = offload.stored_file(inst.settings.bodycams_path, relative)
    except FileNotFoundError:
        raise ApiError(410, "the redacted copy is missing from storage") from None
    return FileResponse(path, media_type="video/mp4")


class DisclosureIn(BaseModel):
    redaction_ids: list[Id] = Field(..., min_length=1, max_length=100)
    recipient: str = Field(..., min_length=1, max_length=300, description="Who receives it (a prosecutor's office)")
    reason: str = Field(..., min_length=1, max_length=2000, description="The request or order it answers")
    hours: int = Field(72, ge=1, le=24 * 30, description="How long the link works")


class DisclosureOut(BaseModel):
    id: str
    url: str = Field(description="The link to give the recipient; shown only now")
    sha256: str
    expires_at: datetime
    recordings: list[int]


@router.post("/bodycams/disclosures", status_code=201, response_model=DisclosureOut)
def create_disclosure(body: DisclosureIn, who: Caller = Depends(caller),
                      inst: Installation = Depends(installation)) -> DisclosureOut:
    """A signed package of redacted copies (the manifest names both hashes of each recording) and an expiring link
    to it; the recordings are held. Audited."""
    from kuzet.services.bodycams import disclosure

    try:
        with inst.db.session() as session:
            user = session.merge(who.user)
            row, token = disclosure.create_disclosure(
                session, inst.settings.bodycams_path, inst.keys, who.actor, user,
                redaction_ids=list(body.redaction_ids), recipient=body.recipient, reason=body.reason,
                hours=body.hours)
            recordings_ids = [session.get(BodycamRedaction, rid).recording_id for rid in row.redaction_ids]
            return DisclosureOut(id=row.id, url=f"/api/v1/shared/bodycams/{token}.zip", sha256=row.sha256,
                                 expires_at=row.expires_at, recordings=recordings_ids)
    except _disclosure_exceptions() as exc:
        raise _disclosure_errors(exc) from None


@router.get("/shared/bodycams/{token}.zip", response_class=FileResponse, responses=media("application/zip"))
def open_disclosure(token: str, request: Request, inst: Installation = Depends(installation)) -> FileResponse:
    """A disclosure package, for whoever holds the link, until it expires; every opening is an audit record."""
    from kuzet.api.deps import client_ip
    from kuzet.services.bodycams import disclosure

    if len(token) > 100:
        raise not_found("this link is not valid (expired, revoked or unknown)")
    try:
        with inst.db.session() as session:
            row = disclosure.open_disclosure(session, token, client_ip(request))
            relative, name = row.path, f"disclosure-{row.id}.zip"
        path = offload.stored_file(inst.settings.bodycams_path, relative)
    except LookupError as exc:
        raise not_found(str(exc)) from None
    except FileNotFoundError:
        raise ApiError(410, "the disclosure package is missing from storage") from None
    return FileResponse(path, media_type="application/zip", filename=name,
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


class LiveIn(BaseModel):
    protocol: Literal["rtmp", "rtsp"] = "rtmp"
    public_host: str | None = Field(None, max_length=253, description="Host name the car reaches (default "
                                                                       "[push] public_host)")


class LiveOut(BaseModel):
    device_id: int
    camera_id: int
    protocol: str
    push_url: str = Field(description="Give this to the dash camera; its key is shown only now")
    key_issued_at: datetime


@router.post("/bodycams/devices/{device_id}/live", status_code=201, response_model=LiveOut)
def enable_live(device_id: Id, body: LiveIn, who: Caller = Depends(caller),
                inst: Installation = Depends(installation)) -> dict:
    """Let a patrol car's dash camera stream live through the push ingest with a key of its own (the unit's keepers
    and admin); it is recorded and watched like any camera, by the unit."""
    from kuzet.services.bodycams.live import enable_live as enable

    with _service_answers():
        with inst.db.session() as session:
            user = session.merge(who.user)
            device = devices_service.device_for(session, user, device_id, manage=True)
            return enable(session, who.actor, inst.settings, inst.keys, device, body.protocol, body.public_host)


class CrewOut(BaseModel):
    device_id: int
    serial: str
    camera_id: int = Field(description="The car's live camera")
    live: bool = Field(description="The caller may watch its live video")
    at: datetime = Field(description="When the car was last there (GPS time)")
    lat: float
    lon: float
    speed_kmh: float | None
    source: Literal["live", "recording"] = Field(description="`live`: posted by the car while it streams; "
                                                             "`recording`: the newest point of its offloaded tracks")


@router.get("/bodycams/crews", response_model=list[CrewOut])
def crews(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[dict]:
    """Patrol cars streaming live with their latest GPS position, for the map (only those the caller may see; the
    first look of a viewing session is audited)."""
    from kuzet.services.bodycams.live import crews as crews_of

    with inst.db.session() as session:
        out = crews_of(session, session.merge(who.user))
    sessions = inst.running.viewing_sessions
    if out and sessions.starts(who.token, "bodycam-crews"):
        with inst.db.session() as session:
            audit.append(session, who.actor, Action.CREWS_VIEWED, object_type="bodycam_device",
                         details={"devices": [c["device_id"] for c in out]})
    return out


class FixIn(BaseModel):
    at: datetime = Field(description="GPS time, with its zone (…Z)")
    lat: float = Field(..., ge=-90, le=90)
    lon: float = Field(..., ge=-180, le=180)
    speed_kmh: float | None = Field(None, ge=0, le=400)


class PositionsIn(BaseModel):
    fixes: list[FixIn] = Field(default_factory=list, max_length=100_000)
    nmea: str | None = Field(None, max_length=1_000_000, description="NMEA sentences, one a line (RMC are read)")


class PositionsOut(BaseModel):
    device_id: int
    shift_id: int | None = Field(description="The shift whose live track the fixes joined (None: not checked out)")
    stored: int
    skipped: int = Field(description="Fixes the server already had (a batch sent again)")
    latest: datetime | None


NMEA_TYPES = ("text/plain", "application/x-nmea", "text/x-nmea")
REFUSALS_PER_MINUTE = 30  # refused position posts from one address before it is held off (429)


def _inline_schema(model: type[BaseModel]) -> dict:
    """A model's JSON schema with its nested models written in place (a request body documented by hand)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: object) -> object:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


@router.post("/bodycams/devices/{device_id}/positions", response_model=PositionsOut, responses=errors(401, 429),
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": _inline_schema(PositionsIn)},
                 "text/plain": {"schema": {"type": "string", "description": "NMEA sentences, one a line"}}}}})
async def post_positions(device_id: Id, request: Request, authorization: str | None = Header(None),
                         inst: Installation = Depends(installation)) -> dict:
    """A patrol car's position while it streams, posted by its dash camera or in-car modem with **the device's push
    key** (``Authorization: Bearer <key>``, the key of its push URL): JSON ``{"fixes": [{"at", "lat", "lon",
    "speed_kmh"}], "nmea": "..."}`` or NMEA text (``text/plain``). The fixes join the live track of the device's
    current shift and move the car on the map. Without a key: 401; an unknown device or a wrong key: 404 (alike);
    too many posts: 429. Nothing the car sends is written to the log."""
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    from kuzet.api.deps import client_ip
    from kuzet.services.bodycams import live
    from kuzet.store.db import utcnow

    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "give the device's push key: Authorization: Bearer <key>",
                       headers={"WWW-Authenticate": "Bearer"})
    settings = inst.settings.bodycams
    rate = inst.running.position_rate
    address = client_ip(request)
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type in NMEA_TYPES:
            body = PositionsIn(nmea=raw.decode("ascii"))
        else:
            body = PositionsIn.model_validate_json(raw or b"{}")
    except UnicodeDecodeError:
        raise ApiError(422, "NMEA text must be ASCII") from None
    except ValidationError as exc:  # answered like any request body that does not fit its model
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None

    guessing = rate.wait_for(("refused", address), REFUSALS_PER_MINUTE, count=False)

    def store() -> dict | None:
        with inst.db.session() as session:
            # the right key always passes; an address guessing keys is held off without filling the audit log
            device = live.device_by_key(session, device_id, key.strip(), address, audit_refusal=not guessing)
            if device is None:
                return None
            wait = rate.wait_for(("device", device.id), settings.position_posts_per_minute)
            if wait:
                raise ApiError(429, "too many position posts for this device; send fixes in batches", headers={
                    "Retry-After": str(int(wait) + 1)})
            try:
                points = live.fixes_of([f.model_dump() for f in body.fixes], body.nmea, utcnow(),
                                       settings.max_fixes_per_post)
            except live.PositionError as exc:
                raise ApiError(422, str(exc)) from None
            return live.record_fixes(session, device, points)

    out = await asyncio.to_thread(store)
    if out is None and guessing:
        raise ApiError(429, "too many refused posts from this address; wait", headers={
            "Retry-After": str(int(guessing) + 1)})
    if out is None:
        rate.wait_for(("refused", address), REFUSALS_PER_MINUTE)
        raise not_found("no such streaming device, or not its key")
    return out


class NearbyCameraOut(BaseModel):
    camera_id: int
    name: str
    distance_m: float
    at: datetime = Field(description="Open the camera's archive at this instant (the recording's start)")
    until: datetime = Field(description="The recording's end: the window to play beside it")
    covered_seconds: float = Field(description="Seconds of that window the camera's archive holds")
    near: str = Field(description="What the distance is measured from: `track` (GPS) or `incident` (its place)")


class CameraBodycamOut(BaseModel):
    id: int = Field(description="The body-worn or dash camera recording")
    serial: str
    device_kind: str = Field(description="`body` or `dash`")
    officer_id: int | None
    title: str
    started_at: datetime = Field(description="Server time: the device's clock corrected by its shift's offset")
    ended_at: datetime
    distance_m: float = Field(description="Its nearest GPS fix to the camera (in the window when it has one there)")
    closest_at: datetime | None = Field(description="When it was nearest (null: a single fix, no track)")


@router.get("/cameras/{camera_id}/bodycam-recordings", response_model=list[CameraBodycamOut])
def camera_bodycam_recordings(camera_id: Id, start: datetime = Query(...), end: datetime = Query(...),
                              radius_m: float = Query(300, gt=0, le=5000),
                              who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[dict]:
    """Body-worn and dash camera recordings the caller sees (as ``/bodycams/recordings``), made within ``radius_m``
    of this fixed camera during [start, end): a lane of the camera's timeline, each opened in step with its archive.
    The camera answers 404 unless the caller may watch its archive. Not audited: no video is shown (playing one is)."""
    from datetime import timedelta

    from kuzet.api.routes.common import camera_for
    from kuzet.domain.access import Right

    for value, name in ((start, "start"), (end, "end")):
        if value.tzinfo is None:
            raise ApiError(422, f"{name} must carry a timezone (e.g. 2025-01-31T10:00:00Z)")
    if end <= start or end - start > timedelta(days=31):
        raise ApiError(422, "end must be after start, and the window at most 31 days")
    with inst.db.session(readonly=True) as session:
        camera = camera_for(session, who.user, camera_id, Right.VIEW_ARCHIVE)
        return recordings.near_camera(session, who.user, camera.lat, camera.lon, start, end, radius_m)


@router.get("/bodycams/recordings/{recording_id}/nearby-cameras", response_model=list[NearbyCameraOut])
def nearby_cameras(recording_id: Id, radius_m: float = Query(300, gt=0, le=5000),
                   covering: bool = Query(True, description="Only cameras whose archive holds some of its time"),
                   who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[dict]:
    """Street cameras the caller may watch back, near where the recording was made (its GPS track, else its
    incident's place) and recorded while it was, to play in step with it (same wall-clock time)."""
    with _service_answers():
        with inst.db.session() as session:
            r = recordings.recording_for(session, who.user, recording_id)
            return recordings.nearby_cameras(session, who.user, r, radius_m, covering)
