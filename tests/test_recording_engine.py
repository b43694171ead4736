"""The recording engine against real RTSP cameras (the simulator) and real ffmpeg."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from kuzet.config import load_settings
from kuzet.installation import Installation
from kuzet.services.audit import SYSTEM
from kuzet.services.cameras import allowed_schemes, create_camera
from kuzet.services.places import create_place
from kuzet.services.recording.archive import plan_window, timeline, window_fmp4
from kuzet.services.recording.index import scan_file
from kuzet.services.recording.recorder import Recorder
from kuzet.store.db import utcnow
from kuzet.store.models.recording import Recording
from tests.conftest import make_installation
from tests.recording_support import ThreadedSim, ffprobe

pytestmark = pytest.mark.media

FAST = {"KUZET_RECORDER__FILE_SECONDS": "5", "KUZET_RECORDER__STALL_SECONDS": "3",
        "KUZET_RECORDER__FRAGMENT_SECONDS": "0.5", "KUZET_STORAGE__MIN_FREE_BYTES": "0"}


@pytest.fixture(scope="module")
def sim() -> Iterator[ThreadedSim]:
    server = ThreadedSim(6, credentials={6: "admin:right"})
    yield server
    server.close()


def _installation(tmp_path: Path, backend: str = "sqlite", **extra: str) -> Installation:
    inst, _schema = make_installation(backend, tmp_path / "data")
    env = {"KUZET_DATA_DIR": str(tmp_path / "data"), **FAST, **extra}
    if inst.settings.database_url:
        env["KUZET_DATABASE_URL"] = inst.settings.database_url
    inst.settings = load_settings(environ=env)
    return inst


def _cameras(inst: Installation, urls: list[str]) -> list[int]:
    with inst.db.session() as s:
        place = create_place(s, SYSTEM, "district", "D")
        return [create_camera(s, SYSTEM, inst.keys, name=f"cam{i}", place_id=place.id, main_url=u,
                              url_schemes=allowed_schemes(inst.settings)).id
                for i, u in enumerate(urls)]


def _rows(inst: Installation, camera_id: int) -> list[Recording]:
    with inst.db.session() as s:
        return list(s.scalars(select(Recording).where(Recording.camera_id == camera_id)
                              .order_by(Recording.start_at)))


async def _wait_recording(recorder: Recorder, camera_id: int, timeout: float = 20) -> None:
    for _ in range(int(timeout * 10)):
        health = recorder.health(camera_id)
        if health and health["state"] == "recording":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"camera {camera_id} never started recording: {recorder.health(camera_id)}")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_recording_plays_and_covers_the_window(tmp_path: Path, sim: ThreadedSim, backend: str) -> None:
    inst = _installation(tmp_path, backend)
    (cam,) = _cameras(inst, [sim.url(1)])

    async def scenario():  # noqa: ANN202
        recorder = Recorder(inst.settings, inst.db, inst.keys)
        await recorder.start()
        await _wait_recording(recorder, cam)
        start = utcnow()
        await asyncio.sleep(12)
        end = utcnow()
        health = recorder.health(cam)
        await recorder.stop()
        return start, end, health

    start, end, health = asyncio.run(scenario())
    assert health["codec"] == "h264" and (health["width"], health["height"]) == (640, 360)
    assert 20 <= health["fps"] <= 30 and health["bitrate_bps"] > 100_000
    rows = _rows(inst, cam)
    assert len(rows) >= 2 and all(r.state == "closed" for r in rows)
    for row in rows:
        path = inst.settings.recordings_path / row.path
        probed = ffprobe(path)
        assert probed["codec"] == "h264"
        # each file plays on its own and lasts what the index says, to within one fragment
        assert abs(probed["duration"] - (row.end_at - row.start_at).total_seconds()) <= 0.6
        assert path.stat().st_size == row.bytes
        assert (row.end_at - row.start_at).total_seconds() <= 5 + 2.5  # rotation at the first keyframe after 5 s
    with inst.db.session() as s:
        tl = timeline(s, cam, start, end)
    assert len(tl["recorded"]) == 1
    assert tl["recorded_seconds"] >= (end - start).total_seconds() - 0.6  # covers the window within a fragment
    # any window is cut from the archive without re-encoding and plays
    mid = start + timedelta(seconds=4)
    with inst.db.session() as s:
        pieces = plan_window(s, inst.settings.recordings_path, cam, mid, mid + timedelta(seconds=5))
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"".join(window_fmp4(pieces, mid, mid + timedelta(seconds=5))))
    probed = ffprobe(clip)
    assert 5 <= probed["duration"] <= 5 + 2.6  # starts at the keyframe before the instant (GOP 2 s)
    inst.close()


def test_camera_stop_restart_gives_one_gap_and_resumes(tmp_path: Path, sim: ThreadedSim) -> None:
    inst = _installation(tmp_path)
    (cam,) = _cameras(inst, [sim.url(2)])

    async def scenario():  # noqa: ANN202
        recorder = Recorder(inst.settings, inst.db, inst.keys)
        await recorder.start()
        await _wait_recording(recorder, cam)
        await asyncio.sleep(3)
        sim.set_mode(2, "off")
        await asyncio.sleep(5)
        assert recorder.health(cam)["state"] in ("offline", "connecting")
        sim.set_mode(2, "normal")
        await asyncio.sleep(1)
        await _wait_recording(recorder, cam, 40)
        await asyncio.sleep(3)
        await recorder.stop()

    begin = utcnow()
    asyncio.run(scenario())
    with inst.db.session() as s:
        tl = timeline(s, cam, begin, utcnow())
    closed = [g for g in tl["gaps"] if not g["ongoing"]]
    assert len(closed) == 1, tl["gaps"]
    assert closed[0]["reason"] == "unreachable"
    assert (closed[0]["end"] - closed[0]["start"]).total_seconds() >= 4
    assert len(tl["recorded"]) == 2
    # the gap sits exactly between the two recorded ranges
    assert abs((closed[0]["start"] - tl["recorded"][0]["end"]).total_seconds()) < 0.01
    assert abs((closed[0]["end"] - tl["recorded"][1]["start"]).total_seconds()) < 0.01
    inst.close()


def test_killed_ingest_resumes_and_earlier_files_stay_playable(tmp_path: Path, sim: ThreadedSim) -> None:
    inst = _installation(tmp_path)
    (cam,) = _cameras(inst, [sim.url(3)])

    async def scenario():  # noqa: ANN202
        recorder = Recorder(inst.settings, inst.db, inst.keys)
        await recorder.start()
        await _wait_recording(recorder, cam)
        await asyncio.sleep(6)
        pid = recorder.cameras[cam].ingest.pid
        os.kill(pid, signal.SIGKILL)
        killed_at = utcnow()
        await asyncio.sleep(0.5)
        await _wait_recording(recorder, cam, 10)  # resumes within 10 s
        resumed_at = utcnow()
        assert recorder.cameras[cam].ingest.pid != pid
        await asyncio.sleep(3)
        await recorder.stop()
        return killed_at, resumed_at

    killed_at, resumed_at = asyncio.run(scenario())
    assert (resumed_at - killed_at).total_seconds() < 10
    rows = _rows(inst, cam)
    for row in rows:
        assert ffprobe(inst.settings.recordings_path / row.path)["packets"] > 0
    with inst.db.session() as s:
        reasons = [g["reason"] for g in timeline(s, cam, killed_at - timedelta(seconds=30), utcnow())["gaps"]
                   if not g["ongoing"]]
    assert reasons == ["ingest_failed"]
    inst.close()


def test_bad_cameras_do_not_affect_the_others(tmp_path: Path, sim: ThreadedSim) -> None:
    """One camera sends garbage, one stalls, one refuses our password: the healthy one records without a gap."""
    inst = _installation(tmp_path)
    good, garbage, stall, auth = _cameras(inst, [sim.url(4), sim.url(5), sim.url(1),
                                                 sim.url(6, credentials="admin:wrong")])

    async def scenario():  # noqa: ANN202
        recorder = Recorder(inst.settings, inst.db, inst.keys)
        await recorder.start()
        await _wait_recording(recorder, good)
        await _wait_recording(recorder, stall)
        start = utcnow()
        sim.set_mode(5, "garbage")
        sim.set_mode(1, "stall")
        await asyncio.sleep(9)
        end = utcnow()
        healths = {c: recorder.health(c) for c in (good, garbage, stall, auth)}
        await recorder.stop()
        sim.set_mode(5, "normal")
        sim.set_mode(1, "normal")
        return start, end, healths

    start, end, healths = asyncio.run(scenario())
    assert healths[good]["state"] == "recording" and healths[good]["reconnects"] == 0
    assert healths[stall]["reason"] == "stalled"
    assert healths[auth]["reason"] == "auth_failed" and "admin:wrong" not in str(healths[auth])
    with inst.db.session() as s:
        tl = timeline(s, good, start, end)
        assert tl["gaps"] == [] and tl["recorded_seconds"] >= (end - start).total_seconds() - 0.6
        assert [g["reason"] for g in timeline(s, stall, start, end)["gaps"]] == ["stalled"]
        assert timeline(s, garbage, start, end)["gaps"][0]["reason"] in ("stream_ended", "stream_error")
    inst.close()


def test_killed_recorder_restarts_with_index_and_files_in_agreement(tmp_path: Path, sim: ThreadedSim) -> None:
    """SIGKILL the whole recorder (a separate process) mid-file; the next start repairs the index from the files."""
    import subprocess
    import sys
    import time

    inst = _installation(tmp_path)
    (cam,) = _cameras(inst, [sim.url(2)])
    script = (
        "import asyncio\n"
        "from kuzet.config import load_settings\n"
        "from kuzet.installation import Installation\n"
        "from kuzet.services.recording.recorder import Recorder\n"
        "inst = Installation.open(settings=load_settings())\n"
        "async def main():\n"
        "    r = Recorder(inst.settings, inst.db, inst.keys)\n"
        "    await r.start()\n"
        "    await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "KUZET_DATA_DIR": str(inst.settings.data_dir), **FAST}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    try:
        deadline = time.time() + 40
        while time.time() < deadline and sum(r.fragments for r in _rows(inst, cam)) < 12:
            time.sleep(0.5)
        time.sleep(1.3)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    open_rows = [r for r in _rows(inst, cam) if r.state == "open"]
    assert open_rows, "the killed recorder should have left its current file open"

    async def restart():  # noqa: ANN202
        recorder = Recorder(inst.settings, inst.db, inst.keys)
        await recorder.start()
        await _wait_recording(recorder, cam)
        await asyncio.sleep(2)
        await recorder.stop()

    asyncio.run(restart())
    rows = _rows(inst, cam)
    assert all(r.state == "closed" for r in rows)
    for row in rows:
        path = inst.settings.recordings_path / row.path
        values, size = scan_file(path, row.start_at)
        assert path.stat().st_size == size == row.bytes  # index and file agree byte for byte
        assert values["keyframes"] == row.keyframes
        assert ffprobe(path)["packets"] > 0
    with inst.db.session() as s:
        gaps = timeline(s, cam, rows[0].start_at, utcnow())["gaps"]
    assert "recorder_stopped" in [g["reason"] for g in gaps]
    inst.close()


def test_h265_camera_is_recorded_as_it_is(tmp_path: Path) -> None:
    """An H.265 source (a file source, as FFmpeg reads any) is remuxed, indexed as h265 and plays."""
    import subprocess

    source = tmp_path / "h265.mp4"
    made = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=8",
         "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:log-level=error",
         "-tag:v", "hvc1", str(source)], capture_output=True, timeout=120)
    if made.returncode != 0:
        pytest.skip("this ffmpeg has no libx265")
    inst = _installation(tmp_path)
    # A local file as a camera: only where the installation allows the file: scheme (tests, demos).
    inst.settings.security.camera_url_schemes.append("file")
    (cam,) = _cameras(inst, [f"file://{source}"])

    async def scenario() -> dict:
        recorder = Recorder(inst.settings, inst.db, inst.keys)
        await recorder.start()
        await _wait_recording(recorder, cam)
        await asyncio.sleep(4)
        health = recorder.health(cam)
        await recorder.stop()
        return health

    health = asyncio.run(scenario())
    assert health["codec"] == "h265"
    rows = _rows(inst, cam)
    assert rows and all(r.codec == "h265" for r in rows)
    assert ffprobe(inst.settings.recordings_path / rows[0].path)["codec"] == "hevc"
    inst.close()
