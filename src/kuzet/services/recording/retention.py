"""Retention as an explicit policy: per camera (days, or its storage tier) and per volume (max bytes, min free),
oldest first.

Driven by the index only (no directory scans): each pass selects a batch of the oldest closed files that no evidence
hold overlaps, unlinks them and deletes their rows; cost per pass is one indexed query and the batch, however many
millions of files the archive holds.

With ``[storage] backend = "s3"`` the batch's objects go in one DeleteObjects request; a row whose object the store
failed to delete stays for the next pass, and a store that is away stops the pass (nothing is dropped from the index
while its object is still there). Evidence holds keep their files in both places: the selection never includes a
file a hold overlaps. The volume rule then counts two things: ``max_bytes`` the whole archive (S3 and local), and
``min_free_bytes`` the local disk, which only files not yet uploaded occupy (deleting one loses it, so it is logged
as an error).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, delete, exists, func, select

from kuzet.config import Settings
from kuzet.services.recording import tiers
from kuzet.services.recording.objectstore import ObjectStore, ObjectStoreError
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
    def __init__(self, settings: Settings, db: Database, objects: ObjectStore | None = None) -> None:
        self.settings = settings
        self.db = db
        self.root: Path = settings.recordings_path
        self.objects = objects
        if objects is None and settings.storage.backend == "s3":
            from kuzet.services.recording.storage import archive_store

            self.objects = archive_store(settings).objects

    def _remove(self, rows: list[tuple[int, str, int]]) -> list[tuple[int, str, int]]:
        """Delete the files of ``rows`` (objects in batches, local copies one by one); the rows whose files are gone.
        Raises :class:`ObjectStoreError` when the store cannot be reached."""
        keys: dict[int, str] = {}
        if self.objects is not None and rows:
            with self.db.session() as session:
                keys = dict(session.execute(select(Recording.id, Recording.object_key).where(
                    Recording.id.in_([r[0] for r in rows]), Recording.object_key.is_not(None))).all())
        failed = set(self.objects.delete_many(list(keys.values()))) if keys else set()
        if failed:
            log.error("the object store refused to delete %d objects: their rows stay for the next pass", len(failed))
        done = []
        for row in rows:
            if keys.get(row[0]) in failed:
                continue
            with contextlib.suppress(FileNotFoundError):
                (self.root / row[1]).unlink()
            done.append(row)
        return done

    def _delete(self, rows: list[tuple[int, str, int]], report: RetentionReport, reason: str) -> int:
        rows = self._remove(rows)
        freed = sum(r[2] for r in rows)
        with self.db.session() as session:
            session.execute(delete(Recording).where(Recording.id.in_([r[0] for r in rows])))
        report.deleted_files += len(rows)
        report.deleted_bytes += freed
        report.by_reason[reason] = report.by_reason.get(reason, 0) + len(rows)
        return freed

    def _thin(self, camera_id: int, policy: tiers.TierPolicy, now: datetime, events_cutoff: datetime,
              report: RetentionReport) -> None:
        while True:
            with self.db.session() as session:
                decision = tiers.thinning_candidates(session, camera_id, policy, now, events_cutoff, BATCH)
            if decision.decided_until is None:
                return
            removed = self._remove(list(decision.delete))
            if len(removed) < len(decision.delete):
                return  # some objects stayed: leave the cursor where it is and try again next pass
            freed = sum(r[2] for r in removed)
            with self.db.session() as session:  # rows, their gaps and the cursor together
                if decision.delete:
                    session.execute(delete(Recording).where(Recording.id.in_([r[0] for r in decision.delete])))
                tiers.record_thinned(session, camera_id, decision.stretches, decision.decided_until)
            if decision.delete:
                report.deleted_files += len(decision.delete)
                report.deleted_bytes += freed
                report.by_reason["tier"] = report.by_reason.get("tier", 0) + len(decision.delete)

    def run(self, now: datetime | None = None) -> RetentionReport:
        report = RetentionReport()
        try:
            return self._run(now or utcnow(), report)
        except ObjectStoreError as exc:
            report.blocked = f"the object store is unreachable ({exc}): retention waits for it"
            log.error(report.blocked)
            return report

    def _run(self, now: datetime, report: RetentionReport) -> RetentionReport:
        # 1. Age: every camera keeps its own number of days (with a storage tier: full plus motion days).
        with self.db.session() as session:
            days = dict(session.execute(select(Camera.id, Camera.retention_days)).all())
            policies = tiers.policies(session, list(days))
            indexed = tiers.motion_indexed(session, self.settings, list(policies))
            for camera_id, policy in policies.items():
                days[camera_id] = policy.total_days
                tiers.forget_thinned_gaps(session, camera_id, policy.end_cutoff(now))
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
                before = report.deleted_files
                self._delete([tuple(r) for r in rows], report, "age")
                if report.deleted_files == before:
                    break  # nothing could be deleted (the store refused): try again next pass
        # 2. Tiers: past a camera's full window, only the minutes in which something happened stay.
        events_cutoff = now - timedelta(days=self.settings.operations.events_retention_days)
        for camera_id, policy in policies.items():
            if camera_id in indexed:
                self._thin(camera_id, policy, now, events_cutoff, report)
        # 3. Volume: the whole archive under max_bytes, and the disk never below min_free_bytes.
        storage = self.settings.storage
        with self.db.session() as session:
            total = session.scalar(select(func.coalesce(func.sum(Recording.bytes), 0))) or 0
        free = shutil.disk_usage(self.root).free if self.root.exists() else 0
        while (storage.max_bytes is not None and total > storage.max_bytes) or free < storage.min_free_bytes:
            over = storage.max_bytes is not None and total > storage.max_bytes
            # With S3, only files not yet uploaded take local space: a full disk can only be helped by them.
            local_only = self.objects is not None and not over
            with self.db.session() as session:
                rows = session.execute(
                    select(Recording.id, Recording.path, Recording.bytes)
                    .where(Recording.state == "closed", _not_held(),
                           Recording.object_key.is_(None) if local_only else Recording.id.is_not(None))
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
            if local_only:
                log.error("the local disk is below min_free_bytes while files wait for the object store: %d files "
                          "never uploaded are deleted (oldest first) so recording goes on", len(chosen))
            before = report.deleted_files
            freed = self._delete(chosen, report, "volume")
            if report.deleted_files == before:
                report.blocked = "the object store refused to delete the oldest files"
                break
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
