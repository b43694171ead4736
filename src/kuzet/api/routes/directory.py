"""Places, organisations and users."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import ApiError, not_found
from kuzet.api.routes.common import ERRORS, Id, Paging, delegation_error
from kuzet.api.schemas import OrganisationIn, OrganisationOut, Page, PlaceIn, PlaceOut, UserIn, UserOut, UserPatch
from kuzet.domain.access import Right, Role
from kuzet.domain.audit import Action
from kuzet.domain.places import PlaceKind
from kuzet.installation import Installation
from kuzet.services import access, accounts, audit
from kuzet.services.access import delegation
from kuzet.services.places import PlaceError, create_organisation, create_place
from kuzet.store.models import Organisation, Place, User

router = APIRouter(tags=["directory"], responses=ERRORS)


@router.get("/places", response_model=Page[PlaceOut])
def list_places(paging: Paging = Depends(), kind: PlaceKind | None = None, parent_id: Id | None = None,
                who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session(readonly=True) as session:
        query = access.visible_places(session, who.user)
        if kind:
            query = query.where(Place.kind == kind)
        if parent_id is not None:
            query = query.where(Place.parent_id == parent_id)
        return paging.page(session, query.order_by(Place.path), lambda p: PlaceOut.model_validate(p))


@router.get("/places/{place_id}", response_model=PlaceOut)
def get_place(place_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> PlaceOut:
    with inst.db.session(readonly=True) as session:
        place = session.scalar(access.visible_places(session, who.user).where(Place.id == place_id))
        if place is None:
            raise not_found("place not found")
        return PlaceOut.model_validate(place)


@router.post("/places", response_model=PlaceOut, status_code=201)
def add_place(body: PlaceIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> PlaceOut:
    with inst.db.session() as session:
        if not access.may_administer(who.user, "place"):
            raise ApiError(403, "your role may not create places")
        if not access.is_platform_admin(who.user):
            parent = session.get(Place, body.parent_id) if body.parent_id else None
            if parent is None or Right.MANAGE not in access.place_rights(session, who.user, parent):
                raise not_found("parent place not found")
        try:
            place = create_place(session, who.actor, **body.model_dump())
        except PlaceError as exc:
            raise ApiError(422, str(exc)) from None
        return PlaceOut.model_validate(place)


@router.get("/organisations", response_model=Page[OrganisationOut])
def list_organisations(paging: Paging = Depends(), who: Caller = Depends(caller),
                       inst: Installation = Depends(installation)) -> dict:
    with inst.db.session(readonly=True) as session:
        query = select(Organisation).order_by(Organisation.name)
        if not (access.is_platform_admin(who.user) or who.user.role in (Role.OPERATOR_ADMIN, Role.AUDITOR)):
            query = query.where(Organisation.id == who.user.organisation_id)
        return paging.page(session, query, lambda o: OrganisationOut.model_validate(o))


@router.post("/organisations", response_model=OrganisationOut, status_code=201)
def add_organisation(body: OrganisationIn, who: Caller = Depends(caller),
                     inst: Installation = Depends(installation)) -> OrganisationOut:
    if not access.is_platform_admin(who.user):
        raise ApiError(403, "only platform admins create organisations")
    with inst.db.session() as session:
        try:
            org = create_organisation(session, who.actor, body.name, body.kind, place_id=body.place_id)
        except PlaceError as exc:
            raise ApiError(422, str(exc)) from None
        return OrganisationOut.model_validate(org)


def _users_visible(session, who: Caller):  # noqa: ANN001, ANN202
    return delegation.administered_users(session, who.user).order_by(User.username)


@router.get("/users", response_model=Page[UserOut])
def list_users(paging: Paging = Depends(), who: Caller = Depends(caller),
               inst: Installation = Depends(installation)) -> dict:
    """Yourself and the accounts you administer; every account for platform admins and auditors."""
    with inst.db.session(readonly=True) as session:
        return paging.page(session, _users_visible(session, who), lambda u: UserOut.model_validate(u))


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(user_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> UserOut:
    with inst.db.session(readonly=True) as session:
        user = session.scalar(_users_visible(session, who).where(User.id == user_id))
        if user is None:
            raise not_found("user not found")
        return UserOut.model_validate(user)


@router.post("/users", response_model=UserOut, status_code=201)
def add_user(body: UserIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> UserOut:
    """Create an account within what you may hand out (docs/access.md, "Delegation"). Organisation admins create
    accounts of their own organisation; ``organisation_id`` defaults to it."""
    try:
        role = Role(body.role)
    except ValueError:
        raise ApiError(422, f"unknown role {body.role!r} (known: {', '.join(r.value for r in Role)})") from None
    organisation_id = body.organisation_id
    if "organisation_id" not in body.model_fields_set and who.user.role == Role.ORGANISATION_ADMIN:
        organisation_id = who.user.organisation_id
    with inst.db.session() as session:
        try:
            delegation.check_new_account(session, who.user, role=role, organisation_id=organisation_id,
                                         place_id=body.place_id)
            user = accounts.create_user(session, who.actor, body.username, body.password, role,
                                        full_name=body.full_name, organisation=organisation_id,
                                        place_id=body.place_id, language=body.language,
                                        policy=accounts.password_policy(inst.settings))
        except (delegation.DelegationDenied, delegation.InvalidDelegation) as exc:
            raise delegation_error(exc) from None
        except accounts.HashingBusy as exc:
            raise ApiError(503, str(exc), code=exc.code, headers={"Retry-After": str(exc.retry_after)}) from None
        except accounts.AccountError as exc:
            raise ApiError(409 if "exists" in str(exc) else 422, str(exc)) from None
        return UserOut.model_validate(user)


@router.patch("/users/{user_id}", response_model=UserOut)
def patch_user(user_id: Id, body: UserPatch, who: Caller = Depends(caller),
               inst: Installation = Depends(installation)) -> UserOut:
    """A user changes their own language, time zone or name; admins also (de)activate the accounts they administer."""
    with inst.db.session() as session:
        user = session.scalar(_users_visible(session, who).where(User.id == user_id))
        if user is None:
            raise not_found("user not found")
        changes = body.model_dump(exclude_unset=True)
        try:
            delegation.check_account_change(session, who.user, user, set(changes))
        except delegation.DelegationDenied as exc:
            raise delegation_error(exc) from None
        if "language" in changes and changes["language"] not in ("ru", "kk", "en"):
            raise ApiError(422, "language must be ru, kk or en")
        if "timezone" in changes:
            changes["timezone"] = changes["timezone"].strip() or None
            if changes["timezone"] is not None and not accounts.is_time_zone(changes["timezone"]):
                raise ApiError(422, f"timezone: unknown time zone {changes['timezone']!r} (an IANA name such as "
                                    "Asia/Almaty)", code="unknown_time_zone")
        for key, value in changes.items():
            setattr(user, key, value)
        audit.append(session, who.actor, Action.USER_CHANGED, object_type="user", object_id=user.id,
                     details={"changed": sorted(changes)})
        return UserOut.model_validate(user)


@router.get("/places/{place_id}/children")
def place_children(place_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation),
                   kind: PlaceKind | None = Query(None)) -> list[PlaceOut]:
    with inst.db.session(readonly=True) as session:
        query = access.visible_places(session, who.user).where(Place.parent_id == place_id)
        if kind:
            query = query.where(Place.kind == kind)
        return [PlaceOut.model_validate(p) for p in session.scalars(query.order_by(Place.name))]
