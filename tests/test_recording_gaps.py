"""Gaps a stopped recorder leaves open are closed when recording resumes: after a restart, after a stop that could not
write everything, and when a camera's stream URL changes under a running recorder. Real RTSP (the simulator), real
ffmpeg, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from kuzet.config import load_settings
from kuzet.installation import Installation
from kuzet.services.audit import SYSTEM
from kuzet.services.cameras import create_camera
from kuzet.services.places import create_place
from kuzet.services.recording.archive import timeline
from kuzet.services.recording.recorder import Recorder
from kuzet.store.db import utcnow
from kuzet.store.models import Camera
from kuzet.store.models.recording import Gap, Recording
from tests.conftest import make_installation
from tests.recording_support import ThreadedSim

pytestmark = pytest.mark.media

FAST = {"KUZET_RECORDER__FILE_SECONDS": "5", "KUZET_RECORDER__STALL_SECONDS": "3",
        "KUZET_RECORDER__FRAGMENT_SECONDS": "0.5", "KUZET_STORAGE__MIN_FREE_BYTES": "0"}


@pytest.fixture(scope="module")
def sim() -> Iterator[ThreadedSim]:
    server = ThreadedSim(2)
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def installation(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Installation]:
    inst, schema = make_installation(request.param, tmp_path / "data")
    env = {"KUZET_DATA_DIR": str(tmp_path / "data"), **FAST}
    if inst.settings.database_url:
        env["KUZET_DATABASE_URL"] = inst.settings.database_url
    inst.settings = load_settings(environ=env)
    yield inst
    inst.close()
    if schema:
        schema.drop()


def _camera(inst: Installation, url: str) -> int:
    with inst.db.session() as s:
        place = create_place(s, SYSTEM, "district", "D")
        return create_camera(s, SYSTEM, inst.keys, name="cam", place_id=place.id, main_url=url).id


def _gaps(inst: Installation, camera_id: int) -> list[Gap]:
    with inst.db.session() as s:
        return list(s.scalars(select(Gap).where(Gap.camera_id == camera_id).order_by(Gap.start_at, Gap.id)))


async def _until(check, timeout: float = 30, what: str = "") -> None:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def _record(inst: Installation, cam: int, seconds: float = 3.0) -> Recorder:
    """A recorder started, recording ``cam`` for a while, its index written."""
    recorder = Recorder(inst.settings, inst.db, inst.keys)
    await recorder.start()
    await _until(lambda: (recorder.health(cam) or {}).get("state") == "recording", what="recording")
    await asyncio.sleep(seconds)
    await recorder.index.flush()
    return recorder


def _recording_rows(inst: Installation, cam: int) -> list[Recording]:
    with inst.db.session() as s:
        return list(s.scalars(select(Recording).where(Recording.camera_id == cam).order_by(Recording.start_at)))


def test_a_restart_closes_the_gap_of_the_stopped_recorder(installation: Installation, sim: ThreadedSim) -> None:
    inst = installation
    cam = _camera(inst, sim.url(1))

    async def scenario() -> None:
        await (await _record(inst, cam)).stop()
        (stopped,) = _gaps(inst, cam)
        assert stopped.reason == "recorder_stopped" and stopped.end_at is None  # open while nobody records
        await asyncio.sleep(1.5)
        second = await _record(inst, cam)
        try:
            await _until(lambda: all(g.end_at is not None for g in _gaps(inst, cam)), what="the gap to close")
        finally:
            await second.stop()

    asyncio.run(scenario())
    gaps = _gaps(inst, cam)
    first_of_second_run = [r for r in _recording_rows(inst, cam) if r.start_at > gaps[0].start_at][0]
    assert gaps[0].end_at == first_of_second_run.start_at  # closed exactly where recording resumed
    with inst.db.session() as s:
        drawn = timeline(s, cam, gaps[0].start_at - timedelta(seconds=5), utcnow())["gaps"]
    assert [g["ongoing"] for g in drawn] == [False, True]  # the first closed; only the last stop is open


def test_stale_open_gaps_of_earlier_runs_are_closed(installation: Installation, sim: ThreadedSim) -> None:
    """Two open gaps for one camera (an earlier run's end was never written): both end when recording resumed, the
    older where the next one began, and none stays drawn under live recording."""
    inst = installation
    cam = _camera(inst, sim.url(1))

    async def scenario() -> None:
        await (await _record(inst, cam, 2)).stop()
        (gap,) = _gaps(inst, cam)
        with inst.db.session() as s:  # a second run that recorded and was killed before writing its gap's end
            s.add(Gap(camera_id=cam, start_at=gap.start_at + timedelta(seconds=1), end_at=None,
                      reason="recorder_stopped", message="recording stopped"))
        second = await _record(inst, cam)
        try:
            await _until(lambda: all(g.end_at is not None for g in _gaps(inst, cam)), what="every gap to close")
        finally:
            await second.stop()

    asyncio.run(scenario())
    older, newer, last = _gaps(inst, cam)
    assert older.end_at == newer.start_at
    assert newer.end_at is not None and newer.end_at > newer.start_at
    assert last.end_at is None  # the stop at the end of this test


def test_a_changed_stream_url_leaves_no_open_gap(installation: Installation, sim: ThreadedSim) -> None:
    """A camera moved to another stream while the recorder runs: the gap of the switch closes when the new stream
    records."""
    inst = installation
    cam = _camera(inst, sim.url(1))

    async def scenario() -> None:
        recorder = await _record(inst, cam, 2)
        try:
            with inst.db.session() as s:
                s.execute(update(Camera).where(Camera.id == cam).values(main_url=sim.url(2)))
            await recorder.reload()
            await _until(lambda: (recorder.health(cam) or {}).get("state") == "recording", what="recording again")
            await asyncio.sleep(1)
            await recorder.index.flush()
            await _until(lambda: all(g.end_at is not None for g in _gaps(inst, cam)), what="the switch's gap")
        finally:
            await recorder.stop()

    asyncio.run(scenario())
    gaps = _gaps(inst, cam)
    assert [g.end_at is None for g in gaps] == [False] * (len(gaps) - 1) + [True], gaps
