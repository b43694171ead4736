"""The cloud service's pages: the telecom's business (``/cloud``), routing agreements (``/agreements``), signing up
with an activation code (``/activate``) and a shared clip (``/share/{token}``). The resident portal (``/my``) is
rendered by pages/core.py from templates/my.html; its script is static/js/my.js."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kuzet.domain.access import Role
from kuzet.web.render import NavItem, current_user, login_redirect, not_found_page, page

router = APIRouter()

BUSINESS = frozenset({Role.PLATFORM_ADMIN.value, Role.OPERATOR_ADMIN.value})
AGREEMENT_READERS = frozenset({Role.PLATFORM_ADMIN.value, Role.OPERATOR_ADMIN.value, Role.AUDITOR.value,
                               Role.POLICE_OPERATOR.value, Role.ORGANISATION_ADMIN.value})
NAV = [
    NavItem("nav.cloud", "/cloud", BUSINESS, 80),
    NavItem("nav.agreements", "/agreements", AGREEMENT_READERS, 82),
]


@router.get("/cloud", response_class=HTMLResponse)
def business_page(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    if user.role not in BUSINESS:
        return not_found_page(request, user)
    return page(request, user, "cloud/business.html")


@router.get("/agreements", response_class=HTMLResponse)
def agreements_page(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    if user.role not in AGREEMENT_READERS:
        return not_found_page(request, user)
    return page(request, user, "cloud/agreements.html", manage=user.role in BUSINESS)


@router.get("/activate", response_class=HTMLResponse)
def activate_page(request: Request) -> Response:
    code = request.query_params.get("code", "")[:40]
    return page(request, current_user(request), "cloud/activate.html", code=code)


@router.get("/share/{token}", response_class=HTMLResponse)
def share_page(token: str, request: Request) -> Response:
    if len(token) > 100 or not all(c.isalnum() or c in "-_" for c in token):
        return not_found_page(request, current_user(request))
    return page(request, current_user(request), "cloud/share.html", token=token)
