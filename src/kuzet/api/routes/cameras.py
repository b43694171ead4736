"""The camera registry as users see it: only cameras they hold a grant on; 404 for every other."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import ApiError, not_found, rejected_rows
from kuzet.api.limits import spool
from kuzet.api.routes.common import ERRORS, Id, Paging, camera_for, errors, json_response
from kuzet.api.schemas import CameraIn, CameraKind, CameraOut, CameraPatch, Page
from kuzet.domain.access import Right
from kuzet.installation import Installation
from kuzet.services import access
from kuzet.services.cameras import (
    CameraError,
    ImportRejected,
    allowed_schemes,
    create_camera,
    delete_camera,
    import_csv,
    update_camera,
)
from kuzet.store.models import Camera, Place

router = APIRouter(prefix="/cameras", tags=["cameras"], responses=ERRORS)


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


@router.get("", response_model=Page[CameraOut])
def list_cameras(paging: Paging = Depends(), place_id: Id | None = None, kind: CameraKind | None = None,
                 q: str | None = Query(None, max_length=200), who: Caller = Depends(caller),
                 inst: Installation = Depends(installation)) -> Response:
    """Cameras the caller may see. ``place_id`` narrows to a place subtree. The rights of the whole page come from
    the caller's reach (one query, cached per caller) and the page's places (one query): the number of statements
    does not grow with the page or the city. The page is serialised here, from models built here, rather than
    validated again against the response model in another worker thread (the list every console page asks for)."""
    with inst.db.session(readonly=True) as session:
        query = access.visible_cameras(who.user, session=session).order_by(Camera.id)
        if place_id is not None:
            root = session.get(Place, place_id)
            if root is None:
                return json_response(Page[CameraOut](items=[], total=0, limit=paging.limit, offset=paging.offset))
            query = query.where(Camera.place_id.in_(
                select(Place.id).where(Place.path.startswith(root.path, autoescape=True))))
        if kind:
            query = query.where(Camera.kind == kind)
        if q:
            query = query.where(Camera.name.ilike(f"%{q}%"))
        page = paging.page(session, query)
        cameras = page["items"]
        places = access.place_names_and_paths(session, {c.place_id for c in cameras})
        rights = access.rights_on_cameras(session, who.user, cameras,
                                          paths={i: path for i, (_name, path) in places.items()})
        page["items"] = [camera_out(c, rights[c.id], places[c.place_id][0] if c.place_id in places else None)
                         for c in cameras]
    return json_response(Page[CameraOut](**page))


@router.get("/{camera_id}", response_model=CameraOut)
def get_camera(camera_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> Response:
    """One camera the caller holds a grant on (404 otherwise); serialised here, like the list."""
    with inst.db.session(readonly=True) as session:
        camera = camera_for(session, who.user, camera_id)
        place = session.get(Place, camera.place_id)
        out = camera_out(camera, access.camera_rights(session, who.user, camera), place.name if place else None)
    return json_response(out)


@router.post("", response_model=CameraOut, status_code=201)
def add_camera(body: CameraIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> CameraOut:
    with inst.db.session() as session:
        place = session.get(Place, body.place_id)
        if not access.may_administer(who.user, "camera") or place is None or (
            Right.MANAGE not in access.place_rights(session, who.user, place)
        ):
            raise not_found("place not found")
        try:
            camera = create_camera(session, who.actor, inst.keys, **body.model_dump(),
                                   url_schemes=allowed_schemes(inst.settings))
        except CameraError as exc:
            raise ApiError(422, str(exc)) from None
        return camera_out(camera, access.camera_rights(session, who.user, camera), place.name)


@router.patch("/{camera_id}", response_model=CameraOut)
def patch_camera(camera_id: Id, body: CameraPatch, who: Caller = Depends(caller),
                 inst: Installation = Depends(installation)) -> CameraOut:
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id)
        if Right.MANAGE not in access.camera_rights(session, who.user, camera):
            raise ApiError(403, "you may view this camera but not change it")
        new_place = body.place_id if "place_id" in body.model_fields_set else None
        if new_place is not None and new_place != camera.place_id:
            place = session.get(Place, new_place)
            if place is None or Right.MANAGE not in access.place_rights(session, who.user, place):
                raise not_found("place not found")  # a camera moves only between places its manager manages
        try:
            update_camera(session, who.actor, inst.keys, camera, **body.model_dump(exclude_unset=True),
                          url_schemes=allowed_schemes(inst.settings))
        except CameraError as exc:
            raise ApiError(422, str(exc)) from None
        return camera_out(camera, access.camera_rights(session, who.user, camera))


@router.delete("/{camera_id}", status_code=204)
def remove_camera(camera_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> None:
    with inst.db.session() as session:
        camera = camera_for(session, who.user, camera_id)
        if Right.MANAGE not in access.camera_rights(session, who.user, camera):
            raise ApiError(403, "you may view this camera but not delete it")
        delete_camera(session, who.actor, camera)


@router.post("/import", status_code=201, responses=errors(413))
async def import_cameras(request: Request, file: UploadFile = File(...), who: Caller = Depends(caller),
                         inst: Installation = Depends(installation)) -> dict:
    """CSV import: every row validated; all cameras are created or none, with each bad row's line number."""
    if not access.is_platform_admin(who.user):
        raise ApiError(403, "only platform admins import cameras in bulk")
    import io

    with await spool(file, inst.settings.http.max_upload_bytes, ".csv") as raw:
        def work():  # noqa: ANN202 - in a worker thread, never on the event loop
            with inst.db.session() as session:
                return import_csv(session, who.actor, inst.keys, io.TextIOWrapper(raw, "utf-8-sig", newline=""),
                                  url_schemes=allowed_schemes(inst.settings))

        try:
            result = await run_in_threadpool(work)
        except UnicodeDecodeError:
            raise ApiError(422, "the file is not UTF-8 text") from None
        except ImportRejected as exc:
            return _rejected(request, exc)
        except CameraError as exc:
            raise ApiError(422, str(exc)) from None
    return {"created": result.created}


def _rejected(request: Request, exc: ImportRejected):  # noqa: ANN202
    return rejected_rows(request, str(exc), [(e.line, e.message) for e in exc.errors])
