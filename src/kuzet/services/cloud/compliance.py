"""Retention compliance: per camera, the archive depth required of it and the depth actually held, uptime, gaps and
their reasons, whether it is offline now; per organisation (the cameras' owner) the same summed up. It names the
cameras short of their required depth before an inspector does.

The required depth of a camera is the largest of: the operator's requirement for its kind (schools, public places,
entrances — ``retention_requirements``), the plan of the building contract covering it, and the depth a routing
agreement in force asks of it (``archive_days_required``); each is named as the source. Held depth is from the oldest
recording still on disk to now. A camera is short when it holds less than required, and also flagged when its own
retention setting would delete what the requirement keeps.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from kuzet.domain.cloud import AgreementState, CloudAction
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.services.cloud.common import CloudError
from kuzet.services.cloud.subscriptions import shared_places
from kuzet.store.db import utcnow
from kuzet.store.models import Camera, Organisation, Place
from kuzet.store.models.cloud import Agreement, AgreementTarget, Contract, Plan, RetentionRequirement
from kuzet.store.models.recording import Gap, Recording


@dataclass
class CameraCompliance:
    camera_id: int
    name: str
    kind: str
    place: str
    organisation_id: int | None
    organisation: str | None
    required_days: int | None
    required_by: list[str]
    held_days: float
    oldest: datetime | None
    retention_days: int
    uptime_percent: float
    gap_seconds: dict[str, float]
    gaps: int
    offline_since: datetime | None
    offline_reason: str | None
    enabled: bool

    @property
    def short(self) -> bool:
        return self.required_days is not None and self.held_days < self.required_days

    @property
    def retention_too_short(self) -> bool:
        return self.required_days is not None and self.retention_days < self.required_days

    def as_dict(self) -> dict:
        return {**self.__dict__, "short": self.short, "retention_too_short": self.retention_too_short,
                "missing_days": round(max(0.0, (self.required_days or 0) - self.held_days), 2)}


@dataclass
class OrganisationCompliance:
    organisation_id: int | None
    organisation: str | None
    cameras: int = 0
    short: int = 0
    offline: int = 0
    uptime_percent: float = 100.0
    short_cameras: list[str] = field(default_factory=list)


@dataclass
class ComplianceReport:
    at: datetime
    window_days: int
    cameras: list[CameraCompliance]
    organisations: list[OrganisationCompliance]

    @property
    def short(self) -> list[CameraCompliance]:
        return [c for c in self.cameras if c.short]

    def as_dict(self) -> dict:
        return {"at": self.at, "window_days": self.window_days,
                "cameras": [c.as_dict() for c in self.cameras],
                "organisations": [o.__dict__ for o in self.organisations],
                "short": [c.camera_id for c in self.short],
                "offline": [c.camera_id for c in self.cameras if c.offline_since is not None]}


def save_requirement(session: Session, actor: Actor, camera_kind: str, days: int, basis: str = ""
                     ) -> RetentionRequirement:
    from kuzet.services.cameras import CAMERA_KINDS

    if camera_kind not in CAMERA_KINDS:
        raise CloudError(f"unknown camera kind {camera_kind!r} (known: {', '.join(CAMERA_KINDS)})")
    if not 1 <= days <= 3650:
        raise CloudError("days must be 1..3650")
    row = session.scalar(select(RetentionRequirement).where(RetentionRequirement.camera_kind == camera_kind))
    if row is None:
        row = RetentionRequirement(camera_kind=camera_kind)
        session.add(row)
    row.days, row.basis, row.updated_at = days, (basis or "").strip()[:500], utcnow()
    session.flush()
    audit.append(session, actor, CloudAction.REQUIREMENT_SAVED, object_type="retention_requirement",
                 object_id=camera_kind, legal_basis=row.basis or None, details={"days": days})
    return row


def _requirements(session: Session, cameras: list[Camera], tz: str) -> dict[int, tuple[int | None, list[str]]]:
    """camera id → (required days, what requires it)."""
    found: dict[int, list[tuple[int, str]]] = defaultdict(list)
    by_kind = {r.camera_kind: r for r in session.scalars(select(RetentionRequirement))}
    place_paths = dict(session.execute(select(Place.id, Place.path)).all())
    for camera in cameras:
        rule = by_kind.get(camera.kind)
        if rule is not None:
            found[camera.id].append((rule.days, f"kind:{camera.kind}"))
    plans = {p.id: p for p in session.scalars(select(Plan))}
    by_place: dict[int, list[Camera]] = defaultdict(list)
    for camera in cameras:
        by_place[camera.place_id].append(camera)
    for contract in session.scalars(select(Contract).where(Contract.ended_at.is_(None))):
        plan = plans.get(contract.plan_id)
        if plan is None:
            continue
        for place_id in list(contract.entrance_ids) + shared_places(session, contract):
            for camera in by_place.get(place_id, []):
                found[camera.id].append((plan.archive_days, f"contract:{contract.number}"))
    rows = session.execute(select(Agreement, AgreementTarget.place_id, AgreementTarget.camera_id)
                           .join(AgreementTarget, AgreementTarget.agreement_id == Agreement.id)
                           .where(Agreement.state == AgreementState.ACTIVE.value,
                                  Agreement.archive_days_required.is_not(None))).all()
    for agreement, place_id, camera_id in rows:
        root = place_paths.get(place_id) if place_id else None
        for camera in cameras:
            if camera.id == camera_id or (root and place_paths.get(camera.place_id, "").startswith(root)):
                found[camera.id].append((agreement.archive_days_required, f"agreement:{agreement.number}"))
    out = {}
    for camera in cameras:
        items = found.get(camera.id, [])
        if not items:
            out[camera.id] = (None, [])
            continue
        days = max(d for d, _ in items)
        out[camera.id] = (days, sorted({what for d, what in items if d == days}))
    return out


def report(session: Session, tz: str, *, camera_ids: list[int] | None = None, window_days: int = 30,
           now: datetime | None = None) -> ComplianceReport:
    """The report for ``camera_ids`` (all cameras if None); uptime and gaps over the last ``window_days``."""
    if not 1 <= window_days <= 366:
        raise CloudError("window_days must be 1..366")
    now = now or utcnow()
    since = now - timedelta(days=window_days)
    query = select(Camera).order_by(Camera.id)
    if camera_ids is not None:
        query = query.where(Camera.id.in_(camera_ids))
    cameras = list(session.scalars(query))
    ids = [c.id for c in cameras]
    oldest = dict(session.execute(select(Recording.camera_id, func.min(Recording.start_at))
                                  .where(Recording.camera_id.in_(ids)).group_by(Recording.camera_id)).all())
    first_in_window = dict(session.execute(
        select(Recording.camera_id, func.min(Recording.start_at))
        .where(Recording.camera_id.in_(ids), Recording.end_at > since).group_by(Recording.camera_id)).all())
    recorded = dict(session.execute(select(Recording.camera_id, func.sum(Recording.media_seconds))
                                    .where(Recording.camera_id.in_(ids), Recording.start_at >= since)
                                    .group_by(Recording.camera_id)).all())
    gap_seconds: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    gap_counts: dict[int, int] = defaultdict(int)
    offline: dict[int, Gap] = {}
    for gap in session.scalars(select(Gap).where(Gap.camera_id.in_(ids), or_(Gap.end_at.is_(None), Gap.end_at > since))
                               .order_by(Gap.start_at)):
        start, end = max(gap.start_at, since), min(gap.end_at or now, now)
        if end > start:
            gap_seconds[gap.camera_id][gap.reason] += (end - start).total_seconds()
            gap_counts[gap.camera_id] += 1
        if gap.end_at is None:
            offline[gap.camera_id] = gap
    places = dict(session.execute(select(Place.id, Place.name)).all())
    orgs = dict(session.execute(select(Organisation.id, Organisation.name)).all())
    required = _requirements(session, cameras, tz)
    items = []
    for camera in cameras:
        first = oldest.get(camera.id)
        held = (now - first).total_seconds() / 86400 if first else 0.0
        # Uptime counts from the window's start, or from the first recording of a camera newer than the window.
        begin = max(since, first_in_window.get(camera.id) or since) if first else since
        span = max((now - begin).total_seconds(), 1.0)
        uptime = min(100.0, 100.0 * float(recorded.get(camera.id) or 0.0) / span) if first else 0.0
        days, sources = required[camera.id]
        gap = offline.get(camera.id)
        items.append(CameraCompliance(
            camera_id=camera.id, name=camera.name, kind=camera.kind, place=places.get(camera.place_id, ""),
            organisation_id=camera.owner_org_id, organisation=orgs.get(camera.owner_org_id),
            required_days=days, required_by=sources, held_days=round(held, 3), oldest=first,
            retention_days=camera.retention_days, uptime_percent=round(uptime, 2),
            gap_seconds={k: round(v, 1) for k, v in sorted(gap_seconds[camera.id].items())},
            gaps=gap_counts[camera.id], offline_since=gap.start_at if gap else None,
            offline_reason=gap.reason if gap else ("disabled" if not camera.enabled else None),
            enabled=camera.enabled))
    by_org: dict[int | None, OrganisationCompliance] = {}
    for item in items:
        org = by_org.setdefault(item.organisation_id, OrganisationCompliance(item.organisation_id, item.organisation))
        org.cameras += 1
        org.short += item.short
        org.offline += item.offline_since is not None
        if item.short:
            org.short_cameras.append(item.name)
    for org in by_org.values():
        mine = [i.uptime_percent for i in items if i.organisation_id == org.organisation_id]
        org.uptime_percent = round(sum(mine) / len(mine), 2) if mine else 100.0
    organisations = sorted(by_org.values(), key=lambda o: (-o.short, o.organisation or ""))
    return ComplianceReport(now, window_days, items, organisations)
