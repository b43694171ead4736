"""Duties in a unit and the reach they give.

A user's duty for body-worn video is explicit (table ``bodycam_duties``), like a district assignment: an officer sees
the recordings they made; the unit's supervisors and evidence custodians ("keepers") see and keep every recording of
the unit and check its devices out and in. Platform admins reach everything; the admin of a police organisation
registers its devices and gives its own staff their duties. A role alone gives nothing here.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.domain.access import POLICE_KINDS, Role
from kuzet.domain.bodycams import KEEPER_DUTIES, Action, Duty
from kuzet.services import audit
from kuzet.services.access import is_platform_admin
from kuzet.services.audit import Actor
from kuzet.store.db import utcnow
from kuzet.store.models import Organisation, User
from kuzet.store.models.bodycams import BodycamDevice, BodycamDuty, BodycamRecording


class DutyError(ValueError):
    """The duty itself is wrong (422)."""


class DutyDenied(Exception):
    """Outside the actor's reach (404)."""


def duties_of(session: Session, user: User) -> dict[int, set[Duty]]:
    """The user's active duties, by organisation."""
    if not user.is_active:
        return {}
    out: dict[int, set[Duty]] = {}
    for org_id, duty in session.execute(select(BodycamDuty.organisation_id, BodycamDuty.duty).where(
            BodycamDuty.user_id == user.id, BodycamDuty.ended_at.is_(None))):
        out.setdefault(org_id, set()).add(Duty(duty))
    return out


def kept_units(session: Session, user: User) -> set[int]:
    """Organisations whose recordings and devices the user keeps (supervisor or custodian)."""
    return {org for org, duties in duties_of(session, user).items() if duties & KEEPER_DUTIES}


def administers_unit(user: User, organisation_id: int) -> bool:
    """Platform admins, and the admin of that organisation."""
    return is_platform_admin(user) or (user.role == Role.ORGANISATION_ADMIN and user.organisation_id == organisation_id)


def sees_device(session: Session, user: User, device: BodycamDevice) -> bool:
    return administers_unit(user, device.organisation_id) or device.organisation_id in duties_of(session, user)


def manages_device(session: Session, user: User, device: BodycamDevice) -> bool:
    """Registers, checks out and in, offloads: the unit's admin and keepers."""
    return administers_unit(user, device.organisation_id) or device.organisation_id in kept_units(session, user)


def sees_recording(session: Session, user: User, recording: BodycamRecording) -> bool:
    if is_platform_admin(user):
        return True
    if recording.officer_id == user.id and user.is_active:
        return True
    return recording.organisation_id in kept_units(session, user)


def keeps_recording(session: Session, user: User, recording: BodycamRecording) -> bool:
    """Holds, incident links, disclosure: platform admins and the unit's keepers (not the officer alone)."""
    return is_platform_admin(user) or recording.organisation_id in kept_units(session, user)


def visible_recordings(session: Session, user: User):  # noqa: ANN201 - a SQL clause
    """A WHERE clause for the recordings the user sees."""
    from sqlalchemy import false, or_, true

    if is_platform_admin(user):
        return true()
    if not user.is_active:
        return false()
    return or_(BodycamRecording.officer_id == user.id,
               BodycamRecording.organisation_id.in_(kept_units(session, user) or {-1}))


def visible_units(session: Session, user: User) -> set[int] | None:
    """Organisations whose devices the user sees (None: all of them)."""
    if is_platform_admin(user):
        return None
    units = set(duties_of(session, user))
    if user.role == Role.ORGANISATION_ADMIN and user.organisation_id is not None:
        units.add(user.organisation_id)
    return units


# --- giving and ending duties ----------------------------------------------------------------------------------------

def assign_duty(session: Session, actor: Actor, by: User, *, user_id: int, duty: str, legal_basis: str,
                organisation_id: int | None = None) -> BodycamDuty:
    """Give ``user_id`` a duty in a police unit (their own organisation unless a platform admin names another)."""
    try:
        kind = Duty(duty)
    except ValueError:
        raise DutyError(f"unknown duty {duty!r} (known: {', '.join(d.value for d in Duty)})") from None
    if not legal_basis.strip():
        raise DutyError("a duty needs a legal basis (the order that gives it)")
    user = session.get(User, user_id)
    org_id = organisation_id if organisation_id is not None else (user.organisation_id if user else None)
    if user is None or org_id is None or not administers_unit(by, org_id):
        raise DutyDenied("user not found")
    if user.organisation_id != org_id:
        raise DutyError("the user must be a member of the unit the duty is in")
    org = session.get(Organisation, org_id)
    if org is None or org.kind not in POLICE_KINDS:
        raise DutyError("body-worn video duties are given in police units only")
    existing = session.scalar(select(BodycamDuty).where(
        BodycamDuty.user_id == user.id, BodycamDuty.organisation_id == org_id, BodycamDuty.duty == kind.value,
        BodycamDuty.ended_at.is_(None)))
    if existing is not None:
        return existing
    row = BodycamDuty(user_id=user.id, organisation_id=org_id, duty=kind.value, legal_basis=legal_basis.strip(),
                      assigned_by=by.id)
    session.add(row)
    session.flush()
    audit.append(session, actor, Action.DUTY_ASSIGNED, object_type="bodycam_duty", object_id=row.id,
                 legal_basis=row.legal_basis, details={"user": user.username, "duty": kind.value,
                                                       "organisation_id": org_id})
    return row


def end_duty(session: Session, actor: Actor, by: User, duty_id: int) -> BodycamDuty:
    row = session.get(BodycamDuty, duty_id)
    if row is None or not administers_unit(by, row.organisation_id):
        raise DutyDenied("duty not found")
    if row.ended_at is None:
        row.ended_at = utcnow()
        row.ended_by = by.id
        audit.append(session, actor, Action.DUTY_ENDED, object_type="bodycam_duty", object_id=row.id,
                     details={"user_id": row.user_id, "duty": row.duty})
    return row


def visible_duties(session: Session, user: User) -> list[BodycamDuty]:
    """The caller's own duties, and those of the units they administer or keep."""
    query = select(BodycamDuty).order_by(BodycamDuty.id)
    if not is_platform_admin(user):
        units = kept_units(session, user)
        if user.role == Role.ORGANISATION_ADMIN and user.organisation_id is not None:
            units.add(user.organisation_id)
        from sqlalchemy import or_

        query = query.where(or_(BodycamDuty.user_id == user.id, BodycamDuty.organisation_id.in_(units or {-1})))
    return list(session.scalars(query))
