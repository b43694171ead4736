"""The operations centre: the alarm queue, incidents, the crews' page, event search, KPIs, alarm rules, hot lists.

Who may use what is decided by the services (``services/operations/``); the pages only mirror it so that a user
never sees a menu item that would answer 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kuzet.domain.access import Role
from kuzet.domain.operations import OBJECT_LABELS, IncidentStatus, Priority
from kuzet.web.render import NavItem, current_user, login_redirect, not_found_page, page

router = APIRouter()

# The alarm queue, incidents, rules and event search: police operators, organisation admins (e.g. a security firm)
# and platform admins (alarms.QUEUE_ROLES, incidents.OPERATOR_ROLES, rules.may_manage_rules).
OPERATORS = frozenset({Role.PLATFORM_ADMIN.value, Role.POLICE_OPERATOR.value, Role.ORGANISATION_ADMIN.value})
CREWS = frozenset({Role.RESPONDER.value})
KPI_READERS = OPERATORS | {Role.ANALYST.value, Role.AUDITOR.value}  # kpis.KPI_ROLES
HOTLIST_USERS = frozenset({Role.PLATFORM_ADMIN.value, Role.POLICE_OPERATOR.value})  # and a police organisation
NAV = [
    NavItem("nav.respond", "/respond", CREWS, 8),
    NavItem("nav.alarms", "/alarms", OPERATORS, 12),
    NavItem("nav.incidents", "/incidents", OPERATORS, 14),
    NavItem("nav.events", "/events", OPERATORS, 16),
    NavItem("nav.kpis", "/operations/kpis", KPI_READERS, 70),
    NavItem("nav.rules", "/operations/rules", OPERATORS, 75),
    NavItem("nav.hotlists", "/operations/hotlists", HOTLIST_USERS, 76),
]
PRIORITIES = [p.value for p in sorted(Priority, key=lambda p: -p.rank)]


def _for(request: Request, roles: frozenset[str], template: str, **context) -> Response:  # noqa: ANN003
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    if user.role not in roles:
        return not_found_page(request, user)
    return page(request, user, template, priorities=PRIORITIES, **context)


@router.get("/alarms", response_class=HTMLResponse)
def alarms_page(request: Request) -> Response:
    return _for(request, OPERATORS, "operations/alarms.html")


@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(request: Request) -> Response:
    return _for(request, OPERATORS, "operations/incidents.html", statuses=[s.value for s in IncidentStatus])


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(incident_id: int, request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    from kuzet.services.operations import incidents
    from kuzet.store.models.operations import Incident

    with request.app.state.installation.db.session() as session:
        seen = session.scalar(incidents.visible_incidents(user).where(Incident.id == incident_id)
                              .with_only_columns(Incident.id))
    if seen is None:
        return not_found_page(request, user)
    return page(request, user, "operations/incident.html", incident_id=incident_id,
                operator=incidents.may_operate(user), priorities=PRIORITIES)


@router.get("/respond", response_class=HTMLResponse)
def respond_page(request: Request) -> Response:
    return _for(request, CREWS | {Role.PLATFORM_ADMIN.value}, "operations/respond.html")


@router.get("/events", response_class=HTMLResponse)
def events_page(request: Request) -> Response:
    return _for(request, OPERATORS, "operations/events.html", labels=list(OBJECT_LABELS))


@router.get("/operations/kpis", response_class=HTMLResponse)
def kpis_page(request: Request) -> Response:
    user = current_user(request)
    city_wide = user is not None and user.role in (Role.PLATFORM_ADMIN.value, Role.ANALYST.value,
                                                   Role.AUDITOR.value)
    return _for(request, KPI_READERS, "operations/kpis.html", city_wide=city_wide)


@router.get("/operations/rules", response_class=HTMLResponse)
def rules_page(request: Request) -> Response:
    return _for(request, OPERATORS, "operations/rules.html", labels=list(OBJECT_LABELS))


@router.get("/operations/hotlists", response_class=HTMLResponse)
def hotlists_page(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    from kuzet.services.operations import hotlists

    with request.app.state.installation.db.session() as session:
        allowed = hotlists.may_use(session, user)
    if not allowed:
        return not_found_page(request, user)
    return page(request, user, "operations/hotlists.html", priorities=PRIORITIES, kinds=list(hotlists.KINDS))
