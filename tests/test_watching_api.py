"""Watching through the API with the recorder running on real RTSP cameras: live over WebSocket and HLS, archive
HLS and MP4 clips, sealed evidence exports, and the audit trail of every view."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from kuzet.installation import Installation
from kuzet.store.db import utcnow
from tests.conftest import login
from tests.recording_support import ThreadedSim, ffprobe
from tests.watching_support import streaming_demo

pytestmark = pytest.mark.media


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Installation, TestClient]]:
    from kuzet.api.app import create_app

    sim = ThreadedSim(4)
    inst = streaming_demo(tmp_path_factory.mktemp("watching") / "data", sim)
    with TestClient(create_app(inst, run_services=True)) as client:
        recorder = inst.running.recorder
        deadline = time.time() + 40
        live = [inst.city.cameras[s] for s in ("b1e1", "b1yard", "b3e1", "d1street1")]
        while time.time() < deadline and not all((recorder.health(c) or {}).get("state") == "recording"
                                                 for c in live):
            time.sleep(0.3)
        time.sleep(8)  # some archive to watch
        yield inst, client
    inst.close()
    sim.close()


def _cam(inst: Installation, slug: str) -> int:
    return inst.city.cameras[slug]


def test_live_websocket_gives_init_and_fragments_to_granted_users_only(served) -> None:  # noqa: ANN001
    inst, client = served
    own, other = _cam(inst, "b1e1"), _cam(inst, "b3e1")
    client.post("/api/v1/auth/login", json={"username": "resident1", "password": "demo"})
    with client.websocket_connect(f"/api/v1/cameras/{own}/live") as ws:
        header = json.loads(ws.receive_text())
        assert header["type"] == "init" and header["codec"] == "h264"
        assert header["mime"].startswith('video/mp4; codecs="avc1.')
        init = ws.receive_bytes()
        assert init[4:8] == b"ftyp" and b"moov" in init
        clock = json.loads(ws.receive_text())  # maps media time to wall-clock time, before the first keyframe
        assert clock["type"] == "clock" and clock["media"] >= 0
        first = ws.receive_bytes()
        assert first[4:8] == b"moof"
        for _ in range(3):
            assert ws.receive_bytes()[4:8] == b"moof"
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect(f"/api/v1/cameras/{other}/live") as ws:
        ws.receive_text()
    assert info.value.code == 4404
    client.post("/api/v1/auth/logout", headers={"X-Requested-With": "kuzet"})
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect(f"/api/v1/cameras/{own}/live") as ws:
        ws.receive_text()
    assert info.value.code == 4401


def test_resident_sees_duty_units_view_in_their_access_log(served) -> None:  # noqa: ANN001
    inst, client = served
    own = _cam(inst, "b1e1")
    client.post("/api/v1/auth/login", json={"username": "duty1", "password": "demo"})
    with client.websocket_connect(f"/api/v1/cameras/{own}/live") as ws:
        ws.receive_text()
    client.post("/api/v1/auth/logout", headers={"X-Requested-With": "kuzet"})
    log = client.get("/api/v1/audit", params={"camera": own}, headers=login(client, "resident1")).json()
    views = [r for r in log["items"] if r["action"] == "video.live" and r["actor_name"] == "duty1"]
    assert views, log["items"][:5]
    assert "дежурную часть" in views[0]["legal_basis"]


def test_third_party_player_reads_live_hls_with_a_token(served, tmp_path: Path) -> None:  # noqa: ANN001
    inst, client = served
    cam = _cam(inst, "d1street1")
    token = client.post("/api/v1/auth/tokens", json={"name": "vlc"}, headers=login(client, "center")).json()["token"]
    playlist = client.get(f"/api/v1/cameras/{cam}/live.m3u8", params={"token": token})
    assert playlist.status_code == 200, playlist.text
    text = playlist.text
    assert text.startswith("#EXTM3U") and "#EXT-X-MAP" in text and f"token={token}" in text
    seg_url = [line for line in text.splitlines() if line.endswith(f"token={token}") and ".m4s" in line][-1]
    init = client.get(f"/api/v1/cameras/{cam}/live/init.mp4", params={"token": token}).content
    seg = client.get(seg_url).content
    out = tmp_path / "live.mp4"
    out.write_bytes(init + seg)
    assert ffprobe(out)["packets"] >= 20
    assert client.get(f"/api/v1/cameras/{cam}/live.m3u8", params={"token": "wrong"}).status_code == 401
    other = client.post("/api/v1/auth/tokens", json={"name": "x"}, headers=login(client, "resident1")).json()["token"]
    assert client.get(f"/api/v1/cameras/{cam}/live.m3u8", params={"token": other}).status_code == 404


def test_sub_stream_over_hls_and_websocket_is_the_sub_stream(served, tmp_path: Path) -> None:  # noqa: ANN001
    """The one stream resolution (services/watching/streams.py) behind every live path: an explicit ``sub`` is
    honoured on a camera that has one, and a sub-stream playlist's init and segments are the sub stream's."""
    import re

    from kuzet.services.recording.mp4 import parse_init

    inst, client = served
    cam = _cam(inst, "b3e1")  # not d1street1: its viewing records are counted by the usage test
    token = client.post("/api/v1/auth/tokens", json={"name": "tile"}, headers=login(client, "center")).json()["token"]
    playlist = client.get(f"/api/v1/cameras/{cam}/live.m3u8", params={"token": token, "stream": "sub"})
    assert playlist.status_code == 200, playlist.text
    init_url = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist.text)[1]
    seg_url = [line for line in playlist.text.splitlines() if ".m4s" in line][-1]
    assert "stream=sub" in init_url and "stream=sub" in seg_url and f"token={token}" in seg_url
    init = client.get(init_url).content
    sub_width = parse_init(init).width
    out = tmp_path / "sub.mp4"
    out.write_bytes(init + client.get(seg_url).content)
    assert ffprobe(out)["packets"] >= 5
    client.post("/api/v1/auth/login", json={"username": "center", "password": "demo"})
    widths = {}
    for stream in ("sub", "main"):
        with client.websocket_connect(f"/api/v1/cameras/{cam}/live?stream={stream}") as ws:
            header = json.loads(ws.receive_text())
            assert header["stream"] == stream
            widths[stream] = header["width"]
    client.post("/api/v1/auth/logout", headers={"X-Requested-With": "kuzet"})
    assert widths["sub"] == sub_width < widths["main"]


def test_archive_clip_and_vod_playlist_cut_without_reencoding(served, tmp_path: Path) -> None:  # noqa: ANN001
    inst, client = served
    cam = _cam(inst, "b1yard")
    headers = login(client, "resident1")
    end = utcnow() - timedelta(seconds=2)
    start = end - timedelta(seconds=5)
    response = client.get(f"/api/v1/cameras/{cam}/clip.mp4", params={"start": start.isoformat(),
                                                                      "end": end.isoformat()}, headers=headers)
    assert response.status_code == 200, response.text
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(response.content)
    probed = ffprobe(clip)
    assert probed["codec"] == "h264" and 4.4 <= probed["duration"] <= 5 + 2.6
    first = response.headers["X-Kuzet-Start"]
    from datetime import datetime

    assert timedelta(0) <= start - datetime.fromisoformat(first) <= timedelta(seconds=2.1)  # keyframe before start
    vod = client.get(f"/api/v1/cameras/{cam}/archive.m3u8", params={"start": start.isoformat(),
                                                                     "end": end.isoformat()}, headers=headers)
    assert vod.status_code == 200 and "#EXT-X-ENDLIST" in vod.text and "#EXT-X-BYTERANGE" in vod.text
    log = client.get("/api/v1/audit", params={"camera": cam}, headers=headers).json()["items"]
    assert {"video.clip", "video.archive"} <= {r["action"] for r in log}
    assert client.get(f"/api/v1/cameras/{_cam(inst, 'b3e1')}/clip.mp4", params={
        "start": start.isoformat(), "end": end.isoformat()}, headers=headers).status_code == 404


def _wait_export(client: TestClient, export_id: str, headers: dict) -> dict:
    for _ in range(200):
        state = client.get(f"/api/v1/exports/{export_id}", headers=headers).json()
        if state["state"] in ("done", "failed"):
            return state
        time.sleep(0.1)
    raise AssertionError("export did not finish")


def _verify(bundle: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kuzet.cli.main", "export", "verify", str(bundle), *extra],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200",
                               "PYTHONPATH": os.environ.get("PYTHONPATH", "")})  # the code under test


def _rewrite(bundle: Path, target: Path, member_suffix: str, offset: int) -> None:
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            data = bytearray(src.read(info))
            if info.filename.endswith(member_suffix):
                data[min(offset, len(data) - 1)] ^= 0x01
            dst.writestr(info, bytes(data))


def test_export_of_three_cameras_verifies_and_detects_tampering(served, tmp_path: Path) -> None:  # noqa: ANN001
    inst, client = served
    headers = login(client, "center")
    cams = [_cam(inst, s) for s in ("b1e1", "b1yard", "d1street1")]
    end = utcnow() - timedelta(seconds=2)
    start = end - timedelta(seconds=5)
    created = client.post("/api/v1/exports", headers=headers, json={
        "cameras": cams, "start": start.isoformat(), "end": end.isoformat(), "reason": "Уголовное дело № 123 (тест)"})
    assert created.status_code == 201, created.text
    state = _wait_export(client, created.json()["id"], headers)
    assert state["state"] == "done", state
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(client.get(f"/api/v1/exports/{state['id']}/bundle", headers=headers).content)
    with zipfile.ZipFile(bundle) as zf:
        names = {n.split("/", 1)[1] for n in zf.namelist()}
        manifest = json.loads(zf.read(f"{state['id']}/manifest.json"))
        verify_text = zf.read(f"{state['id']}/VERIFY.txt").decode()
    assert {f"camera-{c}.mp4" for c in cams} <= names
    assert {"manifest.json", "manifest.sig", "public_key.pem", "VERIFY.txt", "SHA256SUMS"} <= names
    assert "sha256sum -c SHA256SUMS" in verify_text and "openssl pkeyutl -verify" in verify_text
    assert manifest["reason"] == "Уголовное дело № 123 (тест)" and manifest["exported_by"]["username"] == "center"
    assert [c["camera_id"] for c in manifest["cameras"]] == sorted(cams)
    assert all(c["lat"] is not None and c["place"]["name"] for c in manifest["cameras"])
    assert "recorder host" in manifest["clock_source"]
    ok = _verify(bundle, "--data", str(inst.settings.data_dir))
    assert ok.returncode == 0, ok.stderr
    for member, offset, expected in ((f"camera-{cams[1]}.mp4", 5000, f"camera-{cams[1]}.mp4"),
                                     ("manifest.json", 40, "manifest.json")):
        bad = tmp_path / f"bad-{member}.zip"
        _rewrite(bundle, bad, member, offset)
        out = _verify(bad)
        assert out.returncode == 1 and expected in out.stderr, out.stderr
    # the exported window is on evidence hold: even a retention that wants everything gone keeps it
    from sqlalchemy import select

    from kuzet.services.recording.retention import Retention
    from kuzet.store.models.recording import Recording

    inst.settings.storage.max_bytes = 1
    try:
        Retention(inst.settings, inst.db).run()
    finally:
        inst.settings.storage.max_bytes = None
    with inst.db.session() as session:
        for cam in cams:
            kept = session.scalars(select(Recording).where(Recording.camera_id == cam, Recording.start_at < end,
                                                           Recording.end_at > start)).all()
            assert kept, f"camera {cam}: held recording deleted"
    refetched = client.get(f"/api/v1/exports/{state['id']}/bundle", headers=headers)
    assert refetched.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(refetched.content)).testzip() is None
    # a resident may not export another building's camera, and an export needs a reason
    resident = login(client, "resident1")
    assert client.post("/api/v1/exports", headers=resident, json={
        "cameras": [_cam(inst, "b3e1")], "start": start.isoformat(), "end": end.isoformat(),
        "reason": "x"}).status_code == 404
    assert client.post("/api/v1/exports", headers=headers, json={
        "cameras": cams, "start": start.isoformat(), "end": end.isoformat(), "reason": " "}).status_code == 422


def test_codec_strings_for_media_source_extensions() -> None:
    from kuzet.api.routes.watching import codec_string

    avc = b"\x00\x00\x00\x10avcC\x01\x4d\x40\x1f\xff"
    assert codec_string(b"....moov" + avc) == "avc1.4d401f"
    assert codec_string(b"....moov....hvcC\x01").startswith("hvc1.")


def _views(client: TestClient, camera: int, action: str, since_seq: int) -> list[dict]:
    items = client.get("/api/v1/audit", params={"camera": camera, "action": action, "limit": 200},
                       headers=login(client, "auditor")).json()["items"]
    return [r for r in items if r["seq"] > since_seq]


def _last_seq(client: TestClient) -> int:
    return client.get("/api/v1/audit", params={"limit": 1}, headers=login(client, "auditor")).json()["items"][0]["seq"]


def test_every_hls_viewer_and_every_archive_file_is_an_audit_record(served) -> None:  # noqa: ANN001
    """One record per viewing session — per token, not per process — however many requests a player makes."""
    inst, client = served
    cam = _cam(inst, "d1street1")
    since = _last_seq(client)
    tokens = {who: client.post("/api/v1/auth/tokens", json={"name": "player"}, headers=login(client, who)).json()
              ["token"] for who in ("center", "duty1")}
    for _ in range(3):
        for token in tokens.values():
            assert client.get(f"/api/v1/cameras/{cam}/live.m3u8", params={"token": token}).status_code == 200
    live = [r for r in _views(client, cam, "video.live", since) if (r["details"] or {}).get("via") == "hls"]
    assert sorted(r["actor_name"] for r in live) == ["center", "duty1"], live
    assert all(r["legal_basis"] for r in live)
    # A recorded file read in byte ranges (as HLS players do): one record, naming the file and its window.
    with inst.db.session() as session:
        from sqlalchemy import select

        from kuzet.store.models.recording import Recording

        rec = session.scalars(select(Recording).where(Recording.camera_id == cam).order_by(Recording.id)).first()
    url = f"/api/v1/cameras/{cam}/recordings/{rec.id}.mp4"
    for first in (0, 1000, 2000):
        part = client.get(url, params={"token": tokens["duty1"]}, headers={"Range": f"bytes={first}-{first + 999}"})
        assert part.status_code == 206 and len(part.content) == 1000
    files = [r for r in _views(client, cam, "video.archive", since) if (r["details"] or {}).get("via") == "file"]
    assert [(r["actor_name"], r["details"]["recording_id"]) for r in files] == [("duty1", rec.id)]
    assert client.get(url, headers=login(client, "resident1")).status_code == 404  # not their camera


def _watch_until_closed(client: TestClient, url: str, on_init: Callable[[], None]) -> tuple[int | None, list[dict]]:
    """Watch a live WebSocket; once the init header arrives call ``on_init``; return the close code and the texts."""
    texts: list[dict] = []
    acted = False
    try:
        with client.websocket_connect(url) as ws:
            while True:
                message = ws.receive()
                if message["type"] == "websocket.close":
                    return message.get("code"), texts
                if message.get("text"):
                    texts.append(json.loads(message["text"]))
                    if texts[-1]["type"] == "init" and not acted:
                        acted = True
                        on_init()
    except WebSocketDisconnect as exc:
        return exc.code, texts


def test_open_streams_end_when_the_grant_is_revoked_or_the_token_logs_out(served) -> None:  # noqa: ANN001
    inst, client = served
    cam = _cam(inst, "b1e1")
    admin = login(client, "admin")
    password = "watcher-password-1"
    made = client.post("/api/v1/users", headers=admin, json={"username": "watcher", "password": password,
                                                            "role": "resident"})
    assert made.status_code == 201, made.text
    body = {"user_id": made.json()["id"], "camera_id": cam, "rights": ["view_live"], "legal_basis": "test order"}
    grant = client.post("/api/v1/grants", headers=admin, json=body).json()
    token = client.post("/api/v1/auth/token", data={"username": "watcher", "password": password}).json()["access_token"]
    url = f"/api/v1/cameras/{cam}/live?token={token}"

    # Revoked while watching: the stream stops within seconds, saying why.
    code, texts = _watch_until_closed(client, url, lambda: client.delete(f"/api/v1/grants/{grant['id']}",
                                                                         headers=admin))
    assert code == 4403 and texts[-1]["code"] == "access_ended", texts[-3:]
    # Granted again, then the token signs out while watching: the same.
    assert client.post("/api/v1/grants", headers=admin, json=body).status_code == 201
    code, texts = _watch_until_closed(client, url, lambda: client.post(
        "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}))
    assert code == 4403 and texts[-1]["code"] == "access_ended", texts[-3:]


def test_live_viewing_time_is_recorded_and_counted_as_the_owners_usage(served) -> None:  # noqa: ANN001
    """How long live video was watched: a ``viewing.ended`` record per session (WebSocket at close, HLS once quiet),
    summed into the camera owner's live hours (``GET /cloud/usage``)."""
    from zoneinfo import ZoneInfo

    from kuzet.services.watching.runtime import write_ended
    from kuzet.services.watching.viewing import ViewingSessions

    inst, client = served
    cam = _cam(inst, "d1street1")
    since = _last_seq(client)
    client.post("/api/v1/auth/login", json={"username": "duty1", "password": "demo"})
    watched_from = time.monotonic()
    with client.websocket_connect(f"/api/v1/cameras/{cam}/live") as ws:
        while time.monotonic() - watched_from < 4:
            ws.receive()
    watched = time.monotonic() - watched_from
    client.post("/api/v1/auth/logout", headers={"X-Requested-With": "kuzet"})

    def ended() -> list[dict]:
        return [r for r in _views(client, cam, "viewing.ended", since)]

    deadline = time.time() + 10  # written as the socket closes, in a worker thread
    while time.time() < deadline and not ended():
        time.sleep(0.2)
    (ws_end,) = ended()
    assert ws_end["actor_name"] == "duty1" and ws_end["details"]["via"] == "websocket"
    assert watched - 2 <= ws_end["details"]["seconds"] <= watched + 2

    # An HLS player: the session ends once its requests stop for the idle time (a minute: here a clock of the
    # test's own, moved on), found by the sweep; it lasted from the first request to the last.
    previous = inst.running.viewing_sessions
    clock = [0.0]
    inst.running.viewing_sessions = ViewingSessions(clock=lambda: clock[0])
    try:
        token = client.post("/api/v1/auth/tokens", json={"name": "player"}, headers=login(client, "center")).json()
        first = time.monotonic()
        for _ in range(4):
            assert client.get(f"/api/v1/cameras/{cam}/live.m3u8", params={"token": token["token"]}).status_code == 200
            time.sleep(0.5)
            clock[0] += 2
        listened = time.monotonic() - first
        assert write_ended(inst) == 0  # still watching
        clock[0] += 61
        assert write_ended(inst) == 1
    finally:
        inst.running.viewing_sessions = previous
    hls = [r for r in ended() if r["details"]["via"] == "hls"]
    assert [r["actor_name"] for r in hls] == ["center"] and 1.0 <= hls[0]["details"]["seconds"] <= listened

    seconds = sum(r["details"]["seconds"] for r in ended())
    month = utcnow().astimezone(ZoneInfo(inst.settings.timezone)).strftime("%Y-%m")
    usage = client.get("/api/v1/cloud/usage", params={"period": month}, headers=login(client, "operator")).json()
    with inst.db.session() as session:
        from kuzet.store.models import Camera

        owner = session.get(Camera, cam).owner_org_id
    (row,) = [r for r in usage if r["organisation_id"] == owner]
    assert row["live_hours_viewed"] >= round(seconds / 3600, 3) > 0
