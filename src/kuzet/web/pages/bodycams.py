"""The body-worn camera page: the caller's own recordings waiting for a category, search over the recordings they see,
one recording played with its hashes, category, holds and (dash cameras) its GPS track on the map, and the devices of
their unit with who has them. The API decides what each user gets (services/bodycams/units.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kuzet.domain.access import Role
from kuzet.web.render import NavItem, current_user, login_redirect, not_found_page, page

router = APIRouter()
# Duties are given to police staff and unit admins; platform admins see everything.
USERS = frozenset({Role.PLATFORM_ADMIN.value, Role.POLICE_OPERATOR.value, Role.RESPONDER.value,
                   Role.ORGANISATION_ADMIN.value, Role.INSPECTOR.value})
NAV = [NavItem("nav.bodycams", "/bodycams", USERS, 76)]


@router.get("/bodycams", response_class=HTMLResponse)
def bodycams_page(request: Request) -> Response:
    from kuzet.web.render import STATIC

    user = current_user(request)
    if user is None:
        return login_redirect(request)
    if user.role not in USERS:
        return not_found_page(request, user)
    return page(request, user, "bodycams/bodycams.html",
                leaflet=(STATIC / "vendor" / "leaflet" / "leaflet.js").exists())
