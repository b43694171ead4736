"""The audit log: auditors read it all; anyone reads the records of cameras they are granted."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Response

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import not_found
from kuzet.api.routes.common import ERRORS, Id, KeysetPaging, camera_for, json_response
from kuzet.api.schemas import AuditOut, AuditVerifyOut, Page
from kuzet.installation import Installation
from kuzet.services import access
from kuzet.store.models import AuditRecord

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERRORS)


@router.get("", response_model=Page[AuditOut])
def list_audit(paging: KeysetPaging = Depends(), camera: Id | None = Query(None),
               action: str | None = Query(None, max_length=64), actor: str | None = Query(None, max_length=100),
               since: datetime | None = None, until: datetime | None = None,
               who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> Response:
    """Newest first. Without ``camera`` only auditors and platform admins may read. ``cursor`` pages by keyset.
    The page is serialised here from the models built here (not validated again against the response model)."""
    from sqlalchemy import select

    with inst.db.session(readonly=True) as session:
        query = select(AuditRecord).order_by(AuditRecord.seq.desc())
        if camera is not None:
            if not access.may_read_audit(who.user):
                camera_for(session, who.user, camera)  # 404 unless the caller holds a grant on it
            query = query.where(AuditRecord.camera_id == camera)
        elif not access.may_read_audit(who.user):
            raise not_found("not found")
        if action:
            query = query.where(AuditRecord.action.startswith(action))
        if actor:
            query = query.where(AuditRecord.actor_name == actor)
        if since:
            query = query.where(AuditRecord.at >= since)
        if until:
            query = query.where(AuditRecord.at < until)
        page = paging.page_by(session, query, [AuditRecord.seq], lambda r: (r.seq,))
        page["items"] = [AuditOut.model_validate(r) for r in page["items"]]
    return json_response(Page[AuditOut](**page))


@router.get("/verify", response_model=AuditVerifyOut)
def verify_audit(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Walk the whole chain and check it against the signed anchor (auditors and platform admins): intact, or the
    first record that does not hold. The audit page shows this beside the records."""
    if not access.may_read_audit(who.user):
        raise not_found("not found")
    result = inst.verify_audit(allow_missing_anchor=True)
    return {"ok": result.ok, "checked": result.checked, "broken_seq": result.broken_seq, "problem": result.problem,
            "warnings": result.warnings, "fingerprint": result.fingerprint}
