"""Recordings in S3-compatible object storage, against a real SeaweedFS server, the real recorder and the RTSP
simulator: upload with verification, playback/clip/export of minutes that live only in S3, an outage of the store,
and retention deleting objects."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kuzet.api.app import create_app
from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.audit import SYSTEM, Actor
from kuzet.services.recording import metrics
from kuzet.services.recording.archive import plan_window, window_fmp4
from kuzet.services.recording.objectstore import ObjectStore
from kuzet.services.recording.recorder import Recorder
from kuzet.services.recording.retention import Retention, create_hold
from kuzet.services.recording.runtime import UploaderService
from kuzet.services.recording.seaweed import SeaweedServer
from kuzet.services.recording.storage import archive_store
from kuzet.services.recording.uploader import Uploader
from kuzet.services.watching.evidence import build_export, create_export, verify_bundle
from kuzet.store.db import utcnow
from kuzet.store.models import User
from kuzet.store.models.recording import EvidenceHold, Recording
from kuzet.store.models.watching import Export
from tests.conftest import login
from tests.recording_support import ThreadedSim, ffprobe
from tests.storage_support import s3_env, seaweed  # noqa: F401 (the fixture)
from tests.test_recording_engine import _cameras, _installation, _rows, _wait_recording

pytestmark = pytest.mark.media
PASSWORD = "a-long-enough-password"


@pytest.fixture(scope="module")
def sim() -> Iterator[ThreadedSim]:
    server = ThreadedSim(2)
    yield server
    server.close()


def _s3_installation(tmp_path: Path, backend: str, server: SeaweedServer, **extra: str) -> tuple[Installation, str]:
    bucket = f"kz-{uuid.uuid4().hex[:16]}"
    return _installation(tmp_path, backend, **s3_env(server, bucket, KUZET_STORAGE__S3__INTERVAL="0.5",
                                                     **extra)), bucket


def _store(inst: Installation) -> ObjectStore:
    return ObjectStore(inst.settings.storage.s3)


async def _record(inst: Installation, cam: int, seconds: float, during=None) -> UploaderService:  # noqa: ANN001
    """Run the recorder and the uploader for ``seconds`` (``during(uploader)`` runs meanwhile), then stop the
    recorder and let the uploader finish what is left."""
    recorder = Recorder(inst.settings, inst.db, inst.keys)
    inst.running.recorder = recorder
    uploader = UploaderService(inst)
    await recorder.start()
    await uploader.start()
    try:
        await _wait_recording(recorder, cam)
        if during is not None:
            await during(uploader)
        else:
            await asyncio.sleep(seconds)
    finally:
        await recorder.stop()
        await uploader.stop()
    await asyncio.to_thread(uploader.uploader.run_once)  # the last files, closed at stop
    return uploader


def _assert_all_in_s3(inst: Installation, cam: int) -> list[Recording]:
    """Every closed file is in S3 with the indexed size and checksum, and no longer on the local disk."""
    rows = _rows(inst, cam)
    assert rows and all(r.state == "closed" and r.object_key for r in rows)
    objects = _store(inst).list_sizes()
    assert {r.object_key: r.bytes for r in rows} == {k: v for k, v in objects.items() if k in
                                                     {r.object_key for r in rows}}
    assert sum(objects.values()) == sum(r.bytes for r in rows)  # bytes in S3 = bytes recorded
    assert not list(inst.settings.recordings_path.rglob("*.mp4"))  # local copies went after verification
    last = rows[-1]
    body = _store(inst).get_range(last.object_key, 0, last.bytes)
    assert hashlib.sha256(body).hexdigest() == last.sha256
    return rows


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_recordings_are_uploaded_and_play_clip_and_export_from_s3(tmp_path: Path, sim: ThreadedSim, backend: str,
                                                                  seaweed: SeaweedServer) -> None:  # noqa: F811
    inst, _bucket = _s3_installation(tmp_path, backend, seaweed)
    (cam,) = _cameras(inst, [sim.url(1)])
    start = utcnow()
    uploader = asyncio.run(_record(inst, cam, 12))
    rows = _assert_all_in_s3(inst, cam)
    assert len(rows) >= 2
    exposition = metrics.render(inst).decode()  # the buffer is monitored, and empty now
    assert "kuzet_upload_backlog_files 0.0" in exposition and "kuzet_upload_buffer_full 0.0" in exposition
    assert uploader.uploader.uploaded_bytes == sum(r.bytes for r in rows)

    with inst.db.session() as s:
        accounts.create_user(s, SYSTEM, "chief", PASSWORD, "platform_admin")
    mid = rows[0].start_at + timedelta(seconds=3)
    with TestClient(create_app(inst)) as client:
        headers = login(client, "chief", PASSWORD)
        # a clip cut from minutes that live only in S3 plays
        clip = client.get(f"/api/v1/cameras/{cam}/clip.mp4", headers=headers,
                          params={"start": mid.isoformat(), "end": (mid + timedelta(seconds=5)).isoformat()})
        assert clip.status_code == 200, clip.text
        (tmp_path / "clip.mp4").write_bytes(clip.content)
        assert 5 <= ffprobe(tmp_path / "clip.mp4")["duration"] <= 5 + 2.6
        # HLS reads byte ranges of one file: answered from S3 with 206 and the exact bytes
        row = rows[0]
        url = f"/api/v1/cameras/{cam}/recordings/{row.id}.mp4"
        part = client.get(url, headers={**headers, "Range": f"bytes={row.init_size}-{row.init_size + 999}"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes {row.init_size}-{row.init_size + 999}/{row.bytes}"
        assert part.content == _store(inst).get_range(row.object_key, row.init_size, row.init_size + 1000)
        whole = client.get(url, headers=headers)
        assert whole.status_code == 200 and hashlib.sha256(whole.content).hexdigest() == row.sha256
        assert client.get(url, headers={**headers, "Range": f"bytes={row.bytes + 5}-"}).status_code == 416
        # the HLS playlist of the window points at those files
        playlist = client.get(f"/api/v1/cameras/{cam}/archive.m3u8", headers=headers,
                              params={"start": start.isoformat(), "end": utcnow().isoformat()})
        assert playlist.status_code == 200 and f"recordings/{row.id}.mp4" in playlist.text

    # an evidence export of minutes that live only in S3 verifies
    with inst.db.session() as s:
        user = s.scalar(select(User).where(User.username == "chief"))
        export = create_export(s, Actor(user.id, user.username, "test"), user, [cam], mid,
                               mid + timedelta(seconds=6), "case 14")
        export_id = export.id
    build_export(inst, export_id)
    with inst.db.session() as s:
        export = s.get(Export, export_id)
        assert export.state == "done", export.error
        bundle = inst.settings.data_dir / export.path
    assert verify_bundle(bundle, inst.keys.public_key_pem()).ok
    with zipfile.ZipFile(bundle) as zf:
        video = next(n for n in zf.namelist() if n.endswith(f"camera-{cam}.mp4"))
        (tmp_path / "export.mp4").write_bytes(zf.read(video))
    assert ffprobe(tmp_path / "export.mp4")["duration"] >= 5
    inst.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_retention_deletes_objects_in_batches_and_keeps_held_ones(tmp_path: Path, sim: ThreadedSim, backend: str,
                                                                  seaweed: SeaweedServer) -> None:  # noqa: F811
    inst, _bucket = _s3_installation(tmp_path, backend, seaweed)
    (cam,) = _cameras(inst, [sim.url(2)])
    asyncio.run(_record(inst, cam, 11))
    rows = _assert_all_in_s3(inst, cam)
    held = rows[0]
    with inst.db.session() as s:
        hold = create_hold(s, cam, held.start_at + timedelta(seconds=1), held.start_at + timedelta(seconds=2),
                           "case 9")
        hold_id = hold.id
    # the uploader moves the held file's object under the held prefix (out of reach of a lifecycle rule on prefix)
    assert Uploader(inst.settings, inst.db).run_once().held == 1
    (moved,) = [r for r in _rows(inst, cam) if r.id == held.id]
    assert moved.object_key == f"held/{held.path}"
    objects = ObjectStore(inst.settings.storage.s3.model_copy(update={"prefix": ""})).list_sizes()
    assert objects[moved.object_key] == held.bytes and held.object_key not in objects
    with inst.db.session() as s:  # and it still plays from there
        window = (held.start_at, held.start_at + timedelta(seconds=3))
        pieces = plan_window(s, archive_store(inst.settings), cam, *window)
    (tmp_path / "held.mp4").write_bytes(b"".join(window_fmp4(pieces, *window)))
    assert ffprobe(tmp_path / "held.mp4")["duration"] >= 2
    # the camera keeps no days at all once time has moved on: everything but the held file goes
    later = utcnow() + timedelta(days=400)
    report = Retention(inst.settings, inst.db).run(later)
    left = _rows(inst, cam)
    assert [r.id for r in left] == [held.id]
    assert report.by_reason.get("age") == len(rows) - 1
    assert set(_store(inst).list_sizes()) == set()  # the objects went with their rows…
    everything = ObjectStore(inst.settings.storage.s3.model_copy(update={"prefix": ""}))
    assert set(everything.list_sizes()) == {moved.object_key}  # …but the held one
    with inst.db.session() as s:  # released: the next pass deletes it from the held prefix too
        s.get(EvidenceHold, hold_id).released_at = utcnow()
    Retention(inst.settings, inst.db).run(later)
    assert _rows(inst, cam) == [] and everything.list_sizes() == {}
    inst.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_store_outage_of_a_minute_loses_nothing(tmp_path: Path, sim: ThreadedSim, backend: str,
                                                seaweed: SeaweedServer) -> None:  # noqa: F811
    """S3 stopped for 60 s while a camera records: recording goes on, the local buffer holds (and says when it is
    over its limit), uploads catch up once the store is back, and the bytes in S3 are the bytes recorded."""
    inst, _bucket = _s3_installation(tmp_path, backend, seaweed, KUZET_STORAGE__S3__BUFFER_MAX_BYTES=str(1 << 20))
    (cam,) = _cameras(inst, [sim.url(1)])
    seen: dict = {}

    async def outage(service: UploaderService) -> None:
        uploader = service.uploader
        for _ in range(300):
            if uploader.uploaded_files >= 1:
                break
            await asyncio.sleep(0.1)
        assert uploader.uploaded_files >= 1  # the store takes files before the outage
        start = utcnow()
        await asyncio.to_thread(seaweed.stop)
        try:
            await asyncio.sleep(60)
            seen["recorder"] = inst.running.recorder.health(cam)["state"]
            seen["backlog"] = uploader.backlog
            seen["failing"] = uploader.failing_seconds
            seen["full"] = uploader.buffer_full
            seen["metrics"] = metrics.render(inst).decode()
            seen["outage"] = (start, utcnow())
            # minutes recorded during the outage are on the local disk and play from there meanwhile
            window = (start + timedelta(seconds=20), start + timedelta(seconds=30))
            with inst.db.session() as s:
                pieces = plan_window(s, archive_store(inst.settings), cam, *window)
            seen["local_clip"] = b"".join(window_fmp4(pieces, *window))
            seen["local_pieces"] = [(p.source.local, p.file_start.isoformat()) for p in pieces]
        finally:
            await asyncio.to_thread(seaweed.start)
        for _ in range(600):  # catch up
            if uploader.failing_since is None and uploader.backlog.files <= 1:
                break
            await asyncio.sleep(0.1)
        seen["caught_up"] = uploader.failing_since is None

    try:
        asyncio.run(_record(inst, cam, 0, during=outage))
    finally:
        if seaweed.process is None:
            seaweed.start()
    assert seen["recorder"] == "recording", seen  # recording never waited for the store
    assert seen["backlog"].files >= 5 and seen["backlog"].bytes > 1 << 20 and seen["full"], seen
    assert seen["failing"] > 30, seen
    assert "kuzet_upload_buffer_full 1.0" in seen["metrics"], seen["metrics"]
    assert seen["caught_up"], seen
    (tmp_path / "during.mp4").write_bytes(seen["local_clip"])
    assert ffprobe(tmp_path / "during.mp4")["duration"] >= 9, seen["local_pieces"]
    rows = _assert_all_in_s3(inst, cam)  # nothing lost: every file is in S3, byte for byte
    with inst.db.session() as s:
        from kuzet.services.recording.archive import timeline

        start, end = seen["outage"]
        tl = timeline(s, cam, start, end)
    assert tl["recorded_seconds"] >= (end - start).total_seconds() - 1, tl  # the outage left no hole in the video
    assert rows[0].start_at < start and rows[-1].end_at > end
    inst.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_cli_upload_drains_the_buffer_and_never_shows_the_secret(tmp_path: Path, backend: str,
                                                                 seaweed: SeaweedServer) -> None:  # noqa: F811
    import json
    import os

    from typer.testing import CliRunner

    from kuzet.cli.main import app as cli_app
    from kuzet.services.recording.segments import relative_path

    inst, bucket = _s3_installation(tmp_path, backend, seaweed)
    (cam,) = _cameras(inst, ["rtsp://10.0.0.1/x"])
    t0 = utcnow() - timedelta(minutes=10)
    with inst.db.session() as s:
        for i in range(3):
            rel = relative_path(cam, t0 + timedelta(minutes=i))
            path = inst.settings.recordings_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(50_000 + i))
            s.add(Recording(camera_id=cam, path=rel, start_at=t0 + timedelta(minutes=i),
                            end_at=t0 + timedelta(minutes=i + 1), bytes=50_000 + i, state="closed", keyframes=b""))
    env = {**s3_env(seaweed, bucket), **({"KUZET_DATABASE_URL": inst.settings.database_url}
                                         if inst.settings.database_url else {})}
    data = str(inst.settings.data_dir)
    wrong = CliRunner().invoke(cli_app, ["upload", "--data", data, "--json"],
                               env={**env, "KUZET_STORAGE__S3__SECRET_KEY": "not-the-secret-x9"})
    assert wrong.exit_code == 1 and "not-the-secret-x9" not in wrong.output
    assert "object store failed" in wrong.output and '"uploaded": 0' in wrong.output
    listed = CliRunner().invoke(cli_app, ["storage", "--data", data], env=env)
    assert listed.exit_code == 0 and "3 files" in listed.stdout and seaweed.secret_key not in listed.output
    done = CliRunner().invoke(cli_app, ["upload", "--data", data, "--json"], env=env)
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert out["uploaded"] == 3 and out["bytes"] == 150_003 and out["waiting"]["files"] == 0
    assert sorted(_store(inst).list_sizes().values()) == [50_000, 50_001, 50_002]
    assert not list(inst.settings.recordings_path.rglob("*.mp4"))
    inst.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_recorder_node_counts_its_own_backlog_and_leaves_other_nodes_files(tmp_path: Path, backend: str,
                                                                            seaweed: SeaweedServer) -> None:  # noqa: F811
    """With several recorder nodes: the backlog a node reports (its ``recorder_nodes`` row, the gauges) is the files
    on its own disk; another node's waiting files are looked for once, then left to that node."""
    import os

    from kuzet.services.recording.segments import relative_path

    inst, bucket = _s3_installation(tmp_path, backend, seaweed)
    (cam,) = _cameras(inst, ["rtsp://10.0.0.1/x"])
    t0 = utcnow() - timedelta(minutes=10)
    with inst.db.session() as s:
        for i, node in enumerate(["rec-a", "rec-b", None]):
            rel = relative_path(cam, t0 + timedelta(minutes=i))
            if node != "rec-b":  # rec-b's file is on rec-b's disk, not here
                path = inst.settings.recordings_path / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(os.urandom(40_000 + i))
            s.add(Recording(camera_id=cam, path=rel, start_at=t0 + timedelta(minutes=i), node=node,
                            end_at=t0 + timedelta(minutes=i + 1), bytes=40_000 + i, state="closed", keyframes=b""))
    uploader = Uploader(inst.settings, inst.db, node="rec-a")
    try:
        before = uploader.measure()
        assert (before.files, before.bytes) == (2, 80_002)  # rec-a's and the one written before the cluster
        first = uploader.run_once()
        assert first.uploaded == 2 and (first.backlog.files, first.backlog.bytes) == (0, 0)
        assert len(uploader._elsewhere) == 1  # rec-b's row: not looked for again
        assert uploader.run_once().uploaded == 0
        everyone = Uploader(inst.settings, inst.db).measure()  # a single box (or `kuzet upload`) counts every file
        assert (everyone.files, everyone.bytes) == (1, 40_001)
    finally:
        uploader.close()
    assert sorted(_store(inst).list_sizes().values()) == [40_000, 40_002]
    inst.close()
