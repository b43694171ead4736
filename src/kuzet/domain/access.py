"""Roles, rights and the rules that decide who may do what. Deny by default."""

from __future__ import annotations

from collections.abc import Iterable
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
_RIGHT_NAMES = frozenset(r.value for r in Right)


class OrganisationKind(StrEnum):
    TELECOM_OPERATOR = "telecom_operator"
    POLICE_DUTY_UNIT = "police_duty_unit"
    CONTROL_CENTRE = "control_centre"
    SECURITY_FIRM = "security_firm"
    SCHOOL = "school"
    BUSINESS = "business"


POLICE_KINDS = frozenset({OrganisationKind.POLICE_DUTY_UNIT, OrganisationKind.CONTROL_CENTRE})

# Roles whose reach does not come from grants alone: an inspector reads the yards of a district, a police operator
# sees the alarms and incidents of a police unit, analysts and auditors read city-wide data. Only platform admins (or,
# for police staff, the admin of that police organisation) create them.
POLICE_STAFF_ROLES = frozenset({Role.POLICE_OPERATOR, Role.INSPECTOR, Role.RESPONDER, Role.ANALYST,
                                Role.ORGANISATION_ADMIN})
# Accounts an organisation admin of any other organisation creates for its own organisation.
ORGANISATION_STAFF_ROLES = frozenset({Role.RESIDENT, Role.RESPONDER, Role.POLICE_OPERATOR, Role.ORGANISATION_ADMIN})
# Roles only platform admins create.
PLATFORM_ONLY_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.OPERATOR_ADMIN, Role.AUDITOR})
# Roles that administer accounts and grants of their own organisation.
DELEGATING_ROLES = frozenset({Role.OPERATOR_ADMIN, Role.ORGANISATION_ADMIN})

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


def parse_rights_exactly(values: list[str]) -> frozenset[Right]:
    """Rights as a client sends them: exact names only. ``" manage"`` or ``"View_Live"`` is refused, naming the value,
    so that no check done on the text can differ from the right that is stored."""
    rights = set()
    for value in values:
        if not isinstance(value, str) or value not in _RIGHT_NAMES:
            known = ", ".join(r.value for r in Right)
            raise ValueError(f"unknown right {value!r} (known: {known})")
        rights.add(Right(value))
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


@dataclass(frozen=True)
class HeldGrant:
    """One grant as a caller holds it, with the materialised path of its place (None for a grant on one camera)."""

    id: int
    rights: frozenset[Right]
    place_path: str | None
    camera_id: int | None
    window: GrantWindow
    archive_days: int | None
    legal_basis: str

    def covers(self, camera_id: int, place_path: str | None) -> bool:
        """The grant reaches the camera: granted one by one, or it sits in the grant's place subtree."""
        if self.camera_id is not None and self.camera_id == camera_id:
            return True
        return self.place_path is not None and place_path is not None and place_path.startswith(self.place_path)


def minimal_prefixes(paths: Iterable[str]) -> list[str]:
    """Materialised paths with every path inside another one's subtree dropped: ``/1/`` covers ``/1/5/``."""
    kept: list[str] = []
    for path in sorted(set(paths)):
        if not kept or not path.startswith(kept[-1]):
            kept.append(path)
    return kept


@dataclass(frozen=True)
class Reach:
    """Everything a caller's grants reach, evaluated without the database: the caller's grants are loaded once per
    request (or once per token, see ``services.access.cache``) and every camera of a page is checked against them.

    ``grants`` may hold grants that are not active yet or have ended since loading: each answer looks at the windows
    at the instant it is asked for, so a cached reach is never used past a grant's end.
    """

    grants: tuple[HeldGrant, ...]

    def active(self, now: datetime) -> list[HeldGrant]:
        return [g for g in self.grants if g.window.active_at(now)]

    def camera_rights(self, camera_id: int, place_path: str | None, now: datetime) -> frozenset[Right]:
        rights: set[Right] = set()
        for g in self.active(now):
            if g.covers(camera_id, place_path):
                rights |= g.rights
        return frozenset(rights)

    def place_rights(self, place_path: str, now: datetime) -> frozenset[Right]:
        rights: set[Right] = set()
        for g in self.active(now):
            if g.place_path is not None and place_path.startswith(g.place_path):
                rights |= g.rights
        return frozenset(rights)

    def archive_days(self, camera_id: int, place_path: str | None, now: datetime) -> tuple[bool, int | None]:
        """(reached, days): whether a view_archive grant covers the camera, and how far back the widest one reaches
        (None: all of the archive)."""
        days: list[int] = []
        for g in self.active(now):
            if Right.VIEW_ARCHIVE in g.rights and g.covers(camera_id, place_path):
                if g.archive_days is None:
                    return True, None
                days.append(g.archive_days)
        return (True, max(days)) if days else (False, None)

    def legal_basis(self, camera_id: int, place_path: str | None, right: Right, now: datetime) -> str:
        for g in self.active(now):
            if right in g.rights and g.covers(camera_id, place_path):
                return g.legal_basis
        return ""

    def place_prefixes(self, right: Right | None, now: datetime) -> list[str]:
        """The smallest set of subtrees (materialised paths) the caller's active grants with ``right`` cover."""
        return minimal_prefixes(g.place_path for g in self.active(now)
                                if g.place_path is not None and (right is None or right in g.rights))

    def camera_ids(self, right: Right | None, now: datetime) -> list[int]:
        """Cameras granted one by one (with ``right``)."""
        return sorted({g.camera_id for g in self.active(now)
                       if g.camera_id is not None and (right is None or right in g.rights)})

    def changes_after(self, now: datetime) -> datetime | None:
        """The next instant one of these grants starts or ends: a cached reach is reloaded then at the latest."""
        moments = [t for g in self.grants for t in (g.window.valid_from, g.window.valid_to, g.window.revoked_at)
                   if t is not None and t > now]
        return min(moments) if moments else None
