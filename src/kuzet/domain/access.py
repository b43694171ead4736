"""Roles, rights and the rules that decide who may do what. Deny by default."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    OPERATOR_ADMIN = "operator_admin"
    ORGANISATION_ADMIN = "organisation_admin"
    POLICE_OPERATOR = "police_operator"
    INSPECTOR = "inspector"
    RESPONDER = "responder"
    ANALYST = "analyst"
    RESIDENT = "resident"
    AUDITOR = "auditor"


class Right(StrEnum):
    VIEW_LIVE = "view_live"
    VIEW_ARCHIVE = "view_archive"
    EXPORT = "export"
    PTZ = "ptz"
    MANAGE = "manage"


ALL_RIGHTS = frozenset(Right)


class OrganisationKind(StrEnum):
    TELECOM_OPERATOR = "telecom_operator"
    POLICE_DUTY_UNIT = "police_duty_unit"
    CONTROL_CENTRE = "control_centre"
    SECURITY_FIRM = "security_firm"
    SCHOOL = "school"
    BUSINESS = "business"


POLICE_KINDS = frozenset({OrganisationKind.POLICE_DUTY_UNIT, OrganisationKind.CONTROL_CENTRE})

# Roles that may change places, organisations, cameras, users and grants anywhere.
ADMIN_ROLES = frozenset({Role.PLATFORM_ADMIN})
# Roles that may read the whole audit log.
AUDIT_READERS = frozenset({Role.PLATFORM_ADMIN, Role.AUDITOR})


def parse_rights(text: str | list[str] | set[str]) -> frozenset[Right]:
    """``"view_live,export"`` or a list → a set of rights; raises ValueError naming an unknown right."""
    items = text.split(",") if isinstance(text, str) else list(text)
    rights = set()
    for raw in items:
        name = raw.strip()
        if not name:
            continue
        try:
            rights.add(Right(name))
        except ValueError:
            known = ", ".join(r.value for r in Right)
            raise ValueError(f"unknown right {name!r} (known: {known})") from None
    if not rights:
        raise ValueError("a grant needs at least one right")
    return frozenset(rights)


def format_rights(rights: frozenset[Right] | set[Right]) -> str:
    return ",".join(sorted(r.value for r in rights))


@dataclass(frozen=True)
class GrantWindow:
    valid_from: datetime | None
    valid_to: datetime | None
    revoked_at: datetime | None

    def active_at(self, when: datetime) -> bool:
        if self.revoked_at is not None and self.revoked_at <= when:
            return False
        if self.valid_from is not None and when < self.valid_from:
            return False
        if self.valid_to is not None and when >= self.valid_to:
            return False
        return True
