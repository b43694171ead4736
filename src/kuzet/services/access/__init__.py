"""Who may see and do what: grants evaluated against the place tree. Deny by default.

A grant names a user or an organisation (every member inherits it), a target (a place subtree or one camera), a set
of rights, a validity window and a legal basis. Platform admins hold every right; every other role holds exactly what
its grants give it. The role only widens what kind of object a user may administer (see ``may_administer``).

What an account may hand out to others (accounts, memberships, grants) is decided in ``access.delegation``.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from functools import lru_cache
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, Select, and_, exists, false, func, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from kuzet.domain.access import (
    ALL_RIGHTS,
    AUDIT_READERS,
    GrantWindow,
    HeldGrant,
    Reach,
    Right,
    Role,
    parse_rights,
)
from kuzet.services.access.cache import cache_of, changed_in
from kuzet.store.db import by_bytes, load_by_ids, utcnow
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


def grant_has_right(right: Right | None):  # noqa: ANN201
    """SQL: the grant in the query carries ``right`` (any grant if None)."""
    # Rights are a comma-separated list; wrap in commas to match whole names only.
    if right is None:
        return True
    return ("," + Grant.rights + ",").like(f"%,{right.value},%")


_has_right = grant_has_right


def _not_ended(user: User, now: datetime):  # noqa: ANN202
    """SQL: the caller's grants that have not ended at ``now`` (including those that start later)."""
    return and_(
        _holder(user),
        or_(Grant.revoked_at.is_(None), Grant.revoked_at > now),
        or_(Grant.valid_to.is_(None), Grant.valid_to > now),
    )


def load_reach(session: Session, user: User, now: datetime | None = None) -> Reach:
    """The caller's grants with the paths of their places: one query."""
    now = now or utcnow()
    rows = session.execute(
        select(Grant.id, Grant.rights, Place.path, Grant.camera_id, Grant.valid_from, Grant.valid_to,
               Grant.revoked_at, Grant.archive_days, Grant.legal_basis, Grant.place_id)
        .outerjoin(Place, Place.id == Grant.place_id)
        .where(_not_ended(user, now))
        .order_by(Grant.id)
    ).all()
    grants = []
    for r in rows:
        try:
            rights = parse_rights(r.rights)
        except ValueError:
            continue  # a grant whose rights no longer parse gives nothing
        grants.append(HeldGrant(id=r.id, rights=rights, place_path=r.path if r.place_id is not None else None,
                                camera_id=r.camera_id, window=GrantWindow(r.valid_from, r.valid_to, r.revoked_at),
                                archive_days=r.archive_days, legal_basis=r.legal_basis))
    return Reach(tuple(grants))


def reach(session: Session, user: User, now: datetime | None = None) -> Reach:
    """What the caller's grants reach: from the per-caller cache (``access.cache``) unless ``now`` asks for another
    instant than the present, else loaded with one query."""
    if now is not None:
        return load_reach(session, user, now)
    now = utcnow()
    cache = cache_of(session.get_bind())
    if cache is None or changed_in(session):
        return load_reach(session, user, now)
    key = (user.id, user.organisation_id)
    found = cache.get(key, now)
    if found is not None:
        return found
    generation = cache.generation
    loaded = load_reach(session, user, now)
    cache.put(key, loaded, now, generation)
    return loaded


def _place_path(session: Session, place_id: int | None) -> str | None:
    """The place's path; from the session's identity map when the page's places were loaded with it."""
    if place_id is None:
        return None
    place = session.get(Place, place_id)
    return place.path if place is not None else None


def path_within(column, prefixes: list[str]):  # noqa: ANN001, ANN201
    """SQL: ``column`` (a materialised path ``/1/5/``) lies in one of the subtrees ``prefixes``.

    A subtree is a range of the path's index: every path that starts with ``/1/5/`` sorts from ``/1/5/`` up to, not
    including, ``/1/50`` (``0`` follows ``/``), compared byte by byte. ``LIKE '/1/5/%'`` says the same but neither
    SQLite nor PostgreSQL (outside the C collation) uses an index for it: with a hundred grants it measured 90 ms
    against 0.2 ms for the ranges (docs/access.md)."""
    if not prefixes:
        return false()
    conds = []
    for p in prefixes:
        if p.endswith("/"):
            binary = by_bytes(column)
            conds.append(and_(binary >= p, binary < p[:-1] + "0"))
        else:
            conds.append(column.startswith(p, autoescape=True))
    return or_(*conds)


def camera_scope(reach_: Reach, right: Right | None, now: datetime | None = None):  # noqa: ANN201
    """SQL on ``Camera``: the cameras a reach covers with ``right`` (any right if None). Uncorrelated: the places
    subquery is evaluated once per statement, not once per camera."""
    now = now or utcnow()
    conds = []
    ids = reach_.camera_ids(right, now)
    if ids:
        conds.append(Camera.id.in_(ids))
    prefixes = reach_.place_prefixes(right, now)
    if prefixes:
        conds.append(Camera.place_id.in_(select(Place.id).where(path_within(Place.path, prefixes))))
    return or_(*conds) if conds else false()


# A reach of more subtrees than this is not checked for covering every camera (the check would cost more than the
# filter it saves; such a caller is answered with the filter, which is never wrong).
COVER_CHECK_PREFIXES = 8


def _ancestors(path: str) -> list[str]:
    """The paths of the places above ``/1/5/9/``: ``/1/``, ``/1/5/``."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts))]


@lru_cache(maxsize=1024)
def _uncovered(prefixes: tuple[str, ...]):  # noqa: ANN202
    """SQL: some camera lies outside the subtrees ``prefixes`` (minimal, every one ending in ``/``).

    Every camera sits in a place (``cameras.place_id`` is not null), so no camera lies outside when every place lies
    inside a subtree, but for the places *above* the subtrees (a control centre's grant on the city leaves the region
    above it uncovered), and no camera sits on one of those. Both are read from the path index over the gaps between
    the subtrees, skipping the few places above them: a handful of rows whatever the size of the city, and the first
    place of another district ends the search for a district unit."""
    binary = by_bytes(Place.path)
    above = sorted({a for p in prefixes for a in _ancestors(p)})
    gaps, low = [], None
    for p in sorted(prefixes):
        gaps.append(and_(binary >= low, binary < p) if low is not None else binary < p)
        low = p[:-1] + "0"
    gaps.append(binary >= low)
    outside = [exists(select(Place.id).where(gap, binary.not_in(above) if above else True)) for gap in gaps]
    if above:
        outside.append(exists(select(Camera.id).where(
            Camera.place_id.in_(select(Place.id).where(binary.in_(above))))))
    return select(or_(*outside))  # built once per set of subtrees: the statement object is reused


def sees_every_camera(session: Session, user: User, right: Right | None = None, now: datetime | None = None) -> bool:
    """Whether the caller's reach covers every camera of the installation (with ``right``): platform admins, and
    holders of a grant on the whole city (the control centre). Their lists need no per-camera condition, so the
    database walks the list's order index and stops at the page's end instead of reading every visible camera's
    rows and sorting them: the cost of a page does not grow with the city. One statement, on the index of place
    paths; ``False`` (the filter stays) whenever in doubt."""
    if is_platform_admin(user):
        return True
    at = now or utcnow()
    prefixes = reach(session, user, now).place_prefixes(right, at)
    if not prefixes or len(prefixes) > COVER_CHECK_PREFIXES or not all(p.endswith("/") for p in prefixes):
        return False
    return not session.scalar(_uncovered(tuple(prefixes)))


# A list's page read in the list's order (keyset pages, newest first), on SQLite: walking the list's order index reads
# about page size × cameras ÷ seen rows, each checked against the caller's cameras; the camera index costs a seek and
# a few rows per visible camera (SQLite leaves each camera's range once it cannot make the page) and about as much
# per camera as the walk per row. The walk is chosen when it reads at most this many rows per visible camera: for a
# page of 50, a caller who sees ≥ 22 % of 1,000 cameras or ≥ 7 % of 10,000. Measured in issue 16's seventh pass
# (docs/benchmarks.md): a district of 500 cameras gained with the walk at 1,000 cameras (100 rows) and lost at
# 10,000 (1,000 rows).
ORDER_WALK_ROWS_PER_CAMERA = 1
SHARE_MAX_AGE = 60.0  # seconds a counted share is reused (it only chooses a plan: a stale one is never wrong)

_shares: WeakKeyDictionary[Engine, dict[tuple, tuple[tuple[int, int], float]]] = WeakKeyDictionary()
_shares_lock = threading.Lock()


def camera_share(session: Session, user: User, right: Right | None = None,
                 now: datetime | None = None) -> tuple[int, int]:
    """How many cameras the caller sees with ``right``, and how many the installation has. Counted in one statement
    (the reach's cameras on the place-path and camera indexes, and all cameras) and reused for ``SHARE_MAX_AGE``
    seconds per reach and database, and until the reach cache's next invalidation: a list request does not count
    again. It only chooses a plan (``camera_filter``)."""
    at = now or utcnow()
    the_reach = reach(session, user, now)
    prefixes, ids = the_reach.place_prefixes(right, at), the_reach.camera_ids(right, at)
    engine = session.get_bind()
    cache = cache_of(engine)
    key = (tuple(sorted(prefixes)), tuple(sorted(ids)), cache.generation if cache is not None else None)
    with _shares_lock:
        memo = _shares.setdefault(engine, {})
        found = memo.get(key)
    if found is not None and time.monotonic() - found[1] <= SHARE_MAX_AGE:
        return found[0]
    seen, total = session.execute(select(
        select(func.count()).select_from(Camera).where(camera_scope(the_reach, right, at)).scalar_subquery(),
        select(func.count()).select_from(Camera).scalar_subquery())).one()
    with _shares_lock:
        if len(memo) >= 10_000:
            memo.clear()
        memo[key] = ((seen, total), time.monotonic())
    return seen, total


def _not_indexed(column):  # noqa: ANN001, ANN202
    """``+column``: the same value, but SQLite will not serve a condition on it from the column's index (the unary
    ``+`` is SQLite's documented way to disqualify a term from an index; SQLAlchemy has no operator for it)."""
    return UnaryExpression(column.expression if hasattr(column, "expression") else column,
                           operator=operators.custom_op("+"), type_=column.type)


def camera_filter(session: Session, user: User, column, right: Right | None = None,  # noqa: ANN001
                  now: datetime | None = None, *, page_size: int | None = None):  # noqa: ANN201
    """SQL on a camera id ``column`` (``events.camera_id``, a foreign key to the cameras that cascades): the cameras
    the caller may see with ``right``; None when the caller sees every camera (no condition at all, see
    ``sees_every_camera``).

    ``page_size``: the condition is for a page of that many rows of a list read in its own order (a keyset page,
    newest first). On SQLite the plan then follows the share of the cameras the caller sees: walking the list's
    order index reads about ``page_size ÷ share`` rows, each checked against the caller's cameras, and stops at the
    page's end; the camera index seeks every visible camera's rows and sorts what may make the page. When the walk
    reads at most ``ORDER_WALK_ROWS_PER_CAMERA`` rows per visible camera (for a page of 50: ≥ 7 % of a 10,000
    camera city, ≥ 22 % of a 1,000 camera one) the condition is put on ``+column``, which SQLite does not
    serve from the column's index, so the order index drives the page; a caller who sees few cameras (a resident)
    keeps the camera index, which reads just their rows where the walk could read the whole table. PostgreSQL
    chooses between the two by itself and gets the plain condition. The rows are the same either way."""
    if sees_every_camera(session, user, right, now):
        return None
    the_reach, at = reach(session, user, now), now or utcnow()
    if not the_reach.place_prefixes(right, at):
        # cameras granted one by one (a resident): their ids straight on the column, so the planner knows how few
        # they are (SQLite walked the order index for a subquery of two ids). The same rows: every row's camera
        # exists (a foreign key that cascades).
        cameras = the_reach.camera_ids(right, at)
    else:
        cameras = select(Camera.id).where(camera_scope(the_reach, right, at))
    if page_size and session.get_bind().dialect.name == "sqlite" and _walk_order(session, user, right, now, page_size):
        return _not_indexed(column).in_(cameras)
    return column.in_(cameras)


def _walk_order(session: Session, user: User, right: Right | None, now: datetime | None, page_size: int) -> bool:
    """Whether walking the order index (~ page size × cameras ÷ seen rows) costs less than the camera index
    (~ a few rows per seen camera): ``ORDER_WALK_ROWS_PER_CAMERA``."""
    seen, total = camera_share(session, user, right, now)
    return seen > 0 and page_size * total / seen <= ORDER_WALK_ROWS_PER_CAMERA * seen


def visible_cameras(user: User, right: Right | None = None, now: datetime | None = None,
                    session: Session | None = None) -> Select:
    """SELECT of the cameras this user may see (with ``right`` if given). With ``session``, from the caller's
    (cached) reach, and without any condition when that reach covers every camera; without, one self-contained
    statement."""
    query = select(Camera)
    if is_platform_admin(user):
        return query
    if session is not None:
        if sees_every_camera(session, user, right, now):
            return query
        return query.where(camera_scope(reach(session, user, now), right, now))
    return query.where(_camera_grant_clause(user, right, now))


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


def camera_rights(session: Session, user: User, camera: Camera, now: datetime | None = None) -> frozenset[Right]:
    if is_platform_admin(user):
        return ALL_RIGHTS
    return reach(session, user, now).camera_rights(camera.id, _place_path(session, camera.place_id),
                                                   now or utcnow())


def rights_on_cameras(session: Session, user: User, cameras: list[Camera], now: datetime | None = None,
                      paths: dict[int, str] | None = None) -> dict[int, frozenset[Right]]:
    """Rights on every camera of a page: the caller's reach and the cameras' place paths (``paths`` by place id when
    the caller read them already), two queries at most."""
    if is_platform_admin(user):
        return {c.id: ALL_RIGHTS for c in cameras}
    if paths is None:
        load_places(session, {c.place_id for c in cameras})
    the_reach, at = reach(session, user, now), now or utcnow()
    return {c.id: the_reach.camera_rights(c.id, paths.get(c.place_id) if paths is not None
                                          else _place_path(session, c.place_id), at) for c in cameras}


def place_names_and_paths(session: Session, place_ids: set[int]) -> dict[int, tuple[str, str]]:
    """(name, path) of each place, by id, in one statement reading only those two columns (a page of cameras needs
    no more of its places)."""
    if not place_ids:
        return {}
    return {i: (name, path) for i, name, path in session.execute(
        select(Place.id, Place.name, Place.path).where(Place.id.in_(sorted(place_ids))))}


def _paths(session: Session, place_ids: set[int]) -> dict[int, str]:
    if not place_ids:
        return {}
    return dict(session.execute(select(Place.id, Place.path).where(Place.id.in_(place_ids))).all())


def load_places(session: Session, place_ids: set[int]) -> dict[int, Place]:
    """Places by id in one query (they stay in the session's identity map for ``session.get``)."""
    return load_by_ids(session, Place, place_ids)


def archive_floor(session: Session, user: User, camera: Camera, now: datetime | None = None) -> datetime | None:
    """The earliest instant of the camera's archive the user may see: None for all of it. A grant with
    ``archive_days`` (a subscriber's plan) reaches only that far back; the widest covering grant wins."""
    if is_platform_admin(user):
        return None
    at = now or utcnow()
    reached, days = reach(session, user, now).archive_days(camera.id, _place_path(session, camera.place_id), at)
    return at - timedelta(days=days) if reached and days is not None else None


def place_rights(session: Session, user: User, place: Place, now: datetime | None = None) -> frozenset[Right]:
    """Rights a user holds on a whole place (through a grant on it or on a place above it)."""
    if is_platform_admin(user):
        return ALL_RIGHTS
    return reach(session, user, now).place_rights(place.path, now or utcnow())


def visible_places(session: Session, user: User, now: datetime | None = None) -> Select:
    """Places inside any subtree the user holds a grant on, plus the places of cameras granted one by one."""
    if is_platform_admin(user) or user.role in (Role.OPERATOR_ADMIN, Role.AUDITOR, Role.ANALYST):
        return select(Place)
    the_reach, at = reach(session, user, now), now or utcnow()
    conds = [path_within(Place.path, the_reach.place_prefixes(None, at))]
    ids = the_reach.camera_ids(None, at)
    if ids:
        conds.append(Place.id.in_(select(Camera.place_id).where(Camera.id.in_(ids))))
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
    return reach(session, user, now).legal_basis(camera.id, _place_path(session, camera.place_id), right,
                                                 now or utcnow())


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
