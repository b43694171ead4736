"""Watching: live (WebSocket fMP4 for MSE, HLS for other players), archive (HLS VOD, MP4 clip), evidence exports."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel

from kuzet.api.deps import Caller, caller, installation, media_caller, websocket_user
from kuzet.api.errors import ApiError, not_found
from kuzet.api.routes.common import camera_for
from kuzet.domain.access import Right
from kuzet.domain.audit import Action
from kuzet.installation import Installation
from kuzet.services import access, audit
from kuzet.services.audit import Actor
from kuzet.services.recording.archive import plan_window, window_fmp4
from kuzet.services.recording.mp4 import parse_init, parse_moof
from kuzet.services.watching.evidence import ExportError, create_export
from kuzet.services.watching.hls import LiveHlsRegistry, archive_playlist
from kuzet.store.db import utcnow
from kuzet.store.models import Camera
from kuzet.store.models.recording import Recording
from kuzet.store.models.watching import Export

router = APIRouter(tags=["watching"])
MAX_CLIP = timedelta(hours=2)
HLS_TYPE = "application/vnd.apple.mpegurl"


def _hub(inst: Installation):  # noqa: ANN202
    hub = inst.extras.get("hub")
    if hub is None:
        raise ApiError(503, "live video is not available: the recorder is not running")
    return hub


def audit_view(inst: Installation, who: Caller | Actor, user, camera: Camera, action: str, right: Right,  # noqa: ANN001
                details: dict | None = None) -> None:
    actor = who.actor if isinstance(who, Caller) else who
    with inst.db.session() as session:
        basis = access.legal_basis_for(session, user, camera, right)
        audit.append(session, actor, action, object_type="camera", object_id=camera.id, camera_id=camera.id,
                     legal_basis=basis, details=details)


def _window(start: datetime, end: datetime, limit: timedelta) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ApiError(422, "start and end must carry a timezone (e.g. 2025-01-31T10:00:00Z)")
    if end <= start:
        raise ApiError(422, "end must be after start")
    if end - start > limit:
        raise ApiError(422, f"the window may span at most {limit}")


def codec_string(init: bytes) -> str:
    """RFC 6381 codec string for MSE (``avc1.PPCCLL``) from the init segment's avcC."""
    idx = init.find(b"avcC")
    if idx > 0:
        return "avc1." + init[idx + 5:idx + 8].hex()
    if init.find(b"hvcC") > 0:
        return "hvc1.1.6.L93.B0"
    return "avc1.42e01e"


# --- live -------------------------------------------------------------------------------------------------------

@router.websocket("/cameras/{camera_id}/live")
async def live_ws(websocket: WebSocket, camera_id: int, stream: str = "main") -> None:
    """fMP4 over WebSocket for Media Source Extensions: a JSON header, the init segment, then fragments."""
    inst: Installation = websocket.app.state.installation
    user = websocket_user(websocket)
    if user is None:
        await websocket.close(code=4401)
        return
    with inst.db.session() as session:
        try:
            camera = camera_for(session, user, camera_id, Right.VIEW_LIVE)
        except ApiError:
            await websocket.close(code=4404)
            return
    await websocket.accept()
    hub = inst.extras.get("hub")
    recorder = inst.extras.get("recorder")
    if hub is None or recorder is None:
        await websocket.send_text(json.dumps({"type": "error", "code": "unavailable",
                                              "message": "the recorder is not running"}))
        await websocket.close()
        return
    stream = recorder.resolve_stream(camera_id, "sub" if stream == "sub" else "main")
    ip = websocket.client.host if websocket.client else None
    audit_view(inst, Actor(user.id, user.username, ip), user, camera, Action.LIVE_VIEWED, Right.VIEW_LIVE,
                {"stream": stream})
    try:
        async with hub.subscribe(camera_id, stream, maxsize=16) as sub:
            info = parse_init(sub.init)
            await websocket.send_text(json.dumps({
                "type": "init", "codec": info.codec, "mime": f'video/mp4; codecs="{codec_string(sub.init)}"',
                "width": info.width, "height": info.height, "stream": stream}))
            await websocket.send_bytes(sub.init)
            last_clock = 0.0
            async for fragment in sub:
                if fragment.keyframe and time.monotonic() - last_clock > 5:
                    # Media time → wall clock, so a player can show the time and measure its own latency.
                    media = parse_moof(fragment.data).decode_time / info.timescale
                    await websocket.send_text(json.dumps({"type": "clock", "wall": fragment.start.isoformat(),
                                                          "media": media, "duration": fragment.duration}))
                    last_clock = time.monotonic()
                await websocket.send_bytes(fragment.data)
    except TimeoutError:
        await websocket.send_text(json.dumps({"type": "error", "code": "offline", "message": "camera is offline"}))
    except (WebSocketDisconnect, RuntimeError, OSError):  # OSError: uvicorn's ClientDisconnected
        return
    with _suppress():
        await websocket.close()


class _suppress:  # noqa: N801
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> bool:  # noqa: ANN002
        return True


def _registry(inst: Installation) -> LiveHlsRegistry:
    return inst.extras.setdefault("live_hls", LiveHlsRegistry())


def _token_query(request: Request) -> str:
    token = request.query_params.get("token")
    return f"?token={token}" if token else ""


@router.get("/cameras/{camera_id}/live.m3u8", response_class=Response)
async def live_playlist(camera_id: int, request: Request, stream: str = "main", who: Caller = Depends(media_caller),
                        inst: Installation = Depends(installation)) -> Response:
    """Live HLS (fMP4 segments) for third-party players; ``?token=`` works where headers can't be set."""
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id, Right.VIEW_LIVE)
    hub = _hub(inst)
    registry = _registry(inst)
    fresh = (camera_id, stream) not in registry.items
    item = registry.get(hub, camera_id, stream)
    if fresh:
        audit_view(inst, who, who.user, camera, Action.LIVE_VIEWED, Right.VIEW_LIVE, {"via": "hls"})
    if not await item.wait_ready():
        raise ApiError(503, "camera is offline")
    base = f"/api/v1/cameras/{camera_id}"
    return Response(item.playlist(base, _token_query(request)), media_type=HLS_TYPE,
                    headers={"Cache-Control": "no-cache"})


@router.get("/cameras/{camera_id}/live/init.mp4")
async def live_init(camera_id: int, stream: str = "main", who: Caller = Depends(media_caller),
                    inst: Installation = Depends(installation)) -> Response:
    with inst.db.session() as session:
        camera_for(session, who.user, camera_id, Right.VIEW_LIVE)
    item = _registry(inst).items.get((camera_id, stream))
    if item is None or item.init is None:
        raise not_found("no live session: request live.m3u8 first")
    return Response(item.init, media_type="video/mp4")


@router.get("/cameras/{camera_id}/live/{sequence}.m4s")
async def live_segment(camera_id: int, sequence: int, stream: str = "main", who: Caller = Depends(media_caller),
                       inst: Installation = Depends(installation)) -> Response:
    with inst.db.session() as session:
        camera_for(session, who.user, camera_id, Right.VIEW_LIVE)
    item = _registry(inst).items.get((camera_id, stream))
    data = item.segment(sequence) if item else None
    if data is None:
        raise not_found("segment expired")
    return Response(data, media_type="video/iso.segment")


# --- archive ----------------------------------------------------------------------------------------------------

@router.get("/cameras/{camera_id}/archive.m3u8", response_class=Response)
def archive_m3u8(camera_id: int, request: Request, start: datetime = Query(...), end: datetime = Query(...),
                 who: Caller = Depends(media_caller), inst: Installation = Depends(installation)) -> Response:
    """HLS VOD of any window, made of byte ranges of the recorded files (no re-encoding)."""
    _window(start, end, timedelta(hours=24))
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id, Right.VIEW_ARCHIVE)
        body = archive_playlist(session, camera_id, start, end,
                                lambda rid: f"/api/v1/cameras/{camera_id}/recordings/{rid}.mp4", _token_query(request))
    audit_view(inst, who, who.user, camera, Action.ARCHIVE_VIEWED, Right.VIEW_ARCHIVE,
                {"start": start.isoformat(), "end": end.isoformat(), "via": "hls"})
    return Response(body, media_type=HLS_TYPE)


@router.get("/cameras/{camera_id}/recordings/{recording_id}.mp4")
def recording_file(camera_id: int, recording_id: int, who: Caller = Depends(media_caller),
                   inst: Installation = Depends(installation)) -> FileResponse:
    """One recorded file (supports HTTP Range, as HLS byte ranges need)."""
    with inst.db.session() as session:
        camera_for(session, who.user, camera_id, Right.VIEW_ARCHIVE)
        row = session.get(Recording, recording_id)
        if row is None or row.camera_id != camera_id:
            raise not_found("recording not found")
        path = inst.settings.recordings_path / row.path
    if not path.exists():
        raise not_found("recording was deleted")
    return FileResponse(path, media_type="video/mp4")


@router.get("/cameras/{camera_id}/clip.mp4")
def clip(camera_id: int, start: datetime = Query(...), end: datetime = Query(...),
         who: Caller = Depends(media_caller), inst: Installation = Depends(installation)) -> StreamingResponse:
    """An MP4 (fragmented) of [start, end) cut from the archive at the keyframe before ``start``; no re-encoding.

    The ``X-Kuzet-Start`` header gives the wall-clock time of its first frame, so a player can seek to ``start``.
    """
    _window(start, end, MAX_CLIP)
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id, Right.VIEW_ARCHIVE)
        pieces = plan_window(session, inst.settings.recordings_path, camera_id, start, end)
    if not pieces:
        raise not_found("nothing was recorded in this window")
    first_start = pieces[0].wall_start
    audit_view(inst, who, who.user, camera, Action.CLIP_DOWNLOADED, Right.VIEW_ARCHIVE,
                {"start": start.isoformat(), "end": end.isoformat()})
    name = f"camera-{camera_id}-{start:%Y%m%dT%H%M%SZ}.mp4"
    return StreamingResponse(window_fmp4(pieces, start, end), media_type="video/mp4", headers={
        "Content-Disposition": f'inline; filename="{name}"', "X-Kuzet-Start": first_start.isoformat()})


# --- evidence export --------------------------------------------------------------------------------------------

class ExportIn(BaseModel):
    cameras: list[int]
    start: datetime
    end: datetime
    reason: str


def _export_out(export: Export) -> dict:
    return {"id": export.id, "state": export.state, "cameras": export.cameras, "start": export.start_at,
            "end": export.end_at, "reason": export.reason, "created_at": export.created_at,
            "finished_at": export.finished_at, "error": export.error, "sha256": export.sha256,
            "bytes": export.bytes,
            "bundle": f"/api/v1/exports/{export.id}/bundle" if export.state == "done" else None}


def build_export(inst: Installation, export_id: str) -> None:
    """Build the bundle (runs in a worker thread); the export's state says how it went."""
    from kuzet.services.watching.evidence import build_bundle

    with inst.db.session() as session:
        export = session.get(Export, export_id)
        export.state = "running"
    try:
        with inst.db.session() as session:
            export = session.get(Export, export_id)
            path = build_bundle(session, export, inst.settings.data_dir, inst.settings.recordings_path, inst.keys)
        import hashlib

        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        with inst.db.session() as session:
            export = session.get(Export, export_id)
            export.state, export.finished_at = "done", utcnow()
            export.path = str(path.relative_to(inst.settings.data_dir))
            export.sha256, export.bytes = digest, path.stat().st_size
    except Exception as exc:  # a failed export is reported, never crashes the server
        with inst.db.session() as session:
            export = session.get(Export, export_id)
            export.state, export.error = "failed", str(exc)[:500]


@router.post("/exports", status_code=201)
async def post_export(body: ExportIn, who: Caller = Depends(caller),
                      inst: Installation = Depends(installation)) -> dict:
    """Sealed multi-camera evidence export of one window; the window goes on evidence hold at once."""
    with inst.db.session() as session:
        for camera_id in body.cameras:
            camera_for(session, who.user, camera_id, Right.EXPORT)
        try:
            export = create_export(session, who.actor, who.user, body.cameras, body.start, body.end, body.reason)
        except ExportError as exc:
            raise ApiError(422, str(exc)) from None
        export_id = export.id
    asyncio.get_running_loop().run_in_executor(None, build_export, inst, export_id)
    return {"id": export_id, "state": "pending"}


def _export_for(inst: Installation, who: Caller, export_id: str) -> Export:
    with inst.db.session() as session:
        export = session.get(Export, export_id)
        if export is None:
            raise not_found("export not found")
        if export.created_by != who.user.id and not access.may_read_audit(who.user):
            for camera_id in export.cameras:  # whoever may export every camera in it may see it
                camera_for(session, who.user, camera_id, Right.EXPORT)
        return export


@router.get("/exports/{export_id}")
def get_export(export_id: str, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    return _export_out(_export_for(inst, who, export_id))


@router.get("/exports/{export_id}/bundle")
def export_bundle(export_id: str, who: Caller = Depends(caller),
                  inst: Installation = Depends(installation)) -> FileResponse:
    export = _export_for(inst, who, export_id)
    if export.state != "done" or not export.path:
        raise ApiError(409, f"the export is {export.state}", "not_ready")
    with inst.db.session() as session:
        for camera_id in export.cameras:
            audit.append(session, who.actor, Action.EXPORT_DOWNLOADED, object_type="export", object_id=export.id,
                         camera_id=camera_id, legal_basis=export.reason)
    return FileResponse(inst.settings.data_dir / export.path, media_type="application/zip",
                        filename=f"kuzet-evidence-{export.id}.zip")


# --- video wall layouts and the map -----------------------------------------------------------------------------

class LayoutIn(BaseModel):
    name: str
    grid: int
    cameras: list[int | None]


@router.get("/layouts")
def list_layouts(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[dict]:
    from sqlalchemy import select

    from kuzet.store.models.watching import WallLayout

    with inst.db.session() as session:
        rows = session.scalars(select(WallLayout).where(WallLayout.user_id == who.user.id).order_by(WallLayout.name))
        return [{"id": r.id, "name": r.name, "grid": r.grid, "cameras": r.cameras} for r in rows]


@router.post("/layouts", status_code=201)
def save_layout(body: LayoutIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Save (or replace, by name) a video wall layout of 1, 4, 9 or 16 tiles."""
    from sqlalchemy import select

    from kuzet.store.models.watching import WallLayout

    if body.grid not in (1, 4, 9, 16) or len(body.cameras) > body.grid:
        raise ApiError(422, "grid must be 1, 4, 9 or 16 with at most that many cameras")
    name = body.name.strip()[:100]
    if not name:
        raise ApiError(422, "a layout needs a name")
    with inst.db.session() as session:
        for camera_id in body.cameras:
            if camera_id is not None:
                camera_for(session, who.user, camera_id, Right.VIEW_LIVE)
        row = session.scalar(select(WallLayout).where(WallLayout.user_id == who.user.id, WallLayout.name == name))
        if row is None:
            row = WallLayout(user_id=who.user.id, name=name)
            session.add(row)
        row.grid, row.cameras = body.grid, list(body.cameras)
        session.flush()
        return {"id": row.id, "name": row.name, "grid": row.grid, "cameras": row.cameras}


@router.delete("/layouts/{layout_id}", status_code=204)
def delete_layout(layout_id: int, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> None:
    from kuzet.store.models.watching import WallLayout

    with inst.db.session() as session:
        row = session.get(WallLayout, layout_id)
        if row is None or row.user_id != who.user.id:
            raise not_found("layout not found")
        session.delete(row)


def view_sector(lat: float, lon: float, bearing: float | None, fov: float | None, radius: float) -> dict:
    """GeoJSON polygon of what a camera sees: a circle sector (a full circle without bearing/field of view)."""
    import math

    points = [(lon, lat)] if bearing is not None and fov is not None and fov < 360 else []
    start, sweep = (bearing - fov / 2, fov) if points else (0.0, 360.0)
    steps = max(8, int(sweep / 10))
    for i in range(steps + 1):
        a = math.radians(start + sweep * i / steps)
        dlat = radius * math.cos(a) / 111_320
        dlon = radius * math.sin(a) / (111_320 * math.cos(math.radians(lat)))
        points.append((lon + dlon, lat + dlat))
    points.append(points[0])
    return {"type": "Polygon", "coordinates": [[list(p) for p in points]]}


@router.get("/map")
def map_layers(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """GeoJSON of the caller's cameras (with state and field of view) and of streets and places around them, so the
    map works with no tile server (police networks are closed)."""
    from sqlalchemy import select

    from kuzet.store.models import Place

    features = []
    recorder = inst.extras.get("recorder")
    with inst.db.session() as session:
        cams = session.scalars(access.visible_cameras(who.user)).all()
        places = session.scalars(access.visible_places(session, who.user)).all() if cams else []
        names = dict(session.execute(select(Place.id, Place.name)).all())
    for p in places:
        if p.kind == "street" and p.geometry:
            features.append({"type": "Feature", "geometry": p.geometry,
                             "properties": {"layer": "street", "id": p.id, "name": p.name}})
        elif p.lat is not None and p.kind in ("district", "building", "school", "yard", "public_place", "road_point"):
            features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [p.lon, p.lat]},
                             "properties": {"layer": "place", "id": p.id, "name": p.name, "kind": p.kind}})
    for c in cams:
        if c.lat is None:
            continue
        health = recorder.health(c.id) if recorder else None
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [c.lon, c.lat]},
                         "properties": {"layer": "camera", "id": c.id, "name": c.name, "kind": c.kind,
                                        "place": names.get(c.place_id),
                                        "state": (health or {}).get("state", "offline")}})
        features.append({"type": "Feature",
                         "geometry": view_sector(c.lat, c.lon, c.bearing, c.field_of_view, c.view_radius_m or 30),
                         "properties": {"layer": "view", "id": c.id}})
    return {"type": "FeatureCollection", "features": features, "tiles": None}
