"""Watching: live (WebSocket fMP4 for MSE, HLS for other players), archive (HLS VOD, MP4 clip), wall layouts, map.

Evidence exports have their own module (routes/exports.py)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from kuzet.api.deps import (
    Caller,
    caller,
    client_ip,
    installation,
    media_caller,
    running,
    websocket_token,
    websocket_user,
)
from kuzet.api.errors import ApiError, not_found
from kuzet.api.live_access import AccessWatch, guarded
from kuzet.api.routes.common import ERRORS, MAX_ID, Id, archive_start, camera_for, errors, media
from kuzet.domain.access import Right
from kuzet.domain.audit import Action
from kuzet.installation import Installation, Running
from kuzet.services import access, audit
from kuzet.services.audit import Actor
from kuzet.services.cluster import node_auth
from kuzet.services.recording.archive import plan_window, window_fmp4
from kuzet.services.recording.mp4 import parse_init, parse_moof
from kuzet.services.recording.storage import RangedBody, RecordingUnavailable, archive_store, serve_recording
from kuzet.services.watching.hls import LiveHlsRegistry, archive_playlist
from kuzet.services.watching.streams import Purpose, resolve_stream
from kuzet.services.watching.viewing import EndedViewing, Viewing, record_ended
from kuzet.store.db import utcnow
from kuzet.store.models import Camera
from kuzet.store.models.recording import Recording

router = APIRouter(tags=["watching"], responses=ERRORS)
MAX_CLIP = timedelta(hours=2)
HLS_TYPE = "application/vnd.apple.mpegurl"
Stream = Literal["main", "sub"]


def _hub(inst: Installation):  # noqa: ANN202
    hub = inst.running.hub
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
async def live_ws(websocket: WebSocket, camera_id: Id, stream: Stream = "main") -> None:
    """fMP4 over WebSocket for Media Source Extensions: a JSON header, the init segment, then fragments."""
    inst: Installation = websocket.app.state.installation
    if node_auth.HEADER in websocket.headers:  # another node of the cluster, for its own work (not a viewer)
        await _node_live(websocket, inst, camera_id, stream)
        return

    def authorise():  # noqa: ANN202 - in a worker thread: the database never runs on the event loop
        user = websocket_user(websocket)
        if user is None:
            return None, None
        with inst.db.session() as session:
            try:
                return user, camera_for(session, user, camera_id, Right.VIEW_LIVE)
            except ApiError:
                return user, None

    user, camera = await asyncio.to_thread(authorise)
    if user is None:
        await websocket.close(code=4401)
        return
    if camera is None:
        await websocket.close(code=4404)
        return
    await websocket.accept()
    hub = inst.running.hub
    recorder = inst.running.recorder
    if hub is None or recorder is None:
        await websocket.send_text(json.dumps({"type": "error", "code": "unavailable",
                                              "message": "the recorder is not running"}))
        await websocket.close()
        return
    stream = resolve_stream(camera, stream, Purpose.VIEW)
    ip = client_ip(websocket)
    actor = Actor(user.id, user.username, ip)
    await asyncio.to_thread(audit_view, inst, actor, user, camera, Action.LIVE_VIEWED, Right.VIEW_LIVE,
                            {"stream": stream})
    started_at = utcnow()
    watch = AccessWatch(inst, websocket_token(websocket) or "",
                        lambda session, who: _still_live(session, who, camera_id))

    async def send_live() -> None:
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
            await websocket.send_text(json.dumps({"type": "error", "code": "offline",
                                                  "message": "camera is offline"}))

    try:
        if not await guarded(websocket, watch, send_live()):
            return
    except (WebSocketDisconnect, RuntimeError, OSError):  # OSError: uvicorn's ClientDisconnected
        return
    finally:  # the viewing's end, for usage and for the record (services/watching/viewing.py)
        ended = EndedViewing(Viewing(actor, camera_id, {"via": "websocket", "stream": stream}), started_at, utcnow())
        with anyio.CancelScope(shield=True):  # written even when the connection's task is being cancelled
            await anyio.to_thread.run_sync(_record_ended, inst, ended)
    with _suppress():
        await websocket.close()


async def _node_live(websocket: WebSocket, inst: Installation, camera_id: int, stream: str) -> None:
    """The live stream for another node (an analysing worker), authorised by the shared ``[cluster] secret``
    (services/cluster/node_auth.py): refused (4401) without a valid signature; not audited, as no person views it.
    Each fragment comes after a JSON ``{"type": "fragment", ...}`` message with its wall-clock start and keyframe
    flag, which analysis needs and a player does not."""
    node = node_auth.verify_live(inst.settings.cluster.secret, websocket.headers.get(node_auth.HEADER), camera_id,
                                 stream)
    if node is None:
        await websocket.close(code=4401)
        return
    await websocket.accept()
    hub, recorder, keeper = inst.running.hub, inst.running.recorder, inst.running.lease_keeper
    if hub is None or recorder is None or (keeper is not None and not keeper.holds(camera_id)):
        await websocket.send_text(json.dumps({"type": "error", "code": "not_holder",
                                              "message": "this node does not record the camera"}))
        await websocket.close()
        return
    stream = resolve_stream(recorder.has_sub_stream(camera_id), stream, Purpose.ANALYSIS)
    try:
        async with hub.subscribe(camera_id, stream, maxsize=64) as sub:
            await websocket.send_text(json.dumps({"type": "init", "stream": stream, "node": True}))
            await websocket.send_bytes(sub.init)
            sent_init = sub.init
            async for fragment in sub:
                if sub.init is not None and sub.init != sent_init:  # the upstream restarted
                    await websocket.send_text(json.dumps({"type": "init", "stream": stream, "node": True}))
                    await websocket.send_bytes(sub.init)
                    sent_init = sub.init
                await websocket.send_text(json.dumps({
                    "type": "fragment", "start": fragment.start.isoformat(), "keyframe": fragment.keyframe,
                    "duration": fragment.duration, "samples": fragment.samples}))
                await websocket.send_bytes(fragment.data)
                if inst.running.lease_keeper is not None and not inst.running.lease_keeper.holds(camera_id):
                    break  # the camera moved: the reader finds its new holder
    except TimeoutError:
        await websocket.send_text(json.dumps({"type": "error", "code": "offline", "message": "camera is offline"}))
    except (WebSocketDisconnect, RuntimeError, OSError):
        return
    with _suppress():
        await websocket.close()


def _record_ended(inst: Installation, ended: EndedViewing) -> None:
    with inst.db.session() as session:
        record_ended(session, ended)


def _still_live(session, user, camera_id: int) -> bool:  # noqa: ANN001
    camera = session.get(Camera, camera_id)
    return camera is not None and Right.VIEW_LIVE in access.camera_rights(session, user, camera)


class _suppress:  # noqa: N801
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> bool:  # noqa: ANN002
        return True


def _audit_session(inst: Installation, who: Caller, camera: Camera, kind: str, what: object,
                   details: dict | None = None) -> None:
    """One audit record per viewing session (a token watching a camera's live stream, or one recorded file), not per
    request and not per process (services/watching/viewing.py)."""
    live = kind == "live"
    viewing = Viewing(who.actor, camera.id, {"via": "hls", "stream": what}) if live else None
    if inst.running.viewing_sessions.starts(who.token, camera.id, kind, what, viewing=viewing):
        action, right = ((Action.LIVE_VIEWED, Right.VIEW_LIVE) if kind == "live"
                         else (Action.ARCHIVE_VIEWED, Right.VIEW_ARCHIVE))
        audit_view(inst, who, who.user, camera, action, right,
                   {"via": "hls", "stream": what, **(details or {})} if kind == "live"
                   else {"via": "file", **(details or {})})


def _live_camera(inst: Installation, who: Caller, camera_id: int, requested: str) -> str:
    """The stream the caller gets if they may watch the camera live (404 otherwise), its viewing session audited.
    Synchronous: called from a worker thread, never on the event loop."""
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id, Right.VIEW_LIVE)
    stream = resolve_stream(camera, requested, Purpose.VIEW)
    _audit_session(inst, who, camera, "live", stream)
    return stream


def _registry(inst: Installation) -> LiveHlsRegistry:
    return inst.running.live_hls


def _token_query(request: Request, stream: str = "main") -> str:
    """The query a playlist's URLs carry: the caller's ``?token=`` if it came that way, and the stream if not main
    (so the segments of a sub-stream playlist are the sub stream's)."""
    token = request.query_params.get("token")
    params = ([f"token={token}"] if token else []) + (["stream=sub"] if stream == "sub" else [])
    return "?" + "&".join(params) if params else ""


@router.get("/cameras/{camera_id}/live.m3u8", response_class=Response, responses=errors(503) | media(HLS_TYPE))
async def live_playlist(camera_id: Id, request: Request, stream: Stream = "main", who: Caller = Depends(media_caller),
                        inst: Installation = Depends(installation)) -> Response:
    """Live HLS (fMP4 segments) for third-party players; ``?token=`` works where headers can't be set."""
    stream = await asyncio.to_thread(_live_camera, inst, who, camera_id, stream)
    hub = _hub(inst)
    item = _registry(inst).get(hub, camera_id, stream)
    if not await item.wait_ready():
        raise ApiError(503, "camera is offline")
    base = f"/api/v1/cameras/{camera_id}"
    return Response(item.playlist(base, _token_query(request, stream)), media_type=HLS_TYPE,
                    headers={"Cache-Control": "no-cache"})


@router.get("/cameras/{camera_id}/live/init.mp4", response_class=Response, responses=media("video/mp4"))
def live_init(camera_id: Id, stream: Stream = "main", who: Caller = Depends(media_caller),
              inst: Installation = Depends(installation)) -> Response:
    stream = _live_camera(inst, who, camera_id, stream)
    item = _registry(inst).items.get((camera_id, stream))
    if item is None or item.init is None:
        raise not_found("no live session: request live.m3u8 first")
    return Response(item.init, media_type="video/mp4")


@router.get("/cameras/{camera_id}/live/{sequence}.m4s", response_class=Response,
            responses=media("video/iso.segment"))
def live_segment(camera_id: Id, sequence: Annotated[int, Path(ge=0, le=MAX_ID)], stream: Stream = "main",
                 who: Caller = Depends(media_caller), inst: Installation = Depends(installation)) -> Response:
    stream = _live_camera(inst, who, camera_id, stream)
    item = _registry(inst).items.get((camera_id, stream))
    data = item.segment(sequence) if item else None
    if data is None:
        raise not_found("segment expired")
    return Response(data, media_type="video/iso.segment")


# --- archive ----------------------------------------------------------------------------------------------------

@router.get("/cameras/{camera_id}/archive.m3u8", response_class=Response, responses=media(HLS_TYPE))
def archive_m3u8(camera_id: Id, request: Request, start: datetime = Query(...), end: datetime = Query(...),
                 who: Caller = Depends(media_caller), inst: Installation = Depends(installation)) -> Response:
    """HLS VOD of any window, made of byte ranges of the recorded files (no re-encoding)."""
    _window(start, end, timedelta(hours=24))
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id, Right.VIEW_ARCHIVE)
        start = archive_start(session, who.user, camera, start, end)
        body = archive_playlist(session, camera_id, start, end,
                                lambda rid: f"/api/v1/cameras/{camera_id}/recordings/{rid}.mp4", _token_query(request))
    audit_view(inst, who, who.user, camera, Action.ARCHIVE_VIEWED, Right.VIEW_ARCHIVE,
                {"start": start.isoformat(), "end": end.isoformat(), "via": "hls"})
    return Response(body, media_type=HLS_TYPE)


@router.get("/cameras/{camera_id}/recordings/{recording_id}.mp4", response_class=FileResponse,
            responses=media("video/mp4"))
def recording_file(camera_id: Id, recording_id: Id, request: Request, who: Caller = Depends(media_caller),
                   inst: Installation = Depends(installation)) -> Response:
    """One recorded file (supports HTTP Range, as HLS byte ranges need), from the local disk or the object store."""
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id, Right.VIEW_ARCHIVE)
        row = session.get(Recording, recording_id)
        floor = access.archive_floor(session, who.user, camera)
        if row is None or row.camera_id != camera_id or (floor is not None and row.end_at <= floor):
            raise not_found("recording not found")
        source = archive_store(inst.settings).source_for(row)
        window = {"start": row.start_at.isoformat(), "end": row.end_at.isoformat() if row.end_at else None}
    try:
        served = serve_recording(source, request.headers.get("range"))
    except RecordingUnavailable:
        raise not_found("recording was deleted") from None
    _audit_session(inst, who, camera, "recording", recording_id, {**window, "recording_id": recording_id})
    if isinstance(served, RangedBody):
        return StreamingResponse(served.body, status_code=served.status, headers=served.headers,
                                 media_type="video/mp4")
    return FileResponse(served, media_type="video/mp4")  # the local archive: Starlette answers ranges


@router.get("/cameras/{camera_id}/clip.mp4", response_class=StreamingResponse, responses=media("video/mp4"))
def clip(camera_id: Id, start: datetime = Query(...), end: datetime = Query(...),
         who: Caller = Depends(media_caller), inst: Installation = Depends(installation)) -> StreamingResponse:
    """An MP4 (fragmented) of [start, end) cut from the archive at the keyframe before ``start``; no re-encoding.

    The ``X-Kuzet-Start`` header gives the wall-clock time of its first frame, so a player can seek to ``start``.
    """
    _window(start, end, MAX_CLIP)
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id, Right.VIEW_ARCHIVE)
        start = archive_start(session, who.user, camera, start, end)
        pieces = plan_window(session, archive_store(inst.settings), camera_id, start, end)
    if not pieces:
        raise not_found("nothing was recorded in this window")
    first_start = pieces[0].wall_start
    audit_view(inst, who, who.user, camera, Action.CLIP_DOWNLOADED, Right.VIEW_ARCHIVE,
                {"start": start.isoformat(), "end": end.isoformat()})
    name = f"camera-{camera_id}-{start:%Y%m%dT%H%M%SZ}.mp4"
    return StreamingResponse(window_fmp4(pieces, start, end), media_type="video/mp4", headers={
        "Content-Disposition": f'inline; filename="{name}"', "X-Kuzet-Start": first_start.isoformat()})


# --- video wall layouts and the map -----------------------------------------------------------------------------

class LayoutIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    grid: Literal[1, 4, 9, 16]
    cameras: list[Id | None] = Field(max_length=16)


@router.get("/layouts")
def list_layouts(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[dict]:
    from sqlalchemy import select

    from kuzet.store.models.watching import WallLayout

    with inst.db.session(readonly=True) as session:
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
def delete_layout(layout_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> None:
    from kuzet.store.models.watching import WallLayout

    with inst.db.session() as session:
        row = session.get(WallLayout, layout_id)
        if row is None or row.user_id != who.user.id:
            raise not_found("layout not found")
        session.delete(row)


def _places_in(query, box):  # noqa: ANN001, ANN202
    """Places of a map query inside the bounding box (streets are kept: their lines cross boxes)."""
    from sqlalchemy import or_

    from kuzet.store.models import Place

    if box is None:
        return query
    return query.where(or_(Place.kind == "street", Place.lat.is_(None),
                           Place.lat.between(box.south, box.north) & Place.lon.between(box.west, box.east)))


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
def map_layers(bbox: str | None = Query(None, max_length=200, description="west,south,east,north in degrees"),
               zoom: int = Query(12, ge=0, le=22), who: Caller = Depends(caller),
               inst: Installation = Depends(installation), parts: Running = Depends(running)) -> dict:
    """GeoJSON of the caller's cameras (with state and field of view) and of streets and places around them, so the
    map works with no tile server (police networks are closed); ``tiles``: the configured tile server's URL template
    (``[map] tiles``, null without one), its ``attribution`` (plain text) and ``max_zoom``.

    ``bbox`` narrows to what the screen shows; when more cameras fall in it than the screen can show one by one
    (a threshold that follows ``bbox`` and ``zoom``, ``services/watching/map.py: drawn_at_most``), cameras come as
    ``cluster`` features (``count``) on a grid that follows ``zoom``."""
    from kuzet.services.watching.map import BoundingBox, cameras_on_map

    try:
        box = BoundingBox.parse(bbox) if bbox else None
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    features = []
    recorder = parts.recorder
    with inst.db.session(readonly=True) as session:
        cams, clusters = cameras_on_map(session, who.user, box, zoom)
        places = session.scalars(_places_in(access.visible_places(session, who.user), box)).all() \
            if cams else []
    for p in places:
        if p.kind == "street" and p.geometry:
            features.append({"type": "Feature", "geometry": p.geometry,
                             "properties": {"layer": "street", "id": p.id, "name": p.name}})
        elif p.lat is not None and p.kind in ("district", "building", "school", "yard", "public_place", "road_point"):
            features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [p.lon, p.lat]},
                             "properties": {"layer": "place", "id": p.id, "name": p.name, "kind": p.kind}})
    for c, place_name in cams:
        health = recorder.health(c.id) if recorder else None
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [c.lon, c.lat]},
                         "properties": {"layer": "camera", "id": c.id, "name": c.name, "kind": c.kind,
                                        "place": place_name,
                                        "state": (health or {}).get("state", "offline")}})
        features.append({"type": "Feature",
                         "geometry": view_sector(c.lat, c.lon, c.bearing, c.field_of_view, c.view_radius_m or 30),
                         "properties": {"layer": "view", "id": c.id}})
    for cl in clusters:
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [cl.lon, cl.lat]},
                         "properties": {"layer": "cluster", "count": cl.count}})
    tiles = inst.settings.map
    return {"type": "FeatureCollection", "features": features, "tiles": tiles.tiles,
            "attribution": tiles.attribution if tiles.tiles else "", "max_zoom": tiles.max_zoom}
