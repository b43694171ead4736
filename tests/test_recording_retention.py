"""Retention: oldest first, per camera and per volume, never inside an evidence hold; the API around the archive."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from kuzet.installation import Installation
from kuzet.services.audit import SYSTEM
from kuzet.services.cameras import create_camera
from kuzet.services.places import create_place
from kuzet.services.recording.retention import Retention, create_hold
from kuzet.services.recording.segments import relative_path
from kuzet.store.db import utcnow
from kuzet.store.models.recording import Gap, Recording
from tests.conftest import login


def _fake_archive(inst: Installation, camera_id: int, start: datetime, files: int, size: int = 1000) -> list[int]:
    """Index rows and files of one minute each (content does not matter to retention)."""
    ids = []
    with inst.db.session() as s:
        for i in range(files):
            t = start + timedelta(minutes=i)
            rel = relative_path(camera_id, t)
            path = inst.settings.recordings_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * size)
            row = Recording(camera_id=camera_id, path=rel, start_at=t, end_at=t + timedelta(minutes=1), bytes=size,
                            state="closed", keyframes=b"")
            s.add(row)
            s.flush()
            ids.append(row.id)
    return ids


def _camera(inst: Installation, retention_days: int = 30) -> int:
    with inst.db.session() as s:
        place = create_place(s, SYSTEM, "district", "D")
        return create_camera(s, SYSTEM, inst.keys, name="c", place_id=place.id, main_url="rtsp://10.0.0.1/x",
                             retention_days=retention_days).id


def _remaining(inst: Installation) -> list[int]:
    with inst.db.session() as s:
        return list(s.scalars(select(Recording.id).order_by(Recording.start_at)))


def test_age_retention_keeps_each_cameras_days_and_holds(inst: Installation) -> None:
    inst.settings.storage.min_free_bytes = 0
    cam = _camera(inst, retention_days=2)
    now = utcnow()
    old = _fake_archive(inst, cam, now - timedelta(days=3), 10)
    fresh = _fake_archive(inst, cam, now - timedelta(hours=1), 5)
    with inst.db.session() as s:
        # an export covering old files 3..4 is on evidence hold
        create_hold(s, cam, now - timedelta(days=3) + timedelta(minutes=3, seconds=10),
                    now - timedelta(days=3) + timedelta(minutes=4, seconds=30), "export 17")
    report = Retention(inst.settings, inst.db).run(now)
    assert _remaining(inst) == [old[3], old[4]] + fresh
    assert report.by_reason == {"age": 8}
    with inst.db.session() as s:
        paths = list(s.scalars(select(Recording.path)))
    on_disk = sorted(str(p.relative_to(inst.settings.recordings_path))
                     for p in inst.settings.recordings_path.rglob("*.mp4"))
    assert on_disk == sorted(paths)  # files and index agree


def test_volume_limit_deletes_oldest_first_across_cameras(inst: Installation) -> None:
    inst.settings.storage.min_free_bytes = 0
    a, b = _camera(inst), _camera(inst)
    now = utcnow()
    a_ids = _fake_archive(inst, a, now - timedelta(hours=2), 6)  # oldest
    b_ids = _fake_archive(inst, b, now - timedelta(hours=1), 6)
    with inst.db.session() as s:
        create_hold(s, a, now - timedelta(hours=2), now - timedelta(hours=2) + timedelta(seconds=30), "case 4")
    inst.settings.storage.max_bytes = 7000
    Retention(inst.settings, inst.db).run(now)
    left = _remaining(inst)
    assert a_ids[0] in left  # held, though oldest
    assert sum(1 for _ in left) * 1000 <= 7000
    assert set(left) == {a_ids[0]} | set(b_ids)  # the rest of camera a went first: it was older


def test_full_volume_keeps_recording_by_deleting_oldest(tmp_path: Path) -> None:
    """A real recording into a volume capped at ~1.5 MB: the recorder keeps going; the archive stays under the cap."""
    from kuzet.services.recording.recorder import Recorder
    from kuzet.services.recording.runtime import RetentionService
    from tests.recording_support import ThreadedSim
    from tests.test_recording_engine import _cameras, _installation, _wait_recording

    sim = ThreadedSim(1)
    inst = _installation(tmp_path, KUZET_STORAGE__MAX_BYTES="1500000")
    (cam,) = _cameras(inst, [sim.url(1)])

    async def scenario() -> dict:
        recorder = Recorder(inst.settings, inst.db, inst.keys)
        inst.running.recorder = recorder
        await recorder.start()
        retention = RetentionService(inst, interval=1.0)
        await retention.start()
        await _wait_recording(recorder, cam)
        await asyncio.sleep(22)
        health = recorder.health(cam)
        await retention.stop()
        await recorder.stop()
        return health

    try:
        health = asyncio.run(scenario())
    finally:
        sim.close()
    assert health["state"] == "recording"
    with inst.db.session() as s:
        rows = list(s.scalars(select(Recording).order_by(Recording.start_at)))
    total = sum(r.bytes for r in rows)
    assert total <= 1_500_000 + 700_000  # at most the file being written over the cap
    assert rows[-1].end_at > utcnow() - timedelta(seconds=5)  # still recording at the end
    assert health["recorded_bytes"] > total  # something old was deleted to make room


def test_timeline_and_health_api_follow_grants(demo_inst: Installation, demo_client: TestClient) -> None:
    city = demo_inst.city
    own, other = city.cameras["b1e1"], city.cameras["b3e1"]
    now = utcnow()
    with demo_inst.db.session() as s:
        s.add(Gap(camera_id=own, start_at=now - timedelta(minutes=30), end_at=now - timedelta(minutes=20),
                  reason="unreachable", message="connection refused"))
    _fake_archive(demo_inst, own, now - timedelta(minutes=20), 3)
    headers = login(demo_client, "resident1")
    params = {"start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat()}
    tl = demo_client.get(f"/api/v1/cameras/{own}/timeline", params=params, headers=headers)
    assert tl.status_code == 200, tl.text
    body = tl.json()
    assert body["gaps"][0]["reason"] == "unreachable"
    assert len(body["recorded"]) == 1 and body["recorded_seconds"] == 180
    assert demo_client.get(f"/api/v1/cameras/{other}/timeline", params=params, headers=headers).status_code == 404
    health = demo_client.get(f"/api/v1/cameras/{own}/health", headers=headers)
    assert health.status_code == 200 and health.json()["state"] in ("offline", "recording", "connecting")
    assert demo_client.get(f"/api/v1/cameras/{other}/health", headers=headers).status_code == 404
    naive = demo_client.get(f"/api/v1/cameras/{own}/timeline", params={"start": "2025-01-01T00:00:00"},
                            headers=headers)
    assert naive.status_code == 422 and "timezone" in naive.json()["error"]["message"]
    # /metrics answers loopback clients when no metrics token is set (docs/access.md).
    with TestClient(demo_client.app, client=("127.0.0.1", 50000)) as local:
        assert local.get("/metrics").status_code == 200
    assert demo_client.get("/metrics").status_code == 404
    report = demo_client.get("/api/v1/storage", headers=login(demo_client, "admin")).json()
    mine = next(c for c in report["cameras"] if c["camera_id"] == own)
    assert mine["files"] >= 3 and mine["required_days"] == 30 and mine["meets_requirement"] is False
    assert demo_client.get("/api/v1/storage", headers=headers).status_code == 404
