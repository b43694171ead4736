"""Recording API: camera health, timeline, storage report, evidence holds; Prometheus metrics."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from kuzet.api.deps import Caller, caller, installation, metrics_reader, running
from kuzet.api.errors import ApiError, not_found
from kuzet.api.routes.common import ERRORS, Id, camera_for
from kuzet.domain.access import Right
from kuzet.installation import Installation, Running
from kuzet.services import access
from kuzet.services.recording.archive import timeline
from kuzet.services.recording.storage import archive_store
from kuzet.store.db import utcnow

router = APIRouter(tags=["recording"], responses=ERRORS)
MAX_TIMELINE = timedelta(days=31)


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or utcnow()
    try:
        start = start or end - timedelta(hours=24)
    except OverflowError:
        raise ApiError(422, "end is too early: give start as well") from None
    for value, name in ((start, "start"), (end, "end")):
        if value.tzinfo is None:
            raise ApiError(422, f"{name} must carry a timezone (e.g. 2025-01-31T10:00:00Z)")
    if end <= start:
        raise ApiError(422, "end must be after start")
    if end - start > MAX_TIMELINE:
        raise ApiError(422, "the window may span at most 31 days")
    return start, end


@router.get("/cameras/{camera_id}/health")
def camera_health(camera_id: Id, request: Request, who: Caller = Depends(caller),
                  inst: Installation = Depends(installation), parts: Running = Depends(running)) -> dict:
    """State (recording, connecting, offline, error, disabled), last frame, bitrate, fps, codec, size, uptime."""
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id)
        enabled = camera.enabled
    recorder = parts.recorder
    health = recorder.health(camera_id) if recorder else None
    if health is None:
        health = {"state": "disabled" if not enabled else "offline", "last_frame_at": None, "bitrate_bps": 0,
                  "fps": 0.0, "codec": None, "width": None, "height": None, "uptime_seconds": 0.0,
                  "reason": None if enabled else "disabled",
                  "last_error": None if recorder or not enabled else "recorder not running", "reconnects": 0,
                  "recorded_bytes": 0, "recorded_seconds": 0.0}
    return {"camera_id": camera_id, **health}


@router.get("/cameras/{camera_id}/timeline")
def camera_timeline(camera_id: Id, start: datetime | None = Query(None), end: datetime | None = Query(None),
                    who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Recorded ranges and gaps with their reasons for [start, end), answered from the index, and the motion
    intervals and detections of the window (``events``)."""
    from kuzet.services.operations.events import timeline_events

    start, end = _window(start, end)
    with inst.db.session(readonly=True) as session:
        camera = camera_for(session, who.user, camera_id, Right.VIEW_ARCHIVE)
        # A subscriber's plan reaches back archive_days: nothing older is drawn (archive_from says where it starts).
        floor = access.archive_floor(session, who.user, camera)
        if floor is not None and start < floor:
            start = min(floor, end - timedelta(microseconds=1))
        return timeline(session, camera_id, start, end) | {
            "events": timeline_events(session, camera_id, start, end), "archive_from": floor}


@router.get("/storage")
def storage(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Bytes per camera and archive depth against the required depth (cameras the caller manages)."""
    with inst.db.session() as session:
        ids = None
        if not access.is_platform_admin(who.user):
            ids = [c.id for c in session.scalars(access.visible_cameras(who.user, Right.MANAGE))]
            if not ids:
                raise not_found()
        return archive_store(inst.settings).report(session, ids)


@router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False,
            dependencies=[Depends(metrics_reader)])
def metrics(inst: Installation = Depends(installation)) -> PlainTextResponse:
    """Prometheus metrics of the recorder (per camera state, bitrate, fps, bytes); guarded like ``/metrics``."""
    from kuzet.services.recording.metrics import render

    return PlainTextResponse(render(inst), media_type="text/plain; version=0.0.4")
