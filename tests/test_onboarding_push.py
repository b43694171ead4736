"""Cameras behind NAT push their stream: plain ffmpeg pushes RTMP (to nginx's RTMP module) and RTSP RECORD (to
GStreamer's RTSP server, relayed into nginx) with the camera's key, and the recorder records it like any camera; a
wrong key is refused and audited. Real nginx, GStreamer, ffmpeg and recorder; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from kuzet.services.audit import SYSTEM
from kuzet.services.recording.ffmpeg import ffmpeg_binary
from kuzet.services.recording.recorder import Recorder
from kuzet.services.simulator.clips import ensure_clip
from kuzet.store.models import AuditRecord, Camera
from tests.recording_support import TEST_MAIN, ffprobe
from tests.test_recording_engine import _cameras, _installation, _rows, _wait_recording


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _api_server(inst):  # noqa: ANN001, ANN202
    """The API on a real port, so that nginx and the relay can call it back."""
    import uvicorn

    from kuzet.api.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(inst), host="127.0.0.1", port=inst.settings.http.port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


def _push(protocol: str, url: str) -> subprocess.Popen:
    clip = ensure_clip(TEST_MAIN)
    out = ["-f", "flv", url] if protocol == "rtmp" else ["-f", "rtsp", "-rtsp_transport", "tcp", url]
    return subprocess.Popen([ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
                             "-stream_loop", "-1", "-i", str(clip), "-map", "0:v:0", "-c", "copy", *out],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    return proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_pushed_streams_are_recorded_and_wrong_keys_refused(tmp_path: Path, backend: str) -> None:
    from kuzet.services.onboarding.push import issue_key
    from kuzet.services.onboarding.relay import PushIngest, python_has_gi

    ports = {"KUZET_PUSH__RTMP_PORT": str(_free_port()), "KUZET_PUSH__RTSP_PORT": str(_free_port()),
             "KUZET_HTTP__PORT": str(_free_port()), "KUZET_PUSH__LISTEN": "127.0.0.1"}
    inst = _installation(tmp_path, backend, **ports)
    rtmp_cam, rtsp_cam = _cameras(inst, ["rtsp://192.0.2.1/placeholder", "rtsp://192.0.2.2/placeholder"])
    with inst.db.session() as s:
        rtmp = issue_key(s, SYSTEM, inst.settings, s.get(Camera, rtmp_cam), "rtmp")
        rtsp = issue_key(s, SYSTEM, inst.settings, s.get(Camera, rtsp_cam), "rtsp")
        stored = s.get(Camera, rtmp_cam).main_url
    assert rtmp["push_url"].startswith(f"rtmp://127.0.0.1:{ports['KUZET_PUSH__RTMP_PORT']}/push/{rtmp_cam}?key=")
    assert "key" not in stored and stored.startswith("rtmp://127.0.0.1:")  # the recorder reads the relay
    has_gi = python_has_gi()
    pushers: list[subprocess.Popen] = []

    async def scenario() -> dict:
        ingest = PushIngest(inst.settings, rtsp=has_gi)
        inst.running.push = ingest
        recorder = Recorder(inst.settings, inst.db, inst.keys)
        inst.running.recorder = recorder
        await ingest.start()
        await recorder.start()
        try:
            # A wrong key for an existing camera, and a key for a camera that does not push: refused at once.
            wrong = _push("rtmp", rtmp["push_url"].rsplit("=", 1)[0] + "=not-the-key")
            stranger = _push("rtmp", f"rtmp://127.0.0.1:{ports['KUZET_PUSH__RTMP_PORT']}/push/999?key=x")
            for proc in (wrong, stranger):
                await asyncio.to_thread(proc.wait, 30)
            pushers.append(_push("rtmp", rtmp["push_url"]))
            if has_gi:
                pushers.append(_push("rtsp", rtsp["push_url"]))
                bad_rtsp = _push("rtsp", rtsp["push_url"].rsplit("/", 1)[0] + "/wrong")
                await asyncio.to_thread(bad_rtsp.wait, 30)
            await _wait_recording(recorder, rtmp_cam, timeout=60)
            if has_gi:
                await _wait_recording(recorder, rtsp_cam, timeout=60)
            await asyncio.sleep(12)  # two 5 s files at least
            return {"wrong": wrong.returncode, "stranger": stranger.returncode,
                    "bad_rtsp": bad_rtsp.returncode if has_gi else None,
                    "health": recorder.health(rtmp_cam)}
        finally:
            for proc in pushers:
                _stop(proc)
            await recorder.stop()
            await ingest.stop()

    with _api_server(inst):
        result = asyncio.run(scenario())
    assert result["wrong"] != 0 and result["stranger"] != 0
    assert result["health"]["codec"] == "h264" and result["health"]["width"] == TEST_MAIN.width
    for cam in [rtmp_cam] + ([rtsp_cam] if has_gi else []):
        rows = [r for r in _rows(inst, cam) if r.state == "closed" and r.bytes > 0]
        assert len(rows) >= 2, f"camera {cam}: {len(rows)} closed files"
        probe = ffprobe(inst.settings.recordings_path / rows[0].path)  # plays as it is: copied, not re-encoded
        assert probe["codec"] == "h264" and probe["packets"] > 0
    with inst.db.session() as s:
        records = s.scalars(select(AuditRecord).where(AuditRecord.action.like("camera.push_%"))
                            .order_by(AuditRecord.seq)).all()
    refused = [(r.camera_id, r.details["reason"], r.details["protocol"]) for r in records
               if r.action == "camera.push_refused"]
    assert (rtmp_cam, "wrong key", "rtmp") in refused
    assert (None, "no such pushing camera", "rtmp") in refused
    if has_gi:
        assert result["bad_rtsp"] != 0
        assert (rtsp_cam, "wrong key", "rtsp") in refused
    started = [(r.camera_id, r.details["protocol"]) for r in records if r.action == "camera.push_started"]
    assert (rtmp_cam, "rtmp") in started
    if has_gi:
        assert started.count((rtsp_cam, "rtsp")) >= 1
    assert all(r.actor_name == "push-ingest" and r.ip for r in records if r.action != "camera.push_key_issued")


def test_push_keys_never_reach_a_log_line() -> None:
    from kuzet.logs import scrub

    line = ("publish rtmp://video.example.kz:1935/push/17?key=Zm9vYmFyYmF6cXV4&relay=c2VjcmV0 refused; "
            "rtsp://video.example.kz:8555/push/17/Zm9vYmFyYmF6cXV4/streamid=0 404")
    out = scrub(line)
    assert "Zm9vYmFyYmF6cXV4" not in out and "c2VjcmV0" not in out
    assert "/push/17?key=***" in out and "/push/17/***/streamid=0" in out
