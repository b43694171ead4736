"""Grants: who may do what on which place or camera, until when, on what legal basis."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import or_, select

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import ApiError, not_found
from kuzet.api.routes.common import Paging
from kuzet.api.schemas import GrantIn, GrantOut
from kuzet.domain.access import Right
from kuzet.installation import Installation
from kuzet.services import access
from kuzet.services.grants import GrantError, create_grant, revoke_grant
from kuzet.store.models import Camera, Grant, Place

router = APIRouter(prefix="/grants", tags=["grants"])


def grant_out(g: Grant) -> GrantOut:
    return GrantOut(id=g.id, user_id=g.user_id, organisation_id=g.organisation_id, place_id=g.place_id,
                    camera_id=g.camera_id, rights=g.rights.split(","), legal_basis=g.legal_basis,
                    valid_from=g.valid_from, valid_to=g.valid_to, revoked_at=g.revoked_at, created_at=g.created_at)


def _may_manage_target(session, who: Caller, place_id: int | None, camera_id: int | None) -> bool:  # noqa: ANN001
    if access.is_platform_admin(who.user):
        return True
    if not access.may_administer(who.user, "grant"):
        return False
    if camera_id is not None:
        cam = session.get(Camera, camera_id)
        return cam is not None and Right.MANAGE in access.camera_rights(session, who.user, cam)
    place = session.get(Place, place_id) if place_id is not None else None
    return place is not None and Right.MANAGE in access.place_rights(session, who.user, place)


@router.get("")
def list_grants(paging: Paging = Depends(), who: Caller = Depends(caller),
                inst: Installation = Depends(installation)) -> dict:
    """Platform admins and auditors see every grant; everyone else the grants they hold or created."""
    with inst.db.session() as session:
        query = select(Grant).order_by(Grant.id)
        if not (access.is_platform_admin(who.user) or access.may_read_audit(who.user)):
            mine = [Grant.user_id == who.user.id, Grant.created_by == who.user.id]
            if who.user.organisation_id:
                mine.append(Grant.organisation_id == who.user.organisation_id)
            query = query.where(or_(*mine))
        return paging.page(session, query, grant_out)


@router.post("", response_model=GrantOut, status_code=201)
def add_grant(body: GrantIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> GrantOut:
    with inst.db.session() as session:
        if not _may_manage_target(session, who, body.place_id, body.camera_id):
            raise not_found("place or camera not found")
        if not access.is_platform_admin(who.user) and Right.MANAGE.value in body.rights:
            raise ApiError(403, "only platform admins hand out the manage right")
        try:
            grant = create_grant(session, who.actor, **body.model_dump())
        except GrantError as exc:
            raise ApiError(422, str(exc)) from None
        return grant_out(grant)


@router.delete("/{grant_id}", response_model=GrantOut)
def delete_grant(grant_id: int, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> GrantOut:
    """Revoke a grant (it stays on record, with the time it ended)."""
    with inst.db.session() as session:
        grant = session.get(Grant, grant_id)
        if grant is None or not _may_manage_target(session, who, grant.place_id, grant.camera_id):
            raise not_found("grant not found")
        return grant_out(revoke_grant(session, who.actor, grant))
