"""The auditor's page: the audit records the caller may read (filters, pages) and whether the chain verifies."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from kuzet.domain.access import AUDIT_READERS
from kuzet.web.render import NavItem, current_user, login_redirect, not_found_page, page

router = APIRouter()
READERS = frozenset(r.value for r in AUDIT_READERS)  # services/access.may_read_audit
NAV = [NavItem("nav.audit", "/audit", READERS, 88)]


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    if user.role not in READERS:
        return not_found_page(request, user)
    return page(request, user, "audit.html")
