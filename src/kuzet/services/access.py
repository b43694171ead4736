"""Who may see and do what: grants evaluated against the place tree. Deny by default.

A grant names a user or an organisation (every member inherits it), a target (a place subtree or one camera), a set
of rights, a validity window and a legal basis. Platform admins hold every right; every other role holds exactly what
its grants give it. The role only widens what kind of object a user may administer (see ``may_administer``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from kuzet.domain.access import ALL_RIGHTS, AUDIT_READERS, Right, Role, parse_rights
from kuzet.store.db import utcnow
from kuzet.store.models import Camera, Grant, Organisation, Place, User


def is_platform_admin(user: User) -> bool:
    return user.role == Role.PLATFORM_ADMIN


def _holder(user: User):  # noqa: ANN202
    clauses = [Grant.user_id == user.id]
    if user.organisation_id is not None:
        clauses.append(Grant.organisation_id == user.organisation_id)
    return or_(*clauses)


def active_grant_filter(user: User, now: datetime | None = None):  # noqa: ANN201
    now = now or utcnow()
    return and_(
        _holder(user),
        or_(Grant.revoked_at.is_(None), Grant.revoked_at > now),
        or_(Grant.valid_from.is_(None), Grant.valid_from <= now),
        or_(Grant.valid_to.is_(None), Grant.valid_to > now),
    )


def _has_right(right: Right | None):  # noqa: ANN202
    # Rights are a comma-separated list; wrap in commas to match whole names only.
    if right is None:
        return True
    return ("," + Grant.rights + ",").like(f"%,{right.value},%")


def _camera_grant_clause(user: User, right: Right | None, now: datetime | None):  # noqa: ANN202
    """SQL: an active grant covers the camera in the outer query (directly, or through its place subtree)."""
    gplace = aliased(Place)
    cplace = aliased(Place)
    via_place = (
        select(Grant.id)
        .join(gplace, gplace.id == Grant.place_id)
        .join(cplace, cplace.id == Camera.place_id)
        .where(active_grant_filter(user, now), _has_right(right), cplace.path.like(gplace.path + "%"))
    )
    direct = select(Grant.id).where(active_grant_filter(user, now), _has_right(right), Grant.camera_id == Camera.id)
    return or_(exists(direct), exists(via_place))


def visible_cameras(user: User, right: Right | None = None, now: datetime | None = None) -> Select:
    """SELECT of the cameras this user may see (with ``right`` if given)."""
    query = select(Camera)
    if is_platform_admin(user):
        return query
    return query.where(_camera_grant_clause(user, right, now))


def camera_rights(session: Session, user: User, camera: Camera, now: datetime | None = None) -> frozenset[Right]:
    if is_platform_admin(user):
        return ALL_RIGHTS
    place = session.get(Place, camera.place_id)
    rights: set[Right] = set()
    grants = session.scalars(select(Grant).where(active_grant_filter(user, now))).all()
    place_paths = _paths(session, {g.place_id for g in grants if g.place_id})
    for g in grants:
        if g.camera_id == camera.id or (
            g.place_id is not None and place is not None and place.path.startswith(place_paths.get(g.place_id, "\0"))
        ):
            rights |= parse_rights(g.rights)
    return frozenset(rights)


def _paths(session: Session, place_ids: set[int]) -> dict[int, str]:
    if not place_ids:
        return {}
    return dict(session.execute(select(Place.id, Place.path).where(Place.id.in_(place_ids))).all())


def place_rights(session: Session, user: User, place: Place, now: datetime | None = None) -> frozenset[Right]:
    """Rights a user holds on a whole place (through a grant on it or on a place above it)."""
    if is_platform_admin(user):
        return ALL_RIGHTS
    grants = session.scalars(
        select(Grant).where(active_grant_filter(user, now), Grant.place_id.is_not(None))
    ).all()
    paths = _paths(session, {g.place_id for g in grants})
    rights: set[Right] = set()
    for g in grants:
        if place.path.startswith(paths.get(g.place_id, "\0")):
            rights |= parse_rights(g.rights)
    return frozenset(rights)


def visible_places(session: Session, user: User, now: datetime | None = None) -> Select:
    """Places inside any subtree the user holds a grant on, plus the places of cameras granted one by one."""
    if is_platform_admin(user) or user.role in (Role.OPERATOR_ADMIN, Role.AUDITOR, Role.ANALYST):
        return select(Place)
    grants = session.scalars(select(Grant).where(active_grant_filter(user, now))).all()
    paths = list(_paths(session, {g.place_id for g in grants if g.place_id}).values())
    camera_places = select(Camera.place_id).where(Camera.id.in_([g.camera_id for g in grants if g.camera_id]))
    conds = [Place.path.startswith(p) for p in paths] + [Place.id.in_(camera_places)]
    return select(Place).where(or_(*conds))


def may_read_audit(user: User) -> bool:
    return Role(user.role) in AUDIT_READERS


def may_administer(user: User, what: str) -> bool:
    """Role-level permission to administer a kind of object.

    The target must still lie within the user's MANAGE grants.
    """
    role = Role(user.role)
    if role == Role.PLATFORM_ADMIN:
        return True
    table = {
        "place": {Role.OPERATOR_ADMIN},
        "camera": {Role.OPERATOR_ADMIN, Role.ORGANISATION_ADMIN},
        "grant": {Role.OPERATOR_ADMIN, Role.ORGANISATION_ADMIN},
        "user": {Role.OPERATOR_ADMIN, Role.ORGANISATION_ADMIN},
        "organisation": set(),
    }
    return role in table.get(what, set())


def legal_basis_for(session: Session, user: User, camera: Camera, right: Right,
                    now: datetime | None = None) -> str:
    """The legal basis of a grant that gives ``user`` ``right`` on ``camera`` (for the audit record of a view)."""
    if is_platform_admin(user):
        return "platform administration"
    place = session.get(Place, camera.place_id)
    grants = session.scalars(select(Grant).where(active_grant_filter(user, now))).all()
    paths = _paths(session, {g.place_id for g in grants if g.place_id})
    for g in grants:
        covers = g.camera_id == camera.id or (
            g.place_id is not None and place is not None and place.path.startswith(paths.get(g.place_id, "\0")))
        if covers and right in parse_rights(g.rights):
            return g.legal_basis
    return ""


def organisations_seeing(session: Session, camera: Camera, right: Right = Right.VIEW_LIVE,
                         kinds: frozenset[str] | None = None, now: datetime | None = None) -> list[Organisation]:
    """Organisations holding an active grant with ``right`` on the camera (directly or through its place subtree),
    optionally only of the given kinds: where an alarm on the camera is routed."""
    now = now or utcnow()
    place = session.get(Place, camera.place_id)
    grants = session.scalars(select(Grant).where(
        Grant.organisation_id.is_not(None),
        or_(Grant.revoked_at.is_(None), Grant.revoked_at > now),
        or_(Grant.valid_from.is_(None), Grant.valid_from <= now),
        or_(Grant.valid_to.is_(None), Grant.valid_to > now),
    )).all()
    paths = _paths(session, {g.place_id for g in grants if g.place_id})
    ids = {
        g.organisation_id for g in grants
        if right in parse_rights(g.rights) and (
            g.camera_id == camera.id
            or (g.place_id is not None and place is not None and place.path.startswith(paths.get(g.place_id, "\0"))))
    }
    if not ids:
        return []
    query = select(Organisation).where(Organisation.id.in_(ids)).order_by(Organisation.id)
    if kinds is not None:
        query = query.where(Organisation.kind.in_(list(kinds)))
    return list(session.scalars(query))
