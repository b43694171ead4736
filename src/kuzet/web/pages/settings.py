"""The user's own settings: the console's language and the time zone every time is shown in."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kuzet.web.i18n import TIME_ZONES, zone_name
from kuzet.web.render import current_user, language, login_redirect, page

router = APIRouter()


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    lang = language(request, user)
    installation_zone = request.app.state.installation.settings.timezone
    zones = list(TIME_ZONES) + [z for z in (user.timezone, installation_zone) if z and z not in TIME_ZONES]
    return page(request, user, "settings.html", own_zone=user.timezone or "",
                installation_zone=zone_name(installation_zone, lang),
                zones=sorted(((z, zone_name(z, lang)) for z in zones), key=lambda z: z[1]))
