"""District assignments: the explicit need to know behind every read of a safe yard's personal data.

An inspector reads the passports' personal lists of a district only while assigned to it (a police operator of the
control centre who supervises inspectors may be assigned to the whole city). Each assignment names who assigned it,
when, until when and on what legal basis; it is audited when made and when ended, and never deleted. A role or a home
district alone gives no need to know.

Who assigns: platform admins, and the admin of a police organisation for its own inspectors and operators inside the
area that organisation serves (the same reach as in ``access.delegation``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from kuzet.domain.access import POLICE_KINDS, Role
from kuzet.services import audit
from kuzet.services.access import is_platform_admin
from kuzet.services.access.delegation import reach_of
from kuzet.services.audit import Actor
from kuzet.store.db import utcnow
from kuzet.store.models import Organisation, Place, User
from kuzet.store.models.safeyard import DistrictAssignment

ASSIGNED = "safeyard.assigned"
ASSIGNMENT_ENDED = "safeyard.assignment_ended"
# Roles that may be given need to know: inspectors, and police operators who supervise them.
ASSIGNABLE_ROLES = frozenset({Role.INSPECTOR, Role.POLICE_OPERATOR})
ASSIGNABLE_KINDS = frozenset({"region", "settlement", "district"})


class AssignmentError(ValueError):
    """The assignment itself is wrong (422)."""


class AssignmentDenied(Exception):
    """The actor may not make or see this assignment (404: outside their reach)."""


def _active(now: datetime):  # noqa: ANN202
    return and_(DistrictAssignment.revoked_at.is_(None),
                or_(DistrictAssignment.valid_from.is_(None), DistrictAssignment.valid_from <= now),
                or_(DistrictAssignment.valid_to.is_(None), DistrictAssignment.valid_to > now))


def assigned_paths(session: Session, user: User, now: datetime | None = None) -> list[str]:
    """The place paths whose safe yards ``user`` may read personal data of, now."""
    if user.role not in ASSIGNABLE_ROLES or not user.is_active:
        return []
    now = now or utcnow()
    return list(session.scalars(
        select(Place.path).join(DistrictAssignment, DistrictAssignment.place_id == Place.id)
        .where(DistrictAssignment.user_id == user.id, _active(now))))


def may_assign(session: Session, actor: User, assignee: User, place: Place) -> bool:
    if is_platform_admin(actor):
        return True
    if actor.role != Role.ORGANISATION_ADMIN or actor.organisation_id is None:
        return False
    org = session.get(Organisation, actor.organisation_id)
    if org is None or org.kind not in POLICE_KINDS or assignee.organisation_id != org.id:
        return False
    return reach_of(session, actor).covers(place)


def assign(session: Session, actor: Actor, actor_user: User | None, *, user_id: int, place_id: int, legal_basis: str,
           valid_from: datetime | None = None, valid_to: datetime | None = None) -> DistrictAssignment:
    """Assign ``user_id`` to ``place_id``; ``actor_user`` None is the installation itself (demo, command line)."""
    assignee = session.get(User, user_id)
    place = session.get(Place, place_id)
    if assignee is None or place is None or (
            actor_user is not None and not may_assign(session, actor_user, assignee, place)):
        raise AssignmentDenied("user or place not found")
    if assignee.role not in ASSIGNABLE_ROLES:
        raise AssignmentError(f"only inspectors and police operators are assigned to districts, not {assignee.role}")
    if place.kind not in ASSIGNABLE_KINDS:
        raise AssignmentError(f"assign a district (or a settlement or region), not a {place.kind}")
    if not legal_basis or not legal_basis.strip():
        raise AssignmentError("an assignment needs a legal basis (the order that assigns the inspector)")
    valid_from, valid_to = _utc(valid_from), _utc(valid_to)
    if valid_from and valid_to and valid_to <= valid_from:
        raise AssignmentError("valid_to must be after valid_from")
    row = DistrictAssignment(user_id=assignee.id, place_id=place.id, legal_basis=legal_basis.strip(),
                             assigned_by=actor.user_id, valid_from=valid_from, valid_to=valid_to)
    session.add(row)
    session.flush()
    audit.append(session, actor, ASSIGNED, object_type="district_assignment", object_id=row.id,
                 legal_basis=row.legal_basis,
                 details={"user_id": assignee.id, "username": assignee.username, "place_id": place.id,
                          "valid_from": valid_from.isoformat() if valid_from else None,
                          "valid_to": valid_to.isoformat() if valid_to else None})
    return row


def end(session: Session, actor: Actor, actor_user: User | None, row: DistrictAssignment) -> DistrictAssignment:
    assignee = session.get(User, row.user_id)
    place = session.get(Place, row.place_id)
    if actor_user is not None and (assignee is None or place is None
                                   or not may_assign(session, actor_user, assignee, place)):
        raise AssignmentDenied("assignment not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        row.revoked_by = actor.user_id
        audit.append(session, actor, ASSIGNMENT_ENDED, object_type="district_assignment", object_id=row.id,
                     legal_basis=row.legal_basis, details={"user_id": row.user_id, "place_id": row.place_id})
    return row


def visible_assignments(session: Session, user: User) -> Select:
    """Platform admins and auditors: all. A police organisation's admin: those of its staff. Anyone: their own."""
    query = select(DistrictAssignment)
    if is_platform_admin(user) or user.role == Role.AUDITOR:
        return query
    mine = DistrictAssignment.user_id == user.id
    if user.role == Role.ORGANISATION_ADMIN and user.organisation_id is not None:
        org = session.get(Organisation, user.organisation_id)
        if org is not None and org.kind in POLICE_KINDS:
            staff = select(User.id).where(User.organisation_id == org.id)
            return query.where(or_(mine, DistrictAssignment.user_id.in_(staff)))
    return query.where(mine)


def assignment_out(session: Session, row: DistrictAssignment, now: datetime | None = None) -> dict:
    now = now or utcnow()
    user = session.get(User, row.user_id)
    place = session.get(Place, row.place_id)
    active = (row.revoked_at is None and (row.valid_from is None or row.valid_from <= now)
              and (row.valid_to is None or row.valid_to > now))
    return {"id": row.id, "user_id": row.user_id, "username": user.username if user else None,
            "place_id": row.place_id, "place": place.name if place else None, "legal_basis": row.legal_basis,
            "assigned_by": row.assigned_by, "assigned_at": row.assigned_at, "valid_from": row.valid_from,
            "valid_to": row.valid_to, "revoked_at": row.revoked_at, "revoked_by": row.revoked_by, "active": active}


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
