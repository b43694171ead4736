"""Safe-yard pages: the inspector's yards and passports, the supervisor's dashboard."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kuzet.domain.access import Role
from kuzet.services.safeyard.passport import CATEGORIES
from kuzet.web.render import NavItem, signed_in_page

router = APIRouter()
POLICE = frozenset({Role.INSPECTOR.value, Role.POLICE_OPERATOR.value, Role.PLATFORM_ADMIN.value, Role.ANALYST.value})
NAV = [NavItem("nav.safeyard", "/safe-yards", POLICE, 40)]


@router.get("/safe-yards", response_class=HTMLResponse)
def yards_page(request: Request) -> Response:
    return signed_in_page(request, "safeyard/list.html")


@router.get("/safe-yards/{yard_id}", response_class=HTMLResponse)
def passport_page(yard_id: int, request: Request) -> Response:
    fields = {category: list(spec[0]) for category, spec in CATEGORIES.items()}
    required = {category: list(spec[1]) for category, spec in CATEGORIES.items()}
    return signed_in_page(request, "safeyard/passport.html", yard_id=yard_id, fields=fields, required=required)
