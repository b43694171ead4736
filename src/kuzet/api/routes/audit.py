"""The audit log: auditors read it all; anyone reads the records of cameras they are granted."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import not_found
from kuzet.api.routes.common import Paging, camera_for
from kuzet.api.schemas import AuditOut
from kuzet.installation import Installation
from kuzet.services import access
from kuzet.store.models import AuditRecord

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("")
def list_audit(paging: Paging = Depends(), camera: int | None = Query(None), action: str | None = None,
               actor: str | None = None, since: datetime | None = None, until: datetime | None = None,
               who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Newest first. Without ``camera`` only auditors and platform admins may read."""
    from sqlalchemy import select

    with inst.db.session() as session:
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
        return paging.page(session, query, lambda r: AuditOut.model_validate(r))
