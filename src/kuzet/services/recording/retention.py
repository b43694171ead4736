"""Retention as an explicit policy: per camera (days) and per volume (max bytes, min free), oldest first.

Driven by the index only (no directory scans): each pass selects a batch of the oldest closed files that no evidence
hold overlaps, unlinks them and deletes their rows; cost per pass is one indexed query and the batch, however many
millions of files the archive holds.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, delete, exists, func, select

from kuzet.config import Settings
from kuzet.store.db import Database, utcnow
from kuzet.store.models import Camera
from kuzet.store.models.recording import EvidenceHold, Recording

log = logging.getLogger("kuzet.recording.retention")
BATCH = 200


def _not_held():  # noqa: ANN202
    return ~exists(select(EvidenceHold.id).where(
        EvidenceHold.camera_id == Recording.camera_id, EvidenceHold.released_at.is_(None),
        EvidenceHold.start_at < Recording.end_at, EvidenceHold.end_at > Recording.start_at))


@dataclass
class RetentionReport:
    deleted_files: int = 0
    deleted_bytes: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    archive_bytes: int = 0
    free_bytes: int = 0
    blocked: str | None = None


class Retention:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.root: Path = settings.recordings_path

    def _delete(self, rows: list[tuple[int, str, int]], report: RetentionReport, reason: str) -> int:
        freed = 0
        for _id, path, size in rows:
            try:
                (self.root / path).unlink()
            except FileNotFoundError:
                pass
            freed += size
        with self.db.session() as session:
            session.execute(delete(Recording).where(Recording.id.in_([r[0] for r in rows])))
        report.deleted_files += len(rows)
        report.deleted_bytes += freed
        report.by_reason[reason] = report.by_reason.get(reason, 0) + len(rows)
        return freed

    def run(self, now: datetime | None = None) -> RetentionReport:
        now = now or utcnow()
        report = RetentionReport()
        # 1. Age: every camera keeps its own number of days.
        with self.db.session() as session:
            days = dict(session.execute(select(Camera.id, Camera.retention_days)).all())
        for camera_id, keep in days.items():
            cutoff = now - timedelta(days=keep)
            while True:
                with self.db.session() as session:
                    rows = session.execute(
                        select(Recording.id, Recording.path, Recording.bytes)
                        .where(Recording.camera_id == camera_id, Recording.end_at < cutoff,
                               Recording.state == "closed", _not_held())
                        .order_by(Recording.start_at).limit(BATCH)).all()
                if not rows:
                    break
                self._delete([tuple(r) for r in rows], report, "age")
        # 2. Volume: the whole archive under max_bytes, and the disk never below min_free_bytes.
        storage = self.settings.storage
        with self.db.session() as session:
            total = session.scalar(select(func.coalesce(func.sum(Recording.bytes), 0))) or 0
        free = shutil.disk_usage(self.root).free if self.root.exists() else 0
        while (storage.max_bytes is not None and total > storage.max_bytes) or free < storage.min_free_bytes:
            with self.db.session() as session:
                rows = session.execute(
                    select(Recording.id, Recording.path, Recording.bytes)
                    .where(Recording.state == "closed", _not_held())
                    .order_by(Recording.start_at).limit(BATCH // 4)).all()
            if not rows:
                report.blocked = "the volume is full and every remaining file is open or on evidence hold"
                log.error(report.blocked)
                break
            need = max(total - storage.max_bytes if storage.max_bytes is not None else 0,
                       storage.min_free_bytes - free, 1)
            chosen, size = [], 0
            for row in rows:  # oldest first, only as many as needed
                chosen.append(tuple(row))
                size += row[2]
                if size >= need:
                    break
            freed = self._delete(chosen, report, "volume")
            total -= freed
            free = shutil.disk_usage(self.root).free
        report.archive_bytes, report.free_bytes = total, free
        if report.deleted_files:
            log.info("retention deleted %d files (%d bytes): %s", report.deleted_files, report.deleted_bytes,
                     report.by_reason)
        return report


def create_hold(session, camera_id: int, start: datetime, end: datetime, reason: str,  # noqa: ANN001
                created_by: int | None = None) -> EvidenceHold:
    """Put a camera's time range on evidence hold: retention will not delete any file overlapping it."""
    if end <= start:
        raise ValueError("a hold needs end after start")
    hold = EvidenceHold(camera_id=camera_id, start_at=start, end_at=end, reason=reason, created_by=created_by)
    session.add(hold)
    session.flush()
    return hold


def held(session, camera_id: int, start: datetime, end: datetime) -> bool:  # noqa: ANN001
    return session.scalar(select(exists().where(and_(
        EvidenceHold.camera_id == camera_id, EvidenceHold.released_at.is_(None),
        EvidenceHold.start_at < end, EvidenceHold.end_at > start)))) or False
