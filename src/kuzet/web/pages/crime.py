"""The analytics section: dynamics report, hot-spot map, effect of cameras, street coverage, placement planner."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kuzet.domain.access import Role
from kuzet.web.render import STATIC, NavItem, current_user, login_redirect, not_found_page, page

router = APIRouter()
ANALYSTS = frozenset({Role.ANALYST.value, Role.PLATFORM_ADMIN.value, Role.POLICE_OPERATOR.value, Role.INSPECTOR.value})
NAV = [NavItem("nav.crime", "/analytics", ANALYSTS, 60)]


@router.get("/analytics", response_class=HTMLResponse)
def analytics_page(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    if user.role not in ANALYSTS:
        return not_found_page(request, user)
    city_wide = user.role in (Role.ANALYST.value, Role.PLATFORM_ADMIN.value) or _control_centre(request, user)
    return page(request, user, "crime/analytics.html", city_wide=city_wide,
                leaflet=(STATIC / "vendor" / "leaflet" / "leaflet.js").exists())


def _control_centre(request: Request, user) -> bool:  # noqa: ANN001
    """The Operational Control Centre's staff analyse the whole city, as the API lets them (api/routes/crime.py)."""
    from kuzet.domain.access import OrganisationKind
    from kuzet.store.models import Organisation

    if user.organisation_id is None:
        return False
    with request.app.state.installation.db.session() as session:
        org = session.get(Organisation, user.organisation_id)
        return org is not None and org.kind == OrganisationKind.CONTROL_CENTRE
