"""Storage tiers: everything for N days, then only the minutes with motion or events (and evidence holds) for M more,
thinned by the retention pass from Kuzet's own motion index. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from kuzet.installation import Installation
from kuzet.services.audit import SYSTEM
from kuzet.services.recording import tiers
from kuzet.services.recording.retention import Retention, create_hold
from kuzet.store.db import utcnow
from kuzet.store.models import AuditRecord, Camera
from kuzet.store.models.operations import CameraAnalysis, Event, Incident, IncidentCamera
from kuzet.store.models.recording import Gap, Recording
from tests.test_recording_retention import _camera, _fake_archive


def _minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def _kept_starts(inst: Installation, camera_id: int) -> list[datetime]:
    with inst.db.session() as s:
        return list(s.scalars(select(Recording.start_at).where(Recording.camera_id == camera_id)
                              .order_by(Recording.start_at)))


def _event(inst: Installation, camera_id: int, start: datetime, seconds: float, kind: str = "motion") -> None:
    with inst.db.session() as s:
        s.add(Event(camera_id=camera_id, kind=kind, start_at=start, end_at=start + timedelta(seconds=seconds)))


def test_past_the_full_window_only_minutes_with_something_stay(inst: Installation) -> None:
    inst.settings.storage.min_free_bytes = 0
    cam = _camera(inst, retention_days=365)
    now = _minute(utcnow())
    with inst.db.session() as s:
        tiers.set_camera_tier(s, SYSTEM, s.get(Camera, cam), 2, 5)
    old_day = now - timedelta(days=3)  # past the 2 full days, inside the 5 motion days
    too_old = now - timedelta(days=8)  # past both
    recent = now - timedelta(hours=5)  # inside the full window
    _fake_archive(inst, cam, too_old, 3)
    _fake_archive(inst, cam, old_day, 60)
    _fake_archive(inst, cam, recent, 10)
    # Motion across the boundary of minutes 10 and 11; a plate read in minute 30; an incident window over 40..41;
    # an evidence hold over minute 50; a motion event 3 s after minute 20 ends (inside the 5 s pad: minute 20 stays
    # too, as the approach of the passer-by).
    _event(inst, cam, old_day + timedelta(minutes=10, seconds=50), 20)
    _event(inst, cam, old_day + timedelta(minutes=30, seconds=5), 1, kind="plate")
    _event(inst, cam, old_day + timedelta(minutes=21, seconds=3), 10)
    with inst.db.session() as s:
        incident = Incident(offence_type="theft", title="bike")
        s.add(incident)
        s.flush()
        s.add(IncidentCamera(incident_id=incident.id, camera_id=cam,
                             start_at=old_day + timedelta(minutes=40, seconds=20),
                             end_at=old_day + timedelta(minutes=41, seconds=30)))
        create_hold(s, cam, old_day + timedelta(minutes=50, seconds=10), old_day + timedelta(minutes=50, seconds=20),
                    "export 9")
    report = Retention(inst.settings, inst.db).run(now)
    kept = _kept_starts(inst, cam)
    hour = old_day + timedelta(hours=1)
    kept_old = sorted(int((k - old_day).total_seconds() // 60) for k in kept if old_day <= k < hour)
    assert kept_old == [10, 11, 20, 21, 30, 40, 41, 50]
    assert [k for k in kept if k >= recent] == [recent + timedelta(minutes=i) for i in range(10)]  # full window
    assert not [k for k in kept if k < old_day]  # past full + motion days: gone by age
    assert report.by_reason == {"age": 3, "tier": 52}
    # The files on disk are the index's, and the holes say why they are empty: one gap per deleted stretch.
    on_disk = sorted(p for p in inst.settings.recordings_path.rglob("*.mp4"))
    assert len(on_disk) == len(kept)
    with inst.db.session() as s:
        gaps = [(int((g.start_at - old_day).total_seconds() // 60), int((g.end_at - old_day).total_seconds() // 60))
                for g in s.scalars(select(Gap).where(Gap.camera_id == cam, Gap.reason == tiers.THINNED)
                                   .order_by(Gap.start_at))]
    assert gaps == [(0, 10), (12, 20), (22, 30), (31, 40), (42, 50), (51, 60)]
    # A second pass finds nothing new to decide.
    assert Retention(inst.settings, inst.db).run(now).by_reason == {}
    # An hour later the next files left the full window: the cursor goes on from where it stopped, the gap grows.
    _fake_archive(inst, cam, old_day + timedelta(hours=1), 5)
    assert Retention(inst.settings, inst.db).run(now).by_reason == {"tier": 5}
    with inst.db.session() as s:
        last = s.scalars(select(Gap).where(Gap.camera_id == cam, Gap.reason == tiers.THINNED)
                         .order_by(Gap.start_at.desc())).first()
    assert (last.start_at, last.end_at) == (old_day + timedelta(minutes=51), old_day + timedelta(minutes=65))


def test_without_a_motion_index_nothing_is_thinned(inst: Installation) -> None:
    """A camera whose motion analysis is off, or files older than the events themselves, keep everything."""
    inst.settings.storage.min_free_bytes = 0
    off, on = _camera(inst, retention_days=365), _camera(inst, retention_days=365)
    now = _minute(utcnow())
    with inst.db.session() as s:
        for cam in (off, on):
            tiers.set_camera_tier(s, SYSTEM, s.get(Camera, cam), 1, 30)
        s.add(CameraAnalysis(camera_id=off, motion=False))
    _fake_archive(inst, off, now - timedelta(days=3), 5)
    _fake_archive(inst, on, now - timedelta(days=3), 5)
    _fake_archive(inst, on, now - timedelta(days=20), 5)  # older than the events are kept (below)
    inst.settings.operations.events_retention_days = 10
    Retention(inst.settings, inst.db).run(now)
    assert len(_kept_starts(inst, off)) == 5
    assert [k for k in _kept_starts(inst, on)] == [now - timedelta(days=20) + timedelta(minutes=i) for i in range(5)]
    inst.settings.operations.enabled = False
    _fake_archive(inst, on, now - timedelta(days=2), 5)
    Retention(inst.settings, inst.db).run(now)
    assert len(_kept_starts(inst, on)) == 10


class PlanSource:
    """What a subscription plan does: give the cameras of its buildings a tier."""

    name = "plan:Эконом"

    def __init__(self, cameras: set[int]) -> None:
        self.cameras = cameras

    def policies(self, session, camera_ids):  # noqa: ANN001, ANN201
        return {c: tiers.TierPolicy(1, 10, source=self.name) for c in camera_ids if c in self.cameras}


def test_a_plan_fills_the_policy_and_the_cameras_own_setting_wins(inst: Installation) -> None:
    inst.settings.storage.min_free_bytes = 0
    planned, own, plain = (_camera(inst, retention_days=365) for _ in range(3))
    source = PlanSource({planned, own})
    tiers.register_source(source)
    try:
        with inst.db.session() as s:
            tiers.set_camera_tier(s, SYSTEM, s.get(Camera, own), 30, 0)
            got = tiers.policies(s, [planned, own, plain])
            assert got[planned] == tiers.TierPolicy(1, 10, source="plan:Эконом")
            assert (got[own].full_days, got[own].motion_days) == (30, 0)
            assert plain not in got
            assert tiers.tier_out(s, inst.settings, s.get(Camera, planned))["policy"]["source"] == "plan:Эконом"
            assert tiers.tier_out(s, inst.settings, s.get(Camera, own))["policy"]["source"] == "camera"
        now = _minute(utcnow())
        for cam in (planned, own, plain):
            _fake_archive(inst, cam, now - timedelta(days=3), 4)
        Retention(inst.settings, inst.db).run(now)
        assert [len(_kept_starts(inst, c)) for c in (planned, own, plain)] == [0, 4, 4]
        # 30 + 0 days: past 30 days nothing of `own` stays, whatever its retention_days says.
        _fake_archive(inst, own, now - timedelta(days=31), 2)
        Retention(inst.settings, inst.db).run(now)
        assert len(_kept_starts(inst, own)) == 4
    finally:
        tiers.unregister_source(source)


def test_tier_changes_are_validated_and_audited(inst: Installation) -> None:
    import pytest

    cam = _camera(inst)
    with inst.db.session() as s:
        camera = s.get(Camera, cam)
        for full, motion, problem in ((0, 5, "full_days"), (5, -1, "motion_days"), (5, 4000, "motion_days")):
            with pytest.raises(tiers.TierError, match=problem):
                tiers.set_camera_tier(s, SYSTEM, camera, full, motion)
        tiers.set_camera_tier(s, SYSTEM, camera, 7, 23)
        assert tiers.clear_camera_tier(s, SYSTEM, camera)
        records = s.scalars(select(AuditRecord).where(AuditRecord.action == tiers.TIER_CHANGED)
                            .order_by(AuditRecord.seq)).all()
    assert [r.details["after"] for r in records] == [{"full_days": 7, "motion_days": 23}, None]
