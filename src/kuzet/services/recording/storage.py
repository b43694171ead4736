"""The storage report: bytes per camera and archive depth against each camera's required depth."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kuzet.store.db import utcnow
from kuzet.store.models import Camera
from kuzet.store.models.recording import EvidenceHold, Recording


def storage_report(session: Session, root: Path, camera_ids: list[int] | None = None) -> dict:
    now = utcnow()
    query = select(Recording.camera_id, func.sum(Recording.bytes), func.min(Recording.start_at),
                   func.count()).group_by(Recording.camera_id)
    stats = {row[0]: row[1:] for row in session.execute(query)}
    cameras = session.execute(select(Camera.id, Camera.name, Camera.retention_days).order_by(Camera.id)).all()
    holds = dict(session.execute(select(EvidenceHold.camera_id, func.count()).where(
        EvidenceHold.released_at.is_(None)).group_by(EvidenceHold.camera_id)).all())
    items = []
    for cam_id, name, days in cameras:
        if camera_ids is not None and cam_id not in camera_ids:
            continue
        size, oldest, files = stats.get(cam_id, (0, None, 0))
        depth = (now - oldest).total_seconds() / 86400 if oldest else 0.0
        items.append({"camera_id": cam_id, "name": name, "bytes": int(size or 0), "files": int(files or 0),
                      "oldest": oldest, "depth_days": round(depth, 3), "required_days": days,
                      "meets_requirement": depth >= days, "holds": holds.get(cam_id, 0)})
    usage = shutil.disk_usage(root) if root.exists() else None
    return {"cameras": items, "archive_bytes": sum(i["bytes"] for i in items),
            "volume": {"path": str(root), "total_bytes": usage.total if usage else None,
                       "free_bytes": usage.free if usage else None}}
