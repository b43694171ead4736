"""Onboarding at scale and storage tiers: the installation list, ONVIF discovery, push keys and the push servers'
callback, the field technician's list of offline cameras, a camera's storage tier (docs/cloud.md)."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, Field

from kuzet.api.deps import Caller, caller, installation, running
from kuzet.api.errors import ApiError, not_found, rejected_rows
from kuzet.api.limits import spool, suffix_of
from kuzet.api.routes.common import ERRORS, Id, camera_for, errors
from kuzet.api.schemas import CameraKind
from kuzet.domain.access import Right
from kuzet.installation import Installation, Running
from kuzet.services import access
from kuzet.services.cameras import CameraError, allowed_schemes
from kuzet.store.models import Camera, Place

router = APIRouter(tags=["onboarding"], responses=ERRORS)
ingest_router = APIRouter(tags=["onboarding"])


def _onboarder(who: Caller) -> None:
    """Platform admins and the telecom's operator admins onboard buildings and cameras."""
    if not access.may_administer(who.user, "place"):
        raise ApiError(403, "only platform admins and operator admins onboard installations")


# --- the installation list ---------------------------------------------------------------------------------------

class ImportedCameraOut(BaseModel):
    line: int
    camera_id: Id
    name: str
    place_id: Id


class InstallationImportOut(BaseModel):
    imported: int
    places_created: int
    places_reused: int
    cameras: list[ImportedCameraOut]


@router.post("/onboarding/installations", status_code=201, response_model=InstallationImportOut,
             responses=errors(413))
async def import_installation_list(request: Request, file: UploadFile = File(..., description="CSV (UTF-8) or XLSX"),
                                   who: Caller = Depends(caller),
                                   inst: Installation = Depends(installation)):  # noqa: ANN201
    """The telecom's installation list: buildings, entrances, yards and cameras with credentials, created in one go.
    Every row is validated first; all are created or none, and a refusal (422, ``import_rejected``) names each bad
    row. Buildings go only under places the caller manages."""
    import asyncio

    from kuzet.services.onboarding.installations import InstallationListError, import_installations

    _onboarder(who)
    with await spool(file, inst.settings.http.max_upload_bytes, suffix_of(file.filename, ".csv")) as raw:
        def run() -> dict:
            with inst.db.session() as session:
                user = session.merge(who.user)
                return import_installations(session, who.actor, inst.keys, raw.name, user=user,
                                            url_schemes=allowed_schemes(inst.settings)).as_dict()
        try:
            return await asyncio.to_thread(run)
        except InstallationListError as exc:
            return rejected_rows(request, str(exc), [(e.line, e.message) for e in exc.errors])


# --- ONVIF -------------------------------------------------------------------------------------------------------

class DiscoverIn(BaseModel):
    addresses: list[str] = Field(default_factory=list, max_length=256,
                                 description="Probe these hosts directly (unicast) besides the segment")
    port: int = Field(3702, ge=1, le=65535, description="WS-Discovery port of the unicast probes")
    multicast: bool = Field(True, description="Probe the WS-Discovery multicast group of the server's segment")
    timeout: float = Field(3.0, ge=0.1, le=30)


class DiscoveredOut(BaseModel):
    address: str
    epr: str
    xaddrs: list[str]
    scopes: list[str]


class DiscoveryOut(BaseModel):
    devices: list[DiscoveredOut]


class OnvifIn(BaseModel):
    xaddr: str = Field(..., min_length=8, max_length=500, description="The device service URL from discovery")
    username: str | None = Field(None, max_length=100)
    password: str | None = Field(None, max_length=200)


class ProfileOut(BaseModel):
    token: str
    name: str
    encoding: str | None
    width: int | None
    height: int | None
    stream_uri: str | None
    snapshot_uri: str | None


class DeviceOut(BaseModel):
    xaddr: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    profiles: list[ProfileOut]


class OnvifCameraIn(OnvifIn):
    place_id: Id
    name: str | None = Field(None, min_length=1, max_length=200)
    kind: CameraKind = "entrance"


class OnvifCameraOut(BaseModel):
    camera_id: Id
    name: str
    device: DeviceOut


def _redacted(device) -> dict:  # noqa: ANN001 - a services.onboarding.onvif.Device
    """The device as the caller may see it: stream URIs without credentials."""
    from kuzet.services.cameras import redact

    out = device.as_dict()
    for p in out["profiles"]:
        p["stream_uri"] = redact(p["stream_uri"]) if p["stream_uri"] else None
        p["snapshot_uri"] = redact(p["snapshot_uri"]) if p["snapshot_uri"] else None
    return out


@router.post("/onboarding/onvif/discover", response_model=DiscoveryOut)
def onvif_discover(body: DiscoverIn, who: Caller = Depends(caller),
                   inst: Installation = Depends(installation)) -> dict:
    """WS-Discovery: ONVIF cameras answering on the server's network segment (and at the given addresses, which
    must lie in ``onboarding.onvif_networks``)."""
    from kuzet.services.onboarding.onvif import OnvifError, discover

    _onboarder(who)
    config = inst.settings.onboarding
    if body.multicast and not config.onvif_multicast:
        raise ApiError(422, "multicast discovery is off here (onboarding.onvif_multicast); give addresses")
    try:
        found = discover(timeout=body.timeout, addresses=body.addresses, port=body.port, multicast=body.multicast,
                         networks=config.onvif_networks)
    except OnvifError as exc:
        raise ApiError(422, str(exc)) from None
    return {"devices": [d.as_dict() for d in found]}


@router.post("/onboarding/onvif/probe", response_model=DeviceOut)
def onvif_probe(body: OnvifIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Ask one ONVIF camera for its device information, media profiles, stream URIs and snapshot URIs."""
    from kuzet.services.onboarding.onvif import OnvifError, probe_device

    _onboarder(who)
    try:
        return _redacted(probe_device(body.xaddr, body.username, body.password,
                                      networks=inst.settings.onboarding.onvif_networks))
    except OnvifError as exc:
        raise ApiError(422, str(exc)) from None


@router.post("/onboarding/onvif/cameras", response_model=OnvifCameraOut, status_code=201)
def onvif_add(body: OnvifCameraIn, who: Caller = Depends(caller),
              inst: Installation = Depends(installation)) -> dict:
    """Add an ONVIF camera: its largest profile becomes the main stream and its smallest the sub stream, with the
    ONVIF credentials (encrypted); nobody types an RTSP URL."""
    from kuzet.services.onboarding.onvif import OnvifError, add_onvif_camera, probe_device

    _onboarder(who)
    with inst.db.session() as session:
        place = session.get(Place, body.place_id)
        if place is None or Right.MANAGE not in access.place_rights(session, who.user, place):
            raise not_found("place not found")
    try:
        device = probe_device(body.xaddr, body.username, body.password,
                              networks=inst.settings.onboarding.onvif_networks)
    except OnvifError as exc:
        raise ApiError(422, str(exc)) from None
    with inst.db.session() as session:
        try:
            camera = add_onvif_camera(session, who.actor, inst.keys, device, place_id=body.place_id, name=body.name,
                                      kind=body.kind, username=body.username, password=body.password,
                                      url_schemes=allowed_schemes(inst.settings))
        except (CameraError, OnvifError) as exc:
            raise ApiError(422, str(exc)) from None
        return {"camera_id": camera.id, "name": camera.name, "device": _redacted(device)}


# --- pushing cameras ---------------------------------------------------------------------------------------------

class PushIn(BaseModel):
    protocol: Literal["rtmp", "rtsp"] = "rtmp"
    public_host: str | None = Field(None, min_length=1, max_length=253,
                                    description="Host name cameras reach (default: [push] public_host)")


class PushOut(BaseModel):
    camera_id: Id
    pushes: bool = True
    protocol: Literal["rtmp", "rtsp"] | None
    push_url: str | None = Field(None, description="With the key when it was just issued; else KEY stands for it")
    key_issued_at: datetime | None
    last_publish_at: datetime | None = None
    last_refused_at: datetime | None = None


@router.get("/cameras/{camera_id}/push", response_model=PushOut)
def push_status(camera_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Whether the camera pushes its stream, over which protocol, and when it last published or was refused."""
    from kuzet.services.onboarding.push import status

    with inst.db.session() as session:
        camera = _managed(session, who, camera_id, "see how this camera pushes")
        return status(session, inst.settings, camera)


@router.post("/cameras/{camera_id}/push", response_model=PushOut, status_code=201)
def push_issue(camera_id: Id, body: PushIn, who: Caller = Depends(caller),
               inst: Installation = Depends(installation)) -> dict:
    """Make the camera push (it sits behind NAT): a new secret key, shown only in this answer's ``push_url``;
    an earlier key stops working. The camera's stream URL becomes the relay's."""
    from kuzet.services.onboarding.push import PushError, issue_key

    with inst.db.session() as session:
        camera = _managed(session, who, camera_id, "make this camera push")
        try:
            return issue_key(session, who.actor, inst.settings, camera, body.protocol, body.public_host)
        except PushError as exc:
            raise ApiError(422, str(exc)) from None


class PublishOut(BaseModel):
    camera_id: Id


@ingest_router.post("/ingest/publish", response_model=PublishOut, responses=errors(403, 404, 422))
def ingest_publish(request: Request, secret: str = Query(..., max_length=100),
                   name: str = Form(..., max_length=200), key: str | None = Form(None, max_length=200),
                   addr: str | None = Form(None, max_length=64), protocol: Literal["rtmp", "rtsp"] = Form("rtmp"),
                   relay: str | None = Form(None, max_length=100),
                   inst: Installation = Depends(installation), parts: Running = Depends(running)) -> dict:
    """Called by the push servers (nginx's ``on_publish``, the RTSP relay) before a camera's stream is accepted:
    2xx lets it in. A wrong key answers 403 and is audited. Only the push servers of this installation know
    ``secret``; anyone else gets 404."""
    from kuzet.services.onboarding.push import check_publish

    ingest = parts.push
    if ingest is None or not hmac.compare_digest(secret, ingest.secret):
        raise not_found("not found")
    relayed = relay is not None and hmac.compare_digest(relay, ingest.secret)
    with inst.db.session() as session:
        camera_id = check_publish(session, name, key, protocol="rtsp" if relayed else protocol,
                                  address=addr or (request.client.host if request.client else None),
                                  audit_success=not relayed)
    if camera_id is None:
        raise ApiError(403, "refused: wrong or missing key for this camera")
    if parts.recorder is not None:
        parts.recorder.wake(camera_id)
    return {"camera_id": camera_id}


# --- the field technician's list ---------------------------------------------------------------------------------

class OfflineOut(BaseModel):
    camera_id: Id
    name: str
    kind: str
    place_id: Id
    address: str | None
    building: str | None
    entrance: str | None
    entrance_kind: Literal["entrance", "yard"] | None
    district: str | None
    since: datetime
    reason: str
    message: str | None
    last_recorded_at: datetime | None
    lat: float | None
    lon: float | None


class OfflinePage(BaseModel):
    items: list[OfflineOut]
    total: int


@router.get("/field/offline", response_model=OfflinePage)
def field_offline(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Cameras offline now that the caller manages, longest first, with address, entrance and since when."""
    from kuzet.services.onboarding.field import offline_cameras

    with inst.db.session(readonly=True) as session:
        # the caller's cameras as a subquery: not every camera id of a telecom's city loaded into the process
        ids = None if access.is_platform_admin(who.user) else \
            access.visible_cameras(who.user, Right.MANAGE, session=session).with_only_columns(Camera.id)
        items = offline_cameras(session, ids)
    return {"items": items, "total": len(items)}


# --- storage tiers -----------------------------------------------------------------------------------------------

class TierPolicyOut(BaseModel):
    full_days: int
    motion_days: int
    total_days: int
    source: str = Field(..., description="camera (its own setting) or what filled it, e.g. a plan")


class TierOut(BaseModel):
    camera_id: Id
    retention_days: int
    policy: TierPolicyOut | None
    thinned: bool = Field(..., description="Whether thinning runs (the camera's motion analysis is on)")


class TierIn(BaseModel):
    full_days: int = Field(..., ge=1, le=3650, description="Keep everything this many days")
    motion_days: int = Field(..., ge=0, le=3650, description="Then only minutes with motion or events this many more")


@router.get("/cameras/{camera_id}/storage-tier", response_model=TierOut)
def get_tier(camera_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """How long the camera's archive is kept in full, and how long its motion minutes after that."""
    from kuzet.services.recording.tiers import tier_out

    with inst.db.session() as session:
        return tier_out(session, inst.settings, camera_for(session, who.user, camera_id))


@router.put("/cameras/{camera_id}/storage-tier", response_model=TierOut)
def put_tier(camera_id: Id, body: TierIn, who: Caller = Depends(caller),
             inst: Installation = Depends(installation)) -> dict:
    """Give the camera its own tier (wins over a plan's)."""
    from kuzet.services.recording import tiers

    with inst.db.session() as session:
        camera = _managed(session, who, camera_id, "change this camera's storage tier")
        try:
            tiers.set_camera_tier(session, who.actor, camera, body.full_days, body.motion_days)
        except tiers.TierError as exc:
            raise ApiError(422, str(exc)) from None
        return tiers.tier_out(session, inst.settings, camera)


@router.delete("/cameras/{camera_id}/storage-tier", response_model=TierOut)
def delete_tier(camera_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Remove the camera's own tier: a plan's applies again, or else its retention days alone."""
    from kuzet.services.recording import tiers

    with inst.db.session() as session:
        camera = _managed(session, who, camera_id, "change this camera's storage tier")
        tiers.clear_camera_tier(session, who.actor, camera)
        return tiers.tier_out(session, inst.settings, camera)


def _managed(session, who: Caller, camera_id: int, doing: str) -> Camera:  # noqa: ANN001
    camera = camera_for(session, who.user, camera_id)
    if Right.MANAGE not in access.camera_rights(session, who.user, camera):
        raise ApiError(403, f"you may view this camera but not {doing}")
    return camera
