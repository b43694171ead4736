"""Sealed evidence exports (docs/evidence.md): create, list, state, download, and the key that signs them.

Who sees an export: the user who made it, platform admins, and whoever holds ``export`` on every camera in it. Anyone
else, auditors included, gets 404: auditors read the audit log (which names every export and download), and download
video only with a grant like everyone else.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import ApiError, not_found
from kuzet.api.routes.common import ERRORS, Id, camera_for, errors, media
from kuzet.domain.access import Right
from kuzet.installation import Installation
from kuzet.services import access
from kuzet.services.watching import evidence
from kuzet.services.watching.evidence import MAX_CAMERAS
from kuzet.store.models import Camera
from kuzet.store.models.watching import Export

router = APIRouter(tags=["exports"], responses=ERRORS)

ExportId = Annotated[str, PathParam(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")]


class ExportIn(BaseModel):
    cameras: list[Id] = Field(min_length=1, max_length=MAX_CAMERAS)
    start: datetime
    end: datetime
    reason: str = Field(max_length=2000)


class PublicKeyOut(BaseModel):
    algorithm: str
    public_key_pem: str
    fingerprint: str


def _export_out(export: Export) -> dict:
    return {"id": export.id, "state": export.state, "cameras": export.cameras, "start": export.start_at,
            "end": export.end_at, "reason": export.reason, "created_at": export.created_at,
            "finished_at": export.finished_at, "error": export.error, "sha256": export.sha256,
            "bytes": export.bytes,
            "bundle": f"/api/v1/exports/{export.id}/bundle" if export.state == "done" else None}


def _export_for(inst: Installation, who: Caller, export_id: str) -> Export:
    with inst.db.session() as session:
        export = session.get(Export, export_id)
        if export is None or not evidence.may_see(session, who.user, export):
            raise not_found("export not found")
        return export


@router.get("/exports/public-key", response_model=PublicKeyOut)
def public_key(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """The installation's Ed25519 key that signs evidence manifests and the audit chain's head, and its fingerprint
    (SHA-256 of the PEM): compare it with a bundle's ``signing_key_sha256``."""
    pem = inst.keys.public_key_pem()
    return {"algorithm": "ed25519", "public_key_pem": pem.decode("ascii"), "fingerprint": inst.keys.fingerprint()}


@router.post("/exports", status_code=201)
def post_export(body: ExportIn, who: Caller = Depends(caller),
                inst: Installation = Depends(installation)) -> dict:
    """Sealed multi-camera evidence export of one window; the window goes on evidence hold at once."""
    with inst.db.session() as session:
        try:
            for camera_id in body.cameras:
                evidence.check_reach(session, who.user, camera_for(session, who.user, camera_id, Right.EXPORT),
                                     body.start)
            export = evidence.create_export(session, who.actor, who.user, body.cameras, body.start, body.end,
                                            body.reason)
        except evidence.BeyondArchiveReach as exc:
            raise ApiError(403, str(exc)) from None
        except evidence.ExportError as exc:
            raise ApiError(422, str(exc)) from None
        export_id = export.id
    # Built in the event loop's executor, as before the route left the loop (this runs in a worker thread).
    anyio.from_thread.run_sync(
        lambda: asyncio.get_running_loop().run_in_executor(None, evidence.build_export, inst, export_id))
    return {"id": export_id, "state": "pending"}


@router.get("/exports")
def list_exports(limit: int = Query(50, ge=1, le=200), who: Caller = Depends(caller),
                 inst: Installation = Depends(installation)) -> list[dict]:
    """The newest exports the caller may see, newest first."""
    with inst.db.session() as session:
        exportable = None
        if not access.is_platform_admin(who.user):
            query = access.visible_cameras(who.user, Right.EXPORT).with_only_columns(Camera.id)
            exportable = set(session.scalars(query))
        found = []
        newest_first = select(Export).order_by(Export.created_at.desc(), Export.id).execution_options(yield_per=500)
        for export in session.scalars(newest_first):
            if evidence.may_see(session, who.user, export, exportable):
                found.append(_export_out(export))
                if len(found) == limit:
                    break
        return found


@router.get("/exports/{export_id}")
def get_export(export_id: ExportId, who: Caller = Depends(caller),
               inst: Installation = Depends(installation)) -> dict:
    return _export_out(_export_for(inst, who, export_id))


@router.get("/exports/{export_id}/bundle", response_class=FileResponse,
            responses=errors(409, 410) | media("application/zip"))
def export_bundle(export_id: ExportId, who: Caller = Depends(caller),
                  inst: Installation = Depends(installation)) -> FileResponse:
    """The bundle zip, streamed from disk; each download is an audit record per camera."""
    export = _export_for(inst, who, export_id)
    if export.state != "done" or not export.path:
        raise ApiError(409, f"the export is {export.state}", "not_ready")
    path = evidence.bundle_file(inst.settings.data_dir, export)
    if path is None:
        raise ApiError(410, "the bundle file is gone from the server", "gone")
    with inst.db.session() as session:
        evidence.record_download(session, who.actor, export)
    return FileResponse(path, media_type="application/zip", filename=f"kuzet-evidence-{export.id}.zip")
