"""Onboarding pages: the installation list and ONVIF discovery (the telecom's admins), and the field technician's
phone page of offline cameras (whoever manages cameras). The API decides what each user gets; the pages only mirror
it so that nobody sees a menu item that would answer 404."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kuzet.domain.access import Role
from kuzet.web.render import NavItem, current_user, login_redirect, not_found_page, page

router = APIRouter()
ONBOARDERS = frozenset({Role.PLATFORM_ADMIN.value, Role.OPERATOR_ADMIN.value})  # api/routes/onboarding._onboarder
MANAGERS = ONBOARDERS | {Role.ORGANISATION_ADMIN.value}  # who may manage cameras (access.may_administer)
NAV = [
    NavItem("nav.onboarding", "/onboarding", ONBOARDERS, 82),
    NavItem("nav.field", "/field", MANAGERS, 84),
]


def _for(request: Request, roles: frozenset[str], template: str) -> Response:
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    if user.role not in roles:
        return not_found_page(request, user)
    return page(request, user, template)


@router.get("/onboarding", response_class=HTMLResponse)
def onboarding_page(request: Request) -> Response:
    return _for(request, ONBOARDERS, "onboarding/onboarding.html")


@router.get("/field", response_class=HTMLResponse)
def field_page(request: Request) -> Response:
    return _for(request, MANAGERS, "onboarding/field.html")
