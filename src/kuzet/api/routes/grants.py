"""Grants: who may do what on which place or camera, until when, on what legal basis."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import or_, select

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import ApiError, not_found
from kuzet.api.routes.common import ERRORS, Id, Paging, delegation_error
from kuzet.api.schemas import GrantIn, GrantOut, Page
from kuzet.installation import Installation
from kuzet.services import access
from kuzet.services.access import delegation
from kuzet.services.grants import GrantError, create_grant, revoke_grant
from kuzet.store.models import Grant

router = APIRouter(prefix="/grants", tags=["grants"], responses=ERRORS)


def grant_out(g: Grant) -> GrantOut:
    return GrantOut(id=g.id, user_id=g.user_id, organisation_id=g.organisation_id, place_id=g.place_id,
                    camera_id=g.camera_id, rights=g.rights.split(","), legal_basis=g.legal_basis,
                    valid_from=g.valid_from, valid_to=g.valid_to, revoked_at=g.revoked_at, created_at=g.created_at,
                    archive_days=g.archive_days, source=g.source)


@router.get("", response_model=Page[GrantOut])
def list_grants(paging: Paging = Depends(), who: Caller = Depends(caller),
                inst: Installation = Depends(installation)) -> dict:
    """Platform admins and auditors see every grant; everyone else the grants they hold or created."""
    with inst.db.session(readonly=True) as session:
        query = select(Grant).order_by(Grant.id)
        if not (access.is_platform_admin(who.user) or access.may_read_audit(who.user)):
            mine = [Grant.user_id == who.user.id, Grant.created_by == who.user.id]
            if who.user.organisation_id:
                mine.append(Grant.organisation_id == who.user.organisation_id)
            query = query.where(or_(*mine))
        return paging.page(session, query, grant_out)


@router.post("", response_model=GrantOut, status_code=201)
def add_grant(body: GrantIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> GrantOut:
    """Hand out rights on a place subtree or a camera: only rights you hold there, for no longer than you hold them,
    never to yourself or your own organisation; ``manage`` only from platform admins (docs/access.md)."""
    with inst.db.session() as session:
        try:
            rights = delegation.check_grant(session, who.user, rights=body.rights, user_id=body.user_id,
                                            organisation_id=body.organisation_id, place_id=body.place_id,
                                            camera_id=body.camera_id, valid_to=body.valid_to)
            grant = create_grant(session, who.actor, **body.model_dump(exclude={"rights"}),
                                 rights=sorted(r.value for r in rights))
        except (delegation.DelegationDenied, delegation.InvalidDelegation) as exc:
            raise delegation_error(exc) from None
        except GrantError as exc:
            raise ApiError(422, str(exc)) from None
        return grant_out(grant)


@router.delete("/{grant_id}", response_model=GrantOut)
def delete_grant(grant_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> GrantOut:
    """Revoke a grant (it stays on record, with the time it ended): platform admins, its creator, or a manager of its
    target who could have made it."""
    with inst.db.session() as session:
        grant = session.get(Grant, grant_id)
        if grant is None:
            raise not_found("grant not found")
        try:
            delegation.check_revoke(session, who.user, grant)
        except delegation.DelegationDenied as exc:
            raise delegation_error(exc) from None
        if grant.source is not None and grant.revoked_at is None:
            kind, _, ident = grant.source.partition(":")
            what = {"agreement": "routing agreement", "flat": "subscription"}.get(kind, kind)
            raise ApiError(409, f"this grant belongs to {what} #{ident} and ends with it: end or change that instead")
        return grant_out(revoke_grant(session, who.actor, grant))
