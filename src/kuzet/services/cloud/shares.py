"""Sharing a clip by a link that expires: a resident shares a window of a camera they watch through their
subscription (it counts against the plan's allowance); whoever holds the link may play it until it expires or is
revoked, and every opening is an audit record on that camera (so it shows in the residents' access log).

The link works only while its author still may see that window: a flat suspended for non-payment, or an archive
older than the plan's depth, closes it too. Only the token's SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.domain.access import Right
from kuzet.domain.cloud import CloudAction
from kuzet.services import access, audit
from kuzet.services.audit import Actor
from kuzet.services.cloud.common import CloudError, CloudNotFound
from kuzet.services.cloud.portal import take_download
from kuzet.store.db import utcnow
from kuzet.store.models import Camera, User
from kuzet.store.models.cloud import Flat, SharedClip

MAX_CLIP = timedelta(minutes=30)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_share(session: Session, actor: Actor, user: User, flat: Flat, camera: Camera, start: datetime,
                 end: datetime, *, hours: int, max_hours: int, note: str, tz: str) -> tuple[SharedClip, str]:
    if end <= start:
        raise CloudError("end must be after start")
    if end - start > MAX_CLIP:
        raise CloudError("a shared clip is at most 30 minutes long")
    if not 1 <= hours <= max_hours:
        raise CloudError(f"a link lives 1..{max_hours} hours")
    if end > utcnow():
        raise CloudError("the clip must lie in the past")
    floor = access.archive_floor(session, user, camera)
    if floor is not None and start < floor:
        raise CloudError(f"your plan reaches the archive back to {floor.isoformat()} only")
    take_download(session, user, flat, camera, start, end, tz, kind="share")
    token = secrets.token_urlsafe(24)
    row = SharedClip(token_hash=_digest(token), user_id=user.id, camera_id=camera.id, start_at=start, end_at=end,
                     note=(note or "").strip()[:200], expires_at=utcnow() + timedelta(hours=hours))
    session.add(row)
    session.flush()
    audit.append(session, actor, CloudAction.SHARE_CREATED, object_type="share", object_id=row.id,
                 camera_id=camera.id, legal_basis=access.legal_basis_for(session, user, camera, Right.VIEW_ARCHIVE),
                 details={"start": start.isoformat(), "end": end.isoformat(), "expires_at":
                          row.expires_at.isoformat()})
    return row, token


def open_share(session: Session, token: str, ip: str | None) -> SharedClip:
    """The shared clip behind a token, audited as one opening; CloudNotFound if unknown, expired, revoked, or no
    longer visible to its author."""
    row = session.scalar(select(SharedClip).where(SharedClip.token_hash == _digest(token)))
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise CloudNotFound("this link is not valid (expired, revoked or unknown)")
    author = session.get(User, row.user_id)
    camera = session.get(Camera, row.camera_id)
    if author is None or not author.is_active or camera is None or \
            Right.VIEW_ARCHIVE not in access.camera_rights(session, author, camera):
        raise CloudNotFound("this link is not valid (expired, revoked or unknown)")
    floor = access.archive_floor(session, author, camera)
    if floor is not None and row.start_at < floor:
        raise CloudNotFound("this link is not valid (expired, revoked or unknown)")
    row.opened += 1
    audit.append(session, Actor(None, "link", ip), CloudAction.SHARE_OPENED, object_type="share", object_id=row.id,
                 camera_id=camera.id, legal_basis=f"Ссылка, выданная жителем {author.username}",
                 details={"start": row.start_at.isoformat(), "end": row.end_at.isoformat(), "opened": row.opened})
    return row


def revoke_share(session: Session, actor: Actor, user: User, share_id: int) -> SharedClip:
    row = session.get(SharedClip, share_id)
    if row is None or row.user_id != user.id:
        raise CloudNotFound("share not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.append(session, actor, CloudAction.SHARE_REVOKED, object_type="share", object_id=row.id,
                     camera_id=row.camera_id)
    return row


def my_shares(session: Session, user: User) -> list[SharedClip]:
    return list(session.scalars(select(SharedClip).where(SharedClip.user_id == user.id)
                                .order_by(SharedClip.id.desc()).limit(200)))
