"""Storage tiers: which policy each camera follows, and thinning — the retention step that, past a camera's
full-retention window, deletes the one-minute files in which nothing happened.

**Where policies come from.** A camera's own setting (``camera_storage_tiers``) wins; a camera without one asks the
registered sources in order (``register_source``: a cloud plan fills it for the cameras of its buildings); a camera
nobody gives a policy keeps its ``retention_days`` and is never thinned.

**What is kept.** A file is kept when anything of the motion index overlaps it, widened by ``PAD``: an event of any
kind (motion, object, plate; ``events``), a camera window linked to an incident (``incident_cameras``), or an active
evidence hold. Everything else past ``full_days`` is deleted, whole files only (no cutting, no re-encoding), and each
stretch of deleted files becomes one gap with the reason ``thinned``, so the timeline says why it is empty.

**When nothing is known.** Thinning never guesses: a camera whose motion analysis is off (``operations.enabled``
false, or its ``camera_analysis.motion`` false) is not thinned, and neither is a file older than
``operations.events_retention_days`` (its events may already be gone); both keep everything until ``total_days``.

Driven by the index, like the rest of retention: per camera a cursor (``storage_tier_progress``) remembers how far
thinning has decided, so each pass reads only files that newly left the full window, in batches.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from kuzet.config import Settings
from kuzet.domain.tiers import PAD, TierError, TierPolicy, overlaps
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.store.models import Camera
from kuzet.store.models.onboarding import CameraStorageTier, TierProgress
from kuzet.store.models.operations import CameraAnalysis, Event, IncidentCamera
from kuzet.store.models.recording import EvidenceHold, Gap, Recording

log = logging.getLogger("kuzet.recording.tiers")

THINNED = "thinned"  # gap reason of a stretch deleted by a storage tier
CONTIGUOUS = timedelta(seconds=1)
TIER_CHANGED = "camera.storage_tier_changed"

__all__ = ["THINNED", "TierError", "TierPolicy", "TierSource", "clear_camera_tier", "policies", "register_source",
           "set_camera_tier", "thinning_candidates", "tier_out", "unregister_source"]


class TierSource(Protocol):
    """Something that gives cameras a tier policy, e.g. a subscription plan (services/cloud)."""

    name: str

    def policies(self, session: Session, camera_ids: Collection[int]) -> dict[int, TierPolicy]:
        """The policy of each of ``camera_ids`` this source decides (others are left out)."""
        ...


_SOURCES: list[TierSource] = []


def register_source(source: TierSource) -> None:
    """Let ``source`` fill the policy of cameras without their own setting (earlier sources win)."""
    if source not in _SOURCES:
        _SOURCES.append(source)


def unregister_source(source: TierSource) -> None:
    if source in _SOURCES:
        _SOURCES.remove(source)


def policies(session: Session, camera_ids: Collection[int] | None = None) -> dict[int, TierPolicy]:
    """Every camera's policy: its own setting, else the first source that has one. Cameras without one are absent."""
    query = select(CameraStorageTier)
    if camera_ids is not None:
        query = query.where(CameraStorageTier.camera_id.in_(list(camera_ids)))
    out = {row.camera_id: TierPolicy(row.full_days, row.motion_days) for row in session.scalars(query)}
    if _SOURCES:
        rest = set(camera_ids if camera_ids is not None else session.scalars(select(Camera.id))) - set(out)
        for source in _SOURCES:
            if not rest:
                break
            try:
                found = source.policies(session, rest)
            except Exception:  # a broken plan source must not stop retention of the other cameras
                log.exception("storage tier source %s failed", getattr(source, "name", source))
                continue
            for camera_id, policy in found.items():
                if camera_id in rest:
                    out[camera_id] = policy
                    rest.discard(camera_id)
    return out


def set_camera_tier(session: Session, actor: Actor, camera: Camera, full_days: int, motion_days: int) -> TierPolicy:
    """Give a camera its own tier (it wins over any plan). Raises TierError naming a bad value."""
    policy = TierPolicy(full_days, motion_days)
    row = session.get(CameraStorageTier, camera.id)
    before = {"full_days": row.full_days, "motion_days": row.motion_days} if row else None
    if row is None:
        row = CameraStorageTier(camera_id=camera.id, full_days=full_days, motion_days=motion_days)
        session.add(row)
    row.full_days, row.motion_days, row.updated_by = full_days, motion_days, actor.user_id
    session.flush()
    audit.append(session, actor, TIER_CHANGED, object_type="camera", object_id=camera.id, camera_id=camera.id,
                 details={"before": before, "after": {"full_days": full_days, "motion_days": motion_days}})
    return policy


def clear_camera_tier(session: Session, actor: Actor, camera: Camera) -> bool:
    """Remove the camera's own tier (a plan's, or plain ``retention_days``, applies again)."""
    row = session.get(CameraStorageTier, camera.id)
    if row is None:
        return False
    before = {"full_days": row.full_days, "motion_days": row.motion_days}
    session.delete(row)
    session.flush()
    audit.append(session, actor, TIER_CHANGED, object_type="camera", object_id=camera.id, camera_id=camera.id,
                 details={"before": before, "after": None})
    return True


def motion_indexed(session: Session, settings: Settings, camera_ids: Collection[int]) -> set[int]:
    """Cameras whose motion index can be trusted to say "nothing happened" (motion analysis on)."""
    if not settings.operations.enabled:
        return set()
    off = set(session.scalars(select(CameraAnalysis.camera_id).where(CameraAnalysis.motion.is_(False))))
    return {c for c in camera_ids if c not in off}


# --- thinning ----------------------------------------------------------------------------------------------------

@dataclass
class Decision:
    delete: list[tuple[int, str, int]] = field(default_factory=list)  # (id, path, bytes)
    stretches: list[tuple[datetime, datetime]] = field(default_factory=list)  # deleted, contiguous
    decided_until: datetime | None = None
    kept: int = 0


def _spans(session: Session, camera_id: int, start: datetime, end: datetime) -> list[tuple[datetime, datetime | None]]:
    """What must stay between ``start`` and ``end``: events, incident windows, active evidence holds."""
    lo, hi = start - PAD, end + PAD
    spans: list[tuple[datetime, datetime | None]] = []
    spans += session.execute(select(Event.start_at, Event.end_at).where(
        Event.camera_id == camera_id, Event.start_at < hi, or_(Event.end_at.is_(None), Event.end_at > lo))).all()
    spans += session.execute(select(IncidentCamera.start_at, IncidentCamera.end_at).where(
        IncidentCamera.camera_id == camera_id, IncidentCamera.start_at < hi, IncidentCamera.end_at > lo)).all()
    held = session.execute(select(EvidenceHold.start_at, EvidenceHold.end_at).where(
        EvidenceHold.camera_id == camera_id, EvidenceHold.released_at.is_(None), EvidenceHold.start_at < end,
        EvidenceHold.end_at > start)).all()
    return spans + held  # (padded like the rest: at worst one more file kept beside a hold)


def thinning_candidates(session: Session, camera_id: int, policy: TierPolicy, now: datetime, events_cutoff: datetime,
                        limit: int) -> Decision:
    """Decide the next ``limit`` files of a camera past its full window: which to delete, and how far that got."""
    progress = session.get(TierProgress, camera_id)
    since = max(progress.thinned_until if progress else policy.end_cutoff(now), events_cutoff)
    rows = session.execute(
        select(Recording.id, Recording.path, Recording.bytes, Recording.start_at, Recording.end_at)
        .where(Recording.camera_id == camera_id, Recording.start_at >= since,
               Recording.end_at < policy.full_cutoff(now), Recording.state == "closed")
        .order_by(Recording.start_at).limit(limit)).all()
    decision = Decision()
    if not rows:
        return decision
    spans = _spans(session, camera_id, rows[0].start_at, rows[-1].end_at)
    previous_deleted_end: datetime | None = None
    for row in rows:
        if overlaps(row.start_at, row.end_at, spans):
            decision.kept += 1
            previous_deleted_end = None
            continue
        decision.delete.append((row.id, row.path, row.bytes))
        if previous_deleted_end is not None and row.start_at - previous_deleted_end <= CONTIGUOUS:
            decision.stretches[-1] = (decision.stretches[-1][0], row.end_at)
        else:
            decision.stretches.append((row.start_at, row.end_at))
        previous_deleted_end = row.end_at
    decision.decided_until = rows[-1].start_at + timedelta(microseconds=1)
    return decision


def record_thinned(session: Session, camera_id: int, stretches: list[tuple[datetime, datetime]],
                   decided_until: datetime) -> None:
    """One ``thinned`` gap per stretch of deleted files (extending the previous one it continues), and the cursor."""
    for start, end in stretches:
        previous = session.scalar(select(Gap).where(
            Gap.camera_id == camera_id, Gap.reason == THINNED, Gap.end_at <= start,
            Gap.end_at >= start - CONTIGUOUS).order_by(Gap.end_at.desc()).limit(1))
        if previous is not None:
            previous.end_at = end
        else:
            session.add(Gap(camera_id=camera_id, start_at=start, end_at=end, reason=THINNED,
                            message="nothing happened: deleted by the camera's storage tier"))
    progress = session.get(TierProgress, camera_id)
    if progress is None:
        session.add(TierProgress(camera_id=camera_id, thinned_until=decided_until))
    else:
        progress.thinned_until = max(progress.thinned_until, decided_until)


def forget_thinned_gaps(session: Session, camera_id: int, before: datetime) -> None:
    """Thinned gaps wholly before the end of a camera's policy describe files that no longer exist either way."""
    session.execute(delete(Gap).where(Gap.camera_id == camera_id, Gap.reason == THINNED, Gap.end_at < before))


def tier_out(session: Session, settings: Settings, camera: Camera) -> dict:
    """A camera's tier as the API and the CLI show it."""
    policy = policies(session, [camera.id]).get(camera.id)
    own = session.get(CameraStorageTier, camera.id) is not None
    return {
        "camera_id": camera.id, "retention_days": camera.retention_days,
        "policy": None if policy is None else {
            "full_days": policy.full_days, "motion_days": policy.motion_days, "total_days": policy.total_days,
            "source": "camera" if own else policy.source},
        "thinned": policy is not None and bool(motion_indexed(session, settings, [camera.id])),
    }
