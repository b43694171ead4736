"""Delegation: nobody hands out more than they hold (docs/access.md, "Delegation").

Every route and command that creates or changes accounts, or creates or revokes grants, asks this module first. The
rule has three parts:

- **Accounts.** Platform admins create any account. Admins of an organisation (``organisation_admin``, and the
  telecom's ``operator_admin``) create accounts of *their own organisation only*, and only in roles that carry no
  reach beyond that organisation's grants — except that the admin of a *police* organisation creates its police
  staff (operators, inspectors, crews, analysts). Operator admins also create residents without an organisation
  (subscribers). A home place (``place_id``) must lie inside the places the creator manages (or, for a police
  organisation's admin, inside the area the organisation serves). Platform admins, operator admins and auditors are
  created by platform admins only.
- **Changes to accounts** ((de)activation, names) are made only by someone who could create that account now; nobody
  deactivates their own account, and only platform admins touch platform admins.
- **Grants.** A grant hands out only rights the grantor holds on that very target, for no longer than the grantor
  holds them, never to the grantor or the grantor's own organisation, and ``manage`` only from platform admins. The
  grantor must manage the target. Rights are parsed exactly: ``" manage"`` is not ``manage``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, false, or_, select
from sqlalchemy.orm import Session

from kuzet.domain.access import (
    DELEGATING_ROLES,
    ORGANISATION_STAFF_ROLES,
    PLATFORM_ONLY_ROLES,
    POLICE_KINDS,
    POLICE_STAFF_ROLES,
    Right,
    Role,
    parse_rights,
    parse_rights_exactly,
)
from kuzet.services.access import active_grant_filter, grant_has_right, is_platform_admin
from kuzet.store.models import Camera, Grant, Organisation, Place, User


class DelegationDenied(Exception):
    """The actor may not hand this out. ``hidden``: the target lies outside the actor's reach (answer 404)."""

    def __init__(self, message: str, *, hidden: bool = False) -> None:
        super().__init__(message)
        self.hidden = hidden


class InvalidDelegation(ValueError):
    """The request itself is malformed (an unknown or padded right, a missing organisation)."""


# --- what the actor reaches -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reach:
    """The places an actor administers: subtrees it holds ``manage`` on, and for the admin of a police organisation
    the area that organisation serves."""

    paths: tuple[str, ...]
    organisation: Organisation | None

    @property
    def police(self) -> bool:
        return self.organisation is not None and self.organisation.kind in POLICE_KINDS

    def covers(self, place: Place | None) -> bool:
        return place is not None and any(place.path.startswith(p) for p in self.paths)


def reach_of(session: Session, actor: User) -> Reach:
    paths = set(session.scalars(
        select(Place.path).join(Grant, Grant.place_id == Place.id)
        .where(active_grant_filter(actor), grant_has_right(Right.MANAGE))))
    org = session.get(Organisation, actor.organisation_id) if actor.organisation_id else None
    if org is not None and org.kind in POLICE_KINDS and actor.role == Role.ORGANISATION_ADMIN and org.place_id:
        area = session.get(Place, org.place_id)
        if area is not None:
            paths.add(area.path)
    return Reach(tuple(sorted(paths)), org)


def _roles_created_by(actor: User, reach: Reach) -> frozenset[Role]:
    if actor.role not in DELEGATING_ROLES or reach.organisation is None and actor.role != Role.OPERATOR_ADMIN:
        return frozenset()
    if reach.police:
        return POLICE_STAFF_ROLES if actor.role == Role.ORGANISATION_ADMIN else frozenset()
    return ORGANISATION_STAFF_ROLES


# --- accounts ---------------------------------------------------------------------------------------------------------

def check_new_account(session: Session, creator: User, *, role: Role, organisation_id: int | None,
                      place_id: int | None) -> None:
    """Raise unless ``creator`` may create an account with this role, organisation and home place."""
    if place_id is not None and session.get(Place, place_id) is None:
        raise DelegationDenied("place not found", hidden=True)
    if is_platform_admin(creator):
        return
    if creator.role not in DELEGATING_ROLES:
        raise DelegationDenied("your role may not create accounts")
    if role in PLATFORM_ONLY_ROLES:
        raise DelegationDenied(f"only platform admins create {role.value} accounts")
    reach = reach_of(session, creator)
    if organisation_id is None:
        if not (creator.role == Role.OPERATOR_ADMIN and role == Role.RESIDENT):
            raise InvalidDelegation("accounts you create belong to your organisation: give its organisation_id")
    elif organisation_id != creator.organisation_id:
        raise DelegationDenied("you add accounts to your own organisation only")
    if role not in _roles_created_by(creator, reach):
        by = ("platform admins or the admin of that police organisation" if role in POLICE_STAFF_ROLES
              else "platform admins")
        raise DelegationDenied(f"{role.value} accounts of this organisation are created by {by}")
    if place_id is not None and not reach.covers(session.get(Place, place_id)):
        raise DelegationDenied("place not found", hidden=True)


def administers(session: Session, actor: User, target: User, reach: Reach | None = None) -> bool:
    """Whether ``actor`` could create ``target``'s account as it is now (and so may change it)."""
    if is_platform_admin(actor):
        return True
    if actor.role not in DELEGATING_ROLES or target.id == actor.id:
        return False
    reach = reach or reach_of(session, actor)
    role = Role(target.role)
    if role in PLATFORM_ONLY_ROLES or role not in _roles_created_by(actor, reach):
        return False
    if target.organisation_id is None:
        if not (actor.role == Role.OPERATOR_ADMIN and role == Role.RESIDENT):
            return False
    elif target.organisation_id != actor.organisation_id:
        return False
    return target.place_id is None or reach.covers(session.get(Place, target.place_id))


def administered_users(session: Session, actor: User) -> Select:
    """SELECT of the accounts ``actor`` may list: itself and those it administers; every account for platform admins
    and auditors (who read, never change)."""
    query = select(User)
    if is_platform_admin(actor) or actor.role == Role.AUDITOR:
        return query
    if actor.role not in DELEGATING_ROLES:
        return query.where(User.id == actor.id)
    reach = reach_of(session, actor)
    roles = [r.value for r in _roles_created_by(actor, reach)]
    home_inside = or_(User.place_id.is_(None), User.place_id.in_(
        select(Place.id).where(or_(false(), *[Place.path.startswith(p) for p in reach.paths]))))
    members = and_(User.organisation_id == actor.organisation_id) if actor.organisation_id else false()
    subscribers = (and_(User.organisation_id.is_(None), User.role == Role.RESIDENT.value)
                   if actor.role == Role.OPERATOR_ADMIN else false())
    return query.where(or_(User.id == actor.id, and_(or_(members, subscribers), User.role.in_(roles), home_inside)))


def check_account_change(session: Session, actor: User, target: User, changes: set[str]) -> None:
    """Raise unless ``actor`` may make these changes to ``target`` (``is_active``, ``full_name``, ``language``,
    ``timezone``)."""
    if target.id == actor.id:
        if "is_active" in changes:
            raise DelegationDenied("you may not (de)activate your own account")
        return
    if not administers(session, actor, target):
        raise DelegationDenied("user not found", hidden=True)


# --- grants -----------------------------------------------------------------------------------------------------------

def _target(session: Session, place_id: int | None, camera_id: int | None) -> Place | Camera | None:
    if camera_id is not None:
        return session.get(Camera, camera_id)
    return session.get(Place, place_id) if place_id is not None else None


def _held_on(session: Session, actor: User, target: Place | Camera) -> list[Grant]:
    """The actor's active grants that cover ``target`` (the camera itself, or a place subtree holding it)."""
    place = session.get(Place, target.place_id) if isinstance(target, Camera) else target
    covering = []
    grants = session.scalars(select(Grant).where(active_grant_filter(actor))).all()
    paths = dict(session.execute(select(Place.id, Place.path).where(
        Place.id.in_({g.place_id for g in grants if g.place_id}))).all())
    for g in grants:
        if isinstance(target, Camera) and g.camera_id == target.id:
            covering.append(g)
        elif g.place_id is not None and place is not None and place.path.startswith(paths.get(g.place_id, "\0")):
            covering.append(g)
    return covering


def check_grant(session: Session, grantor: User, *, rights: list[str], user_id: int | None,
                organisation_id: int | None, place_id: int | None, camera_id: int | None,
                valid_to: datetime | None) -> frozenset[Right]:
    """The rights of a grant ``grantor`` may create, parsed exactly; raises if any part exceeds what it holds."""
    try:
        wanted = parse_rights_exactly(rights)
    except ValueError as exc:
        raise InvalidDelegation(str(exc)) from None
    if is_platform_admin(grantor):
        return wanted
    if grantor.role not in DELEGATING_ROLES:
        raise DelegationDenied("your role may not hand out rights")
    target = _target(session, place_id, camera_id)
    if target is None:
        raise DelegationDenied("place or camera not found", hidden=True)
    held = _held_on(session, grantor, target)
    if not any(Right.MANAGE in parse_rights(g.rights) for g in held):
        raise DelegationDenied("place or camera not found", hidden=True)
    if Right.MANAGE in wanted:
        raise DelegationDenied("only platform admins hand out the manage right")
    if user_id is not None and user_id == grantor.id:
        raise DelegationDenied("nobody grants rights to themselves")
    if organisation_id is not None and organisation_id == grantor.organisation_id:
        raise DelegationDenied("nobody grants rights to their own organisation")
    for right in sorted(wanted):
        covering = [g for g in held if right in parse_rights(g.rights)]
        if not covering:
            raise DelegationDenied(f"you do not hold {right.value} on this {_kind(target)} and cannot hand it out")
        if not any(g.valid_to is None or (valid_to is not None and _aware(valid_to) <= _aware(g.valid_to))
                   for g in covering):
            until = max(_aware(g.valid_to) for g in covering if g.valid_to is not None)
            raise DelegationDenied(f"you hold {right.value} here only until {until.isoformat()}: "
                                   f"the grant must end by then (valid_to)")
    return wanted


def check_revoke(session: Session, actor: User, grant: Grant) -> None:
    """Raise unless ``actor`` may revoke ``grant``: platform admins, its creator, or a manager of its target who could
    have created it."""
    if is_platform_admin(actor) or (grant.created_by is not None and grant.created_by == actor.id):
        return
    try:
        check_grant(session, actor, rights=sorted(parse_rights(grant.rights)), user_id=grant.user_id,
                    organisation_id=grant.organisation_id, place_id=grant.place_id, camera_id=grant.camera_id,
                    valid_to=grant.valid_to)
    except (DelegationDenied, InvalidDelegation):
        raise DelegationDenied("grant not found", hidden=True) from None


def _kind(target: Place | Camera) -> str:
    return "camera" if isinstance(target, Camera) else "place"


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
