"""Core and watching pages: login, camera list, camera page (live, timeline, archive, export), video wall, map,
resident portal, administration."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kuzet.api.errors import ApiError
from kuzet.api.routes.common import camera_for
from kuzet.domain.access import Role
from kuzet.web.render import (
    NavItem,
    current_user,
    login_redirect,
    not_found_page,
    page,
    same_origin_path,
    signed_in_page,
)

router = APIRouter()

STAFF = frozenset(r.value for r in Role if r not in (Role.RESIDENT,))
# Who may hold camera grants: everyone but the analyst and the auditor (their work is reports and the log).
WATCHERS = frozenset(r.value for r in Role if r not in (Role.ANALYST, Role.AUDITOR))
ADMINS = frozenset({Role.PLATFORM_ADMIN.value, Role.OPERATOR_ADMIN.value, Role.ORGANISATION_ADMIN.value})
NAV = [
    NavItem("nav.my", "/my", frozenset({Role.RESIDENT.value}), 5),
    NavItem("nav.cameras", "/cameras", WATCHERS, 10),
    NavItem("nav.wall", "/wall", WATCHERS - {Role.RESIDENT.value}, 20),
    NavItem("nav.map", "/map", WATCHERS, 30),
    NavItem("nav.admin", "/admin", ADMINS, 90),
]


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return page(request, None, "login.html", next=same_origin_path(request.query_params.get("next")))


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    from kuzet.store.models import Organisation
    from kuzet.web.landing import landing_page

    kind = None
    if user.organisation_id is not None:
        with request.app.state.installation.db.session() as session:
            org = session.get(Organisation, user.organisation_id)
            kind = org.kind if org is not None else None
    return RedirectResponse(landing_page(user.role, kind), status_code=303)


@router.get("/cameras", response_class=HTMLResponse)
def cameras_page(request: Request) -> Response:
    return signed_in_page(request, "cameras.html")


@router.get("/cameras/{camera_id}", response_class=HTMLResponse)
def camera_page(camera_id: int, request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    inst = request.app.state.installation
    from kuzet.services import access

    with inst.db.session() as session:
        try:
            camera = camera_for(session, user, camera_id)
        except ApiError:
            return not_found_page(request, user)
        rights = sorted(r.value for r in access.camera_rights(session, user, camera))
        info = {"id": camera.id, "name": camera.name, "kind": camera.kind, "has_sub": camera.sub_url is not None}
    return page(request, user, "camera.html", camera=info, rights=rights)


@router.get("/wall", response_class=HTMLResponse)
def wall_page(request: Request) -> Response:
    return signed_in_page(request, "wall.html")


@router.get("/map", response_class=HTMLResponse)
def map_page(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    from kuzet.web.render import STATIC

    vendor = STATIC / "vendor"
    return page(request, user, "map.html", leaflet=(vendor / "leaflet" / "leaflet.js").exists(),
                cluster=(vendor / "leaflet.markercluster" / "leaflet.markercluster.js").exists())


@router.get("/my", response_class=HTMLResponse)
def my_page(request: Request) -> Response:
    return signed_in_page(request, "my.html")


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    if user.role not in ADMINS:
        return not_found_page(request, user)
    from kuzet.domain.access import POLICE_KINDS
    from kuzet.services import access
    from kuzet.store.models import Organisation

    with request.app.state.installation.db.session() as session:
        org = session.get(Organisation, user.organisation_id) if user.organisation_id else None
        # District assignments (need to know): platform admins, and the admin of a police organisation for its staff.
        assigns = access.is_platform_admin(user) or (user.role == Role.ORGANISATION_ADMIN.value and org is not None
                                                     and org.kind in POLICE_KINDS)
    return page(request, user, "admin.html", roles=[r.value for r in Role],
                may_places=access.may_administer(user, "place"), may_assign=assigns,
                may_organisations=access.is_platform_admin(user))
