"""Usage per organisation for a month: its cameras, the bytes their archive holds now, and how much of their video
was viewed — archive hours (the windows of archive playlists, clips, shared clips and exports), live viewing sessions
(a viewer on a camera until a minute without a request) and live hours (from each session's ``viewing.ended``
record: services/watching/viewing.py), counted from the audit log."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kuzet.domain.audit import Action
from kuzet.domain.cloud import CloudAction, Period
from kuzet.services.cloud.common import start_of_day
from kuzet.store.models import AuditRecord, Camera, Organisation
from kuzet.store.models.recording import Recording

ARCHIVE_ACTIONS = (Action.ARCHIVE_VIEWED, Action.CLIP_DOWNLOADED, Action.EXPORT_CREATED, CloudAction.SHARE_OPENED)


def _hours(details: dict | None) -> float:
    try:
        start = datetime.fromisoformat(details["start"])
        end = datetime.fromisoformat(details["end"])
    except (KeyError, TypeError, ValueError):
        return 0.0
    return max(0.0, (end - start).total_seconds() / 3600)


def usage(session: Session, period: Period, tz: str, organisation_ids: list[int] | None = None) -> list[dict]:
    since, until = start_of_day(period.first, tz), start_of_day(period.after, tz)
    owner = dict(session.execute(select(Camera.id, Camera.owner_org_id)).all())
    names = dict(session.execute(select(Organisation.id, Organisation.name)).all())
    rows: dict[int | None, dict] = {}

    def row(org: int | None) -> dict:
        return rows.setdefault(org, {"organisation_id": org, "organisation": names.get(org), "cameras": 0,
                                     "bytes_stored": 0, "archive_hours_viewed": 0.0, "live_sessions": 0,
                                     "live_hours_viewed": 0.0, "archive_views": 0})

    for org in owner.values():
        row(org)["cameras"] += 1
    for camera_id, size in session.execute(select(Recording.camera_id, func.sum(Recording.bytes))
                                           .group_by(Recording.camera_id)):
        row(owner.get(camera_id))["bytes_stored"] += int(size or 0)
    records = session.execute(select(AuditRecord.camera_id, AuditRecord.action, AuditRecord.details).where(
        AuditRecord.at >= since, AuditRecord.at < until, AuditRecord.camera_id.is_not(None),
        AuditRecord.action.in_([Action.LIVE_VIEWED, Action.VIEWING_ENDED, *ARCHIVE_ACTIONS])))
    hours: dict[tuple[int | None, str], float] = defaultdict(float)
    for camera_id, action, details in records:
        org = owner.get(camera_id)
        target = row(org)
        if action == Action.LIVE_VIEWED:
            target["live_sessions"] += 1
        elif action == Action.VIEWING_ENDED:
            hours[org, "live_hours_viewed"] += _hours(details)
        else:
            target["archive_views"] += 1
            hours[org, "archive_hours_viewed"] += _hours(details)
    for (org, figure), value in hours.items():
        row(org)[figure] = round(value, 3)
    out = sorted(rows.values(), key=lambda r: (r["organisation"] is None, r["organisation"] or ""))
    if organisation_ids is not None:
        out = [r for r in out if r["organisation_id"] in organisation_ids]
    return out
