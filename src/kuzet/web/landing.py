"""Where each user starts after signing in: the page of their daily work, never an empty one.

A resident's cameras, a crew's calls, an inspector's yards, an analyst's reports, an auditor's log; a police
operator's alarm queue, the telecom's (and other organisations') cameras. ``?next=`` still wins (see
``render.same_origin_path``): this is only where ``/`` leads.
"""

from __future__ import annotations

from kuzet.domain.access import POLICE_KINDS, Role

LANDING = {
    Role.RESIDENT: "/my",
    Role.RESPONDER: "/respond",
    Role.INSPECTOR: "/safe-yards",
    Role.ANALYST: "/analytics",
    Role.AUDITOR: "/audit",
    Role.POLICE_OPERATOR: "/alarms",
    Role.OPERATOR_ADMIN: "/cameras",
    Role.PLATFORM_ADMIN: "/cameras",
}


def landing_page(role: str, organisation_kind: str | None = None) -> str:
    """The path a user of ``role`` (in an organisation of ``organisation_kind``) lands on.

    An organisation's admin works the alarm queue when the organisation is a police unit, its cameras otherwise (a
    school, a security firm's site)."""
    if role == Role.ORGANISATION_ADMIN:
        return "/alarms" if organisation_kind in POLICE_KINDS else "/cameras"
    try:
        return LANDING.get(Role(role), "/cameras")
    except ValueError:
        return "/cameras"
