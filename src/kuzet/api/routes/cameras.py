"""The camera registry as users see it: only cameras they hold a grant on; 404 for every other."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, UploadFile
from sqlalchemy import select

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import ApiError, not_found
from kuzet.api.routes.common import Paging, camera_for
from kuzet.api.schemas import CameraIn, CameraOut, CameraPatch
from kuzet.domain.access import Right
from kuzet.installation import Installation
from kuzet.services import access
from kuzet.services.cameras import (
    CameraError,
    ImportRejected,
    create_camera,
    delete_camera,
    import_csv,
    update_camera,
)
from kuzet.store.models import Camera, Place

router = APIRouter(prefix="/cameras", tags=["cameras"])


def camera_out(camera: Camera, rights: frozenset[Right], place_name: str | None = None) -> CameraOut:
    manage = Right.MANAGE in rights
    return CameraOut(
        id=camera.id, name=camera.name, kind=camera.kind, place_id=camera.place_id, place_name=place_name,
        owner_org_id=camera.owner_org_id,
        main_url=camera.main_url if manage else None, sub_url=camera.sub_url if manage else None,
        has_sub_stream=camera.sub_url is not None,
        has_credentials=camera.main_credentials is not None or camera.sub_credentials is not None,
        lat=camera.lat, lon=camera.lon, bearing=camera.bearing, field_of_view=camera.field_of_view,
        view_radius_m=camera.view_radius_m, retention_days=camera.retention_days, enabled=camera.enabled,
        installed_on=camera.installed_on, rights=sorted(r.value for r in rights),
    )


@router.get("")
def list_cameras(paging: Paging = Depends(), place_id: int | None = None, kind: str | None = None,
                 q: str | None = None, who: Caller = Depends(caller),
                 inst: Installation = Depends(installation)) -> dict:
    """Cameras the caller may see. ``place_id`` narrows to a place subtree."""
    with inst.db.session() as session:
        query = access.visible_cameras(who.user).order_by(Camera.id)
        if place_id is not None:
            root = session.get(Place, place_id)
            if root is None:
                return {"items": [], "total": 0, "limit": paging.limit, "offset": paging.offset}
            query = query.join(Place, Place.id == Camera.place_id).where(Place.path.startswith(root.path))
        if kind:
            query = query.where(Camera.kind == kind)
        if q:
            query = query.where(Camera.name.ilike(f"%{q}%"))
        names = dict(session.execute(select(Place.id, Place.name)).all())
        return paging.page(
            session, query,
            lambda c: camera_out(c, access.camera_rights(session, who.user, c), names.get(c.place_id)),
        )


@router.get("/{camera_id}", response_model=CameraOut)
def get_camera(camera_id: int, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> CameraOut:
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id)
        place = session.get(Place, camera.place_id)
        return camera_out(camera, access.camera_rights(session, who.user, camera), place.name if place else None)


@router.post("", response_model=CameraOut, status_code=201)
def add_camera(body: CameraIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> CameraOut:
    with inst.db.session() as session:
        place = session.get(Place, body.place_id)
        if not access.may_administer(who.user, "camera") or place is None or (
            Right.MANAGE not in access.place_rights(session, who.user, place)
        ):
            raise not_found("place not found")
        try:
            camera = create_camera(session, who.actor, inst.keys, **body.model_dump())
        except CameraError as exc:
            raise ApiError(422, str(exc)) from None
        return camera_out(camera, access.camera_rights(session, who.user, camera), place.name)


@router.patch("/{camera_id}", response_model=CameraOut)
def patch_camera(camera_id: int, body: CameraPatch, who: Caller = Depends(caller),
                 inst: Installation = Depends(installation)) -> CameraOut:
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id)
        if Right.MANAGE not in access.camera_rights(session, who.user, camera):
            raise ApiError(403, "you may view this camera but not change it")
        try:
            update_camera(session, who.actor, inst.keys, camera, **body.model_dump(exclude_unset=True))
        except CameraError as exc:
            raise ApiError(422, str(exc)) from None
        return camera_out(camera, access.camera_rights(session, who.user, camera))


@router.delete("/{camera_id}", status_code=204)
def remove_camera(camera_id: int, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> None:
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id)
        if Right.MANAGE not in access.camera_rights(session, who.user, camera):
            raise ApiError(403, "you may view this camera but not delete it")
        delete_camera(session, who.actor, camera)


@router.post("/import", status_code=201)
async def import_cameras(file: UploadFile = File(...), who: Caller = Depends(caller),
                         inst: Installation = Depends(installation)) -> dict:
    """CSV import: every row validated; all cameras are created or none, with each bad row's line number."""
    if not access.is_platform_admin(who.user):
        raise ApiError(403, "only platform admins import cameras in bulk")
    import io

    raw = await file.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(422, "the file is not UTF-8 text") from None
    try:
        with inst.db.session() as session:
            result = import_csv(session, who.actor, inst.keys, io.StringIO(text))
    except ImportRejected as exc:
        return _rejected(exc)
    except CameraError as exc:
        raise ApiError(422, str(exc)) from None
    return {"created": result.created}


def _rejected(exc: ImportRejected):  # noqa: ANN202
    from fastapi.responses import JSONResponse

    return JSONResponse(
        {"error": {"code": "import_rejected", "message": str(exc),
                   "rows": [{"line": e.line, "message": e.message} for e in exc.errors]}},
        status_code=422,
    )
