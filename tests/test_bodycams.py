"""Body-worn and dash cameras: duties, devices and shifts (audited, clock offsets), resumable offload with a real tus
client against a real server (a cut connection resumed without re-sending), the watch folder with a GPS side file,
categories, retention and evidence holds. Both database backends."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.audit import SYSTEM
from kuzet.services.places import create_organisation
from kuzet.store.db import utcnow
from kuzet.store.models import AuditRecord
from kuzet.store.models.bodycams import BodycamRecording
from tests.bodycams_support import live_server, make_clip, make_dashcam_clip, nmea_rmc, token

PASSWORD = "a-long-enough-password"
API = "/api/v1/bodycams"


@dataclass
class Unit:
    client: TestClient
    inst: Installation
    unit_id: int
    other_unit_id: int
    users: dict[str, int]
    headers: dict[str, dict[str, str]]


@pytest.fixture
def unit(inst: Installation) -> Unit:
    from kuzet.api.app import create_app

    with inst.db.session() as session:
        unit_org = create_organisation(session, SYSTEM, "Патруль 1", "police_duty_unit")
        other = create_organisation(session, SYSTEM, "Патруль 2", "police_duty_unit")
        school = create_organisation(session, SYSTEM, "Школа", "school")
        made = {}
        for name, role, org in (("admin", "platform_admin", None), ("keeper", "police_operator", unit_org.id),
                                ("officer", "responder", unit_org.id), ("officer2", "responder", unit_org.id),
                                ("stranger", "police_operator", other.id), ("teacher", "responder", school.id),
                                ("unitadmin", "organisation_admin", unit_org.id)):
            made[name] = accounts.create_user(session, SYSTEM, name, PASSWORD, role, organisation=org).id
        ids = (unit_org.id, other.id)
    client = TestClient(create_app(inst))
    headers = {name: token(client, name, PASSWORD) for name in made}
    u = Unit(client, inst, ids[0], ids[1], made, headers)
    for name, duty in (("keeper", "custodian"), ("officer", "officer"), ("officer2", "officer")):
        assert _post(u, "admin", "/duties", {"user_id": made[name], "duty": duty, "legal_basis": "Приказ 12"}) == 201
    assert _post(u, "admin", "/duties", {"user_id": made["stranger"], "duty": "supervisor",
                                         "legal_basis": "Приказ 13"}) == 201
    return u


def _post(u: Unit, who: str, path: str, body: dict) -> int:
    return u.client.post(f"{API}{path}", json=body, headers=u.headers[who]).status_code


def _device(u: Unit, serial: str = "BWC-1", kind: str = "body") -> int:
    response = u.client.post(f"{API}/devices", headers=u.headers["keeper"], json={
        "serial": serial, "kind": kind, "organisation_id": u.unit_id, "model": "X1"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _actions(inst: Installation) -> list[tuple[str, str | None]]:
    with inst.db.session() as session:
        return [(r.action, r.object_id) for r in session.scalars(select(AuditRecord).order_by(AuditRecord.seq))]


def test_duties_devices_and_shifts_follow_the_unit(unit: Unit) -> None:
    u = unit
    # Duties are given in police units only, to their members, by platform admins or the unit's admin.
    assert _post(u, "admin", "/duties", {"user_id": u.users["teacher"], "duty": "officer",
                                         "legal_basis": "x"}) == 422
    assert _post(u, "unitadmin", "/duties", {"user_id": u.users["stranger"], "duty": "officer",
                                             "legal_basis": "x"}) == 404
    assert _post(u, "keeper", "/duties", {"user_id": u.users["officer2"], "duty": "custodian",
                                          "legal_basis": "x"}) == 404
    device = _device(u)
    assert _post(u, "keeper", "/devices", {"serial": "BWC-1", "kind": "body", "organisation_id": u.unit_id}) == 409
    assert _post(u, "keeper", "/devices", {"serial": "bad serial", "kind": "body",
                                           "organisation_id": u.unit_id}) == 422
    assert _post(u, "stranger", "/devices", {"serial": "BWC-9", "kind": "body", "organisation_id": u.unit_id}) == 404
    # The other unit sees nothing of it (404 like a missing device); the officer sees it but may not check it out.
    missing = u.client.get(f"{API}/devices/999999", headers=u.headers["stranger"])
    hidden = u.client.get(f"{API}/devices/{device}", headers=u.headers["stranger"])
    assert hidden.status_code == 404 and hidden.json() == missing.json()
    assert [d["serial"] for d in u.client.get(f"{API}/devices", headers=u.headers["stranger"]).json()] == []
    assert _post(u, "officer", f"/devices/{device}/check-out", {"officer_id": u.users["officer"]}) == 403
    assert _post(u, "keeper", f"/devices/{device}/check-out", {"officer_id": u.users["stranger"]}) == 422
    response = u.client.post(f"{API}/devices/{device}/check-out", headers=u.headers["keeper"],
                             json={"officer_id": u.users["officer"]})
    assert response.status_code == 201, response.text
    shift = response.json()
    assert _post(u, "keeper", f"/devices/{device}/check-out", {"officer_id": u.users["officer2"]}) == 409
    current = u.client.get(f"{API}/devices/{device}", headers=u.headers["officer"]).json()["current_shift"]
    assert current["officer_id"] == u.users["officer"]
    # Check-in with the device's clock 90 s fast: the offset is kept with the shift.
    fast = (utcnow() + timedelta(seconds=90)).isoformat()
    response = u.client.post(f"{API}/devices/{device}/check-in", headers=u.headers["keeper"],
                             json={"device_clock": fast})
    assert response.status_code == 200, response.text
    assert 80_000 < response.json()["clock_offset_ms"] <= 90_000  # 90 s fast, less the time the request took
    assert _post(u, "keeper", f"/devices/{device}/check-in", {}) == 409
    actions = _actions(u.inst)
    assert ("bodycam.checked_out", str(shift["id"])) in actions and ("bodycam.checked_in", str(shift["id"])) in actions


def _checked_out_and_in(u: Unit, device: int, officer: str = "officer", offset_s: float = 0) -> dict:
    assert _post(u, "keeper", f"/devices/{device}/check-out", {"officer_id": u.users[officer]}) == 201
    clock = (utcnow() + timedelta(seconds=offset_s)).isoformat()
    response = u.client.post(f"{API}/devices/{device}/check-in", json={"device_clock": clock},
                             headers=u.headers["keeper"])
    assert response.status_code == 200
    return response.json()


def test_a_cut_upload_resumes_with_a_real_tus_client_and_keeps_the_chain_of_custody(unit: Unit,
                                                                                   tmp_path: Path) -> None:
    from tusclient import client as tus

    u = unit
    device = _device(u)
    shift = _checked_out_and_in(u, device, offset_s=120)
    out, back = (datetime.fromisoformat(shift[k]) for k in ("checked_out_at", "checked_in_at"))
    # Recorded during the shift, stamped by the device's clock, which runs 2 minutes fast (as measured at check-in).
    recorded = (out + (back - out) / 2 + timedelta(milliseconds=shift["clock_offset_ms"])).isoformat()
    clip = make_clip(tmp_path / "clip.avi", seconds=3)
    data = clip.read_bytes()
    original_hash = hashlib.sha256(data).hexdigest()
    half = len(data) // 2
    with live_server(u.inst) as base:
        tus_client = tus.TusClient(f"{base}{API}/uploads", headers=u.headers["officer"])
        uploader = tus_client.uploader(str(clip), chunk_size=half // 3 + 1, metadata={
            "device": "BWC-1", "filename": "clip.avi", "recorded_at": recorded})
        # The connection is cut mid-body: the server keeps what arrived.
        uploader.set_url(uploader.create_url())
        url = uploader.url
        first = half // 2

        def cut_body():  # noqa: ANN202
            yield data[:first]
            raise ConnectionError("the LTE link dropped")

        with pytest.raises((httpx.HTTPError, ConnectionError)):
            httpx.patch(url, content=cut_body(), headers={**u.headers["officer"], "Tus-Resumable": "1.0.0",
                                                          "Upload-Offset": "0",
                                                          "Content-Type": "application/offset+octet-stream"})
        head = httpx.head(url, headers={**u.headers["officer"], "Tus-Resumable": "1.0.0"})
        arrived = int(head.headers["Upload-Offset"])
        assert 0 <= arrived <= first  # never more than was sent (what the server had not read yet is lost)
        # Then the client goes on to 50 % and stops; a new client resumes from the server's offset.
        uploader.retries, uploader.retry_delay = 5, 0.3  # the cut request may still be finishing on the server
        uploader.offset = arrived
        uploader.upload(stop_at=half)
        assert int(httpx.head(url, headers={**u.headers["officer"], "Tus-Resumable": "1.0.0"})
                   .headers["Upload-Offset"]) >= half
        sent = []
        resumed = tus.TusClient(f"{base}{API}/uploads", headers=u.headers["officer"]).uploader(
            str(clip), url=url, chunk_size=len(data), retries=5, retry_delay=0.3)
        start_offset = resumed.offset
        assert start_offset >= half  # asked the server (HEAD): what arrived is not sent again
        resumed.upload()
        sent.append(len(data) - start_offset)
        # A finished upload is gone; another unit cannot even see it exists.
        assert httpx.head(url, headers={**u.headers["officer"], "Tus-Resumable": "1.0.0"}).status_code == 404
    with u.inst.db.session() as session:
        recording = session.scalar(select(BodycamRecording))
        stored = u.inst.settings.bodycams_path / recording.path
        assert recording.sha256 == original_hash == hashlib.sha256(stored.read_bytes()).hexdigest()
        assert recording.bytes == len(data) and sent == [len(data) - start_offset]
        assert recording.officer_id == u.users["officer"] and recording.via == "upload"
        assert stat.S_IMODE(os.stat(stored).st_mode) == 0o400
        # Device time corrected by the shift's 2-minute offset.
        assert abs((recording.started_at - (recording.device_started_at - timedelta(
            milliseconds=shift["clock_offset_ms"]))).total_seconds()) < 0.001
        assert 110_000 < shift["clock_offset_ms"] <= 120_000
        recording_id = recording.id
    # The original (AVI/MPEG-4) cannot play in a browser: a playable copy is made, hashed and linked.
    from kuzet.services.bodycams.runtime import housekeeping

    assert housekeeping(u.inst)["playable"] == 1
    detail = u.client.get(f"{API}/recordings/{recording_id}", headers=u.headers["officer"]).json()
    assert detail["sha256"] == original_hash and detail["playable_sha256"] not in (None, original_hash)
    video = u.client.get(f"{API}/recordings/{recording_id}/video.mp4", headers=u.headers["keeper"])
    assert video.status_code == 200 and hashlib.sha256(video.content).hexdigest() == detail["playable_sha256"]
    original = u.client.get(f"{API}/recordings/{recording_id}/video.mp4?original=true", headers=u.headers["keeper"])
    assert hashlib.sha256(original.content).hexdigest() == original_hash
    # Officers see their own; the other unit sees nothing, exactly like a missing recording.
    missing = u.client.get(f"{API}/recordings/999999", headers=u.headers["stranger"])
    for who in ("stranger", "officer2", "unitadmin"):
        hidden = u.client.get(f"{API}/recordings/{recording_id}", headers=u.headers[who])
        assert hidden.status_code == 404 and hidden.json() == missing.json(), who
    assert u.client.get(f"{API}/recordings", headers=u.headers["officer2"]).json()["total"] == 0
    # The chain: check-out → check-in → upload → ingest (with the hash) → playable copy → every view.
    with u.inst.db.session() as session:
        records = session.scalars(select(AuditRecord).where(AuditRecord.action.like("bodycam.%"))
                                  .order_by(AuditRecord.seq)).all()
    chain = [r.action for r in records if r.action not in ("bodycam.duty_assigned", "bodycam.device_registered")]
    assert chain == ["bodycam.checked_out", "bodycam.checked_in", "bodycam.upload_started", "bodycam.ingested",
                     "bodycam.playable_made", "bodycam.viewed", "bodycam.played", "bodycam.played"]
    ingested = next(r for r in records if r.action == "bodycam.ingested")
    assert ingested.details["sha256"] == original_hash and ingested.actor_name == "officer"
    assert ingested.details["officer_id"] == u.users["officer"] and ingested.details["serial"] == "BWC-1"
    assert u.inst.verify_audit().ok


def test_an_upload_is_hashed_as_it_arrives_and_once_more_only_after_a_restart(unit: Unit,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """PATCHes that follow one another in the same process carry the SHA-256 on: the last byte leaves nothing to read.
    A resume the process cannot vouch for (a restart, another worker, the part touched) hashes the stored part once."""
    from kuzet.services.bodycams import offload

    u = unit
    _device(u)
    data = os.urandom(5 << 20) + b"tail"
    original_hash = hashlib.sha256(data).hexdigest()
    reads: list[int | None] = []
    real_hash_file = offload.hash_file

    def counted(path: Path, length: int | None = None, **kw: int):  # noqa: ANN202
        reads.append(length)
        return real_hash_file(path, length, **kw)

    monkeypatch.setattr(offload, "hash_file", counted)
    c, tus = u.client, {**u.headers["keeper"], "Tus-Resumable": "1.0.0"}
    created = c.post(f"{API}/uploads", headers={**tus, "Upload-Length": str(len(data)),
                                                "Upload-Metadata": "device QldDLTE=,filename Y2xpcC5tcDQ="})
    assert created.status_code == 201, created.text
    url = created.headers["Location"].removeprefix("http://testserver")
    upload_id = url.rsplit("/", 1)[1]
    cuts = [0, 1 << 20, (2 << 20) + 7, 3 << 20, 4 << 20, len(data)]

    def patch(i: int) -> httpx.Response:
        response = c.patch(url, content=data[cuts[i]:cuts[i + 1]], headers={
            **tus, "Upload-Offset": str(cuts[i]), "Content-Type": "application/offset+octet-stream"})
        assert response.status_code == 204, response.text
        return response

    patch(0)
    patch(1)
    assert reads == []  # in order, in one process: hashed from memory
    offload.forget_running_hash(upload_id)  # as after a restart
    patch(2)
    assert reads == [cuts[2]]  # the stored part, once
    patch(3)
    assert reads == [cuts[2]]
    part = offload.part_path(u.inst.settings.bodycams_path, upload_id)
    os.utime(part, ns=(0, 0))  # the part changed behind this process's back: its hash in memory is not trusted
    done = patch(4)
    assert reads == [cuts[2], cuts[4]]  # ingest itself read nothing again
    with u.inst.db.session() as session:
        recording = session.get(BodycamRecording, int(done.headers["X-Kuzet-Recording"]))
        stored = u.inst.settings.bodycams_path / recording.path
        assert recording.sha256 == original_hash == hashlib.sha256(stored.read_bytes()).hexdigest()
        assert recording.bytes == len(data)
    assert upload_id not in offload._RUNNING


def test_a_complete_upload_whose_rows_did_not_commit_is_put_back_and_finished_later(
        unit: Unit, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last PATCH's ingest moves the part into the originals, then its commit fails (a database fault): the part
    goes back whole, no original without its row, no row; an expired complete upload is not dropped; the next
    housekeeping pass ingests it with the SHA-256 of what was sent."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from kuzet.services.bodycams import offload
    from kuzet.store.models.bodycams import BodycamUpload

    u = unit
    _device(u)
    data = os.urandom(1 << 20) + b"end"
    real_ingest = offload.ingest_file
    fail_commit = {"armed": False}

    def ingest_then_fail(*args, **kw):  # noqa: ANN002, ANN003, ANN202
        recording = real_ingest(*args, **kw)
        fail_commit["armed"] = True
        return recording

    def refuse(_session: Session) -> None:
        if fail_commit["armed"]:
            fail_commit["armed"] = False
            raise RuntimeError("the database went away at the commit")

    monkeypatch.setattr(offload, "ingest_file", ingest_then_fail)
    event.listen(Session, "before_commit", refuse)
    try:
        client = TestClient(u.client.app, raise_server_exceptions=False)
        tus = {**u.headers["keeper"], "Tus-Resumable": "1.0.0"}
        created = client.post(f"{API}/uploads", headers={**tus, "Upload-Length": str(len(data)),
                                                         "Upload-Metadata": "device QldDLTE=,filename Y2xpcC5tcDQ="})
        assert created.status_code == 201, created.text
        url = created.headers["Location"].removeprefix("http://testserver")
        upload_id = url.rsplit("/", 1)[1]
        last = client.patch(url, content=data, headers={**tus, "Upload-Offset": "0",
                                                         "Content-Type": "application/offset+octet-stream"})
        assert last.status_code == 500
    finally:
        event.remove(Session, "before_commit", refuse)
    root = u.inst.settings.bodycams_path
    part = offload.part_path(root, upload_id)
    assert part.read_bytes() == data  # back where it was, whole
    assert not (root / "originals").exists() or not any(p.is_file() for p in (root / "originals").rglob("*"))
    with u.inst.db.session() as session:
        assert session.scalars(select(BodycamRecording)).all() == []
        upload = session.get(BodycamUpload, upload_id)
        assert (upload.offset, upload.recording_id) == (len(data), None)
        upload.expires_at = utcnow() - timedelta(hours=1)
    with u.inst.db.session() as session:
        assert offload.drop_expired_uploads(session, root) == 0  # complete: evidence waiting, never dropped
    assert offload.finish_complete_uploads(u.inst.db, root, idle_seconds=3600) == []  # touched too recently
    finished = offload.finish_complete_uploads(u.inst.db, root, idle_seconds=0)
    assert len(finished) == 1 and not part.exists()
    with u.inst.db.session() as session:
        recording = session.get(BodycamRecording, finished[0])
        assert recording.sha256 == hashlib.sha256(data).hexdigest()
        assert recording.ingested_by == u.users["keeper"]
        assert hashlib.sha256((root / recording.path).read_bytes()).hexdigest() == recording.sha256
        assert session.get(BodycamUpload, upload_id).recording_id == recording.id
    assert ("bodycam.ingested", str(finished[0])) in _actions(u.inst)


def test_tus_protocol_answers(unit: Unit) -> None:
    u = unit
    _device(u)
    c, h = u.client, u.headers["keeper"]
    options = c.options(f"{API}/uploads")
    assert options.status_code == 204 and options.headers["Tus-Version"] == "1.0.0"
    assert "creation" in options.headers["Tus-Extension"]
    meta = "device QldDLTE=,filename Y2xpcC5tcDQ="  # BWC-1, clip.mp4
    assert c.post(f"{API}/uploads", headers={**h, "Upload-Length": "10", "Upload-Metadata": meta}).status_code == 412
    tus = {**h, "Tus-Resumable": "1.0.0"}
    assert c.post(f"{API}/uploads", headers={**tus, "Upload-Metadata": meta}).status_code == 400
    assert c.post(f"{API}/uploads", headers={**tus, "Upload-Length": "10",
                                             "Upload-Metadata": "device !!!"}).status_code == 422
    hidden = c.post(f"{API}/uploads", headers={**u.headers["stranger"], "Tus-Resumable": "1.0.0",
                                               "Upload-Length": "10", "Upload-Metadata": meta})
    assert hidden.status_code == 404
    created = c.post(f"{API}/uploads", headers={**tus, "Upload-Length": "10", "Upload-Metadata": meta})
    assert created.status_code == 201
    url = created.headers["Location"].removeprefix("http://testserver")
    body = {**tus, "Content-Type": "application/offset+octet-stream"}
    assert c.patch(url, content=b"abc", headers={**body, "Upload-Offset": "5"}).status_code == 409
    assert c.patch(url, content=b"abc", headers={**tus, "Upload-Offset": "0",
                                                 "Content-Type": "text/plain"}).status_code == 415
    assert c.patch(url, content=b"x" * 11, headers={**body, "Upload-Offset": "0"}).status_code == 413
    assert c.head(url, headers=tus).headers["Upload-Offset"] == "0"
    assert c.head(url, headers={**u.headers["stranger"], "Tus-Resumable": "1.0.0"}).status_code == 404
    assert c.delete(url, headers={**u.headers["stranger"], "Tus-Resumable": "1.0.0"}).status_code == 404
    assert c.delete(url, headers=tus).status_code == 204
    assert c.head(url, headers=tus).status_code == 404


def test_a_docks_batch_is_read_together_and_a_bad_file_harms_none(unit: Unit, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A dock offloads several devices at once: the settled files are hashed in parallel (two reads provably in flight
    together), each lands with its SHA-256 and one audit record; a file that fails after its move (a side file with a
    point off the globe) is named and left exactly where it was, with nothing of it ingested; garbage that is no
    video is still kept as it arrived (the index says so); a file the dock is still writing is not taken."""
    import itertools
    import threading

    from kuzet.services.bodycams import offload

    u = unit
    for serial in ("DOCK-A", "DOCK-B", "DOCK-C"):
        _device(u, serial)
    dock = tmp_path / "dock"
    for serial in ("DOCK-A", "DOCK-B", "DOCK-C"):
        (dock / serial).mkdir(parents=True)
    good = [make_clip(dock / "DOCK-A" / "a1.mp4", codec="libx264", seconds=1),
            make_clip(dock / "DOCK-A" / "a2.mp4", codec="libx264", seconds=2),
            make_clip(dock / "DOCK-B" / "b1.avi", seconds=1)]
    garbage = dock / "DOCK-B" / "garbage.mp4"
    garbage.write_bytes(os.urandom(3 << 20))
    bad = make_clip(dock / "DOCK-C" / "c1.mp4", codec="libx264", seconds=1)
    off_globe = "GPRMC,100000,A,9950.928,N,06528.938,E,022.4,084.4,010326,,"
    (dock / "DOCK-C" / "c1.nmea").write_text(f"${off_globe}*{_nmea_sum(off_globe)}\n")
    growing = make_clip(dock / "DOCK-C" / "c2.mp4", codec="libx264", seconds=1)
    expected = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (*good, garbage, bad, growing)}
    bad_bytes, bad_mode = bad.read_bytes(), stat.S_IMODE(bad.stat().st_mode)
    past = utcnow().timestamp() - 60
    for path in (*good, garbage, bad, bad.with_suffix(".nmea")):
        os.utime(path, (past, past))  # copied a minute ago: settled

    together = threading.Barrier(2, timeout=60)  # the first two reads wait for each other: only a pool gets past
    calls = itertools.count()
    real = offload.hash_and_index

    def spied(path: Path):  # noqa: ANN202
        if next(calls) < 2:
            together.wait()
        return real(path)

    monkeypatch.setattr(offload, "hash_and_index", spied)
    u.inst.settings.bodycams.watch_dir = dock
    result = offload.scan_watch_folder(u.inst, settle_seconds=10, workers=3)
    assert not together.broken
    assert result.waiting == [str(growing)] and growing.exists()
    assert list(result.failed) == [str(bad)] and "TrackError" in result.failed[str(bad)]
    # The failed file and its side file are back in the watch folder as they were; nothing of them was kept.
    assert bad.read_bytes() == bad_bytes and bad.with_suffix(".nmea").exists()
    assert stat.S_IMODE(bad.stat().st_mode) == bad_mode != 0o400
    with u.inst.db.session() as session:
        rows = {r.filename: r for r in session.scalars(select(BodycamRecording))}
        assert set(rows) == {"a1.mp4", "a2.mp4", "b1.avi", "garbage.mp4"}
        assert {r.id for r in rows.values()} == set(result.ingested)
        assert all(r.sha256 == expected[name] for name, r in rows.items())
        assert rows["garbage.mp4"].media["error"] and rows["a2.mp4"].media["video"] == "h264"
        paths = {r.path for r in rows.values()}
    originals = u.inst.settings.bodycams_path / "originals"
    assert {str(p.relative_to(u.inst.settings.bodycams_path)) for p in originals.rglob("*") if p.is_file()} == paths
    ingested = [obj for action, obj in _actions(u.inst) if action == "bodycam.ingested"]
    assert sorted(ingested) == sorted(str(i) for i in result.ingested)  # one audit record each, none for the bad one
    # Once the dock has finished writing it, the next pass takes it; the bad one stays until its side file is fixed.
    os.utime(growing, (past, past))
    again = offload.scan_watch_folder(u.inst, settle_seconds=10)
    assert len(again.ingested) == 1 and list(again.failed) == [str(bad)] and not growing.exists()
    with u.inst.db.session() as session:
        assert session.get(BodycamRecording, again.ingested[0]).sha256 == expected["c2.mp4"]
    assert u.inst.verify_audit().ok


def test_watch_folder_ingests_with_the_gps_track(unit: Unit, tmp_path: Path) -> None:
    from kuzet.services.bodycams.offload import scan_watch_folder

    u = unit
    _device(u, "DASH-7", "dash")
    dock = tmp_path / "dock"
    (dock / "DASH-7").mkdir(parents=True)
    (dock / "UNKNOWN-1").mkdir()
    clip = make_clip(dock / "DASH-7" / "drive.mp4", codec="libx264", seconds=2,
                     creation_time="2026-03-01T10:00:00Z")
    digest = hashlib.sha256(clip.read_bytes()).hexdigest()
    (dock / "DASH-7" / "drive.nmea").write_text(
        "$GPRMC,100000,A,4450.928,N,06528.938,E,022.4,084.4,010326,,*" + _nmea_sum(
            "GPRMC,100000,A,4450.928,N,06528.938,E,022.4,084.4,010326,,") + "\n"
        "$GPRMC,100001,A,4450.930,N,06528.950,E,022.4,084.4,010326,,*" + _nmea_sum(
            "GPRMC,100001,A,4450.930,N,06528.950,E,022.4,084.4,010326,,") + "\n")
    make_clip(dock / "UNKNOWN-1" / "x.mp4", codec="libx264", seconds=1)
    u.inst.settings.bodycams.watch_dir = dock
    ids = scan_watch_folder(u.inst, settle_seconds=0).ingested
    assert len(ids) == 1
    assert not (dock / "DASH-7" / "drive.mp4").exists() and (dock / "UNKNOWN-1" / "x.mp4").exists()
    recording = u.client.get(f"{API}/recordings/{ids[0]}", headers=u.headers["keeper"]).json()
    assert recording["sha256"] == digest and recording["via"] == "watch"
    assert recording["officer_id"] is None  # never checked out: the unit's keepers see it, no officer does
    track = u.client.get(f"{API}/recordings/{ids[0]}/track", headers=u.headers["keeper"]).json()
    assert len(track) == 2 and abs(track[0]["lat"] - 44.8488) < 1e-3 and abs(track[0]["lon"] - 65.4823) < 1e-3
    near = u.client.get(f"{API}/recordings", params={"lat": 44.8488, "lon": 65.4823, "radius_m": 200},
                        headers=u.headers["keeper"]).json()
    far = u.client.get(f"{API}/recordings", params={"lat": 43.2, "lon": 76.9}, headers=u.headers["keeper"]).json()
    assert [r["id"] for r in near["items"]] == ids and far["total"] == 0
    # Street cameras the keeper may watch back near the track, to open at the same instant.
    from kuzet.services.cameras import create_camera
    from kuzet.services.grants import create_grant
    from kuzet.services.places import create_place

    with u.inst.db.session() as session:
        place = create_place(session, SYSTEM, "district", "Район")
        cams = [create_camera(session, SYSTEM, u.inst.keys, name=name, place_id=place.id, lat=lat, lon=lon,
                              main_url="rtsp://192.0.2.1/x").id
                for name, lat, lon in (("near", 44.8490, 65.4826), ("far", 44.90, 65.55))]
        for cam in cams:
            create_grant(session, SYSTEM, organisation_id=u.unit_id, camera_id=cam, rights=["view_archive"],
                         legal_basis="test")
    keeper = u.headers["keeper"]
    anywhere = u.client.get(f"{API}/recordings/{ids[0]}/nearby-cameras", params={"covering": "false"},
                            headers=keeper).json()
    assert [c["camera_id"] for c in anywhere] == [cams[0]] and anywhere[0]["distance_m"] < 100
    assert anywhere[0]["covered_seconds"] == 0 and anywhere[0]["near"] == "track"
    # By default only cameras whose archive holds the recording's time are offered to play in step with it.
    assert u.client.get(f"{API}/recordings/{ids[0]}/nearby-cameras", headers=keeper).json() == []
    from kuzet.store.models.recording import Recording

    with u.inst.db.session() as session:
        session.add(Recording(camera_id=cams[0], path="x.mp4", start_at=datetime(2026, 3, 1, 9, 59, 58, tzinfo=UTC),
                              end_at=datetime(2026, 3, 1, 10, 0, 1, tzinfo=UTC), bytes=1, state="closed",
                              keyframes=b""))
    nearby = u.client.get(f"{API}/recordings/{ids[0]}/nearby-cameras", headers=keeper).json()
    assert [c["camera_id"] for c in nearby] == [cams[0]] and nearby[0]["covered_seconds"] == 1.0
    assert nearby[0]["at"].startswith("2026-03-01T10:00:00") and nearby[0]["until"].startswith("2026-03-01T10:00:02")
    assert u.client.get(f"{API}/recordings/{ids[0]}/nearby-cameras",
                        headers=u.headers["stranger"]).status_code == 404


def test_gps_written_inside_a_dash_cameras_mp4_becomes_the_track(unit: Unit, tmp_path: Path) -> None:
    """NMEA in the MP4's text track (as Ambarella/Novatek dash cameras write it), or only the file's ISO 6709
    location: kept as the recording's track at ingest, shown by ``/track``, found by place. A spoiled sentence leaves
    the recording without a track, never without its original."""
    from kuzet.services.bodycams.offload import ingest_file
    from kuzet.store.models.bodycams import BodycamDevice

    u = unit
    device_id = _device(u, "DASH-9", "dash")
    _checked_out_and_in(u, device_id)
    clips = {"nmea": make_dashcam_clip(tmp_path / "nmea.mp4", 4, nmea=nmea_rmc(4)),
             "location": make_dashcam_clip(tmp_path / "location.mp4", 2, location="+43.2389+076.8897/",
                                           creation_time="2026-03-01T10:00:00Z"),
             "spoiled": make_dashcam_clip(tmp_path / "spoiled.mp4", 3, nmea=nmea_rmc(3, corrupt=1))}
    ids = {}
    with u.inst.db.session() as session:
        device = session.get(BodycamDevice, device_id)
        for name, clip in clips.items():
            ids[name] = ingest_file(session, u.inst.settings.bodycams_path, SYSTEM, device=device, source=clip,
                                    filename=clip.name, via="upload", ingested_by=None).id
    keeper = u.headers["keeper"]
    track = u.client.get(f"{API}/recordings/{ids['nmea']}/track", headers=keeper).json()
    assert len(track) == 4 and track[0]["at"].startswith("2026-03-01T10:00:00")
    assert abs(track[0]["lat"] - (44 + 50.928 / 60)) < 1e-6 and track[3]["lon"] > track[0]["lon"]
    assert abs(track[0]["speed_kmh"] - 22.4 * 1.852) < 1e-6
    point = u.client.get(f"{API}/recordings/{ids['location']}/track", headers=keeper).json()
    assert [(p["lat"], p["lon"]) for p in point] == [(43.2389, 76.8897)]
    assert u.client.get(f"{API}/recordings/{ids['spoiled']}/track", headers=keeper).json() == []
    found = u.client.get(f"{API}/recordings", headers=keeper,
                         params={"lat": 44 + 50.93 / 60, "lon": 65 + 28.94 / 60, "radius_m": 100}).json()
    assert [r["id"] for r in found["items"]] == [ids["nmea"]]
    assert u.client.get(f"{API}/recordings/{ids['nmea']}/track", headers=u.headers["stranger"]).status_code == 404
    with u.inst.db.session() as session:
        details = {r.object_id: r.details for r in session.scalars(
            select(AuditRecord).where(AuditRecord.action == "bodycam.ingested"))}
    assert details[str(ids["nmea"])]["gps_points"] == 4
    assert details[str(ids["location"])]["gps"] == "mp4 location (ISO 6709)"
    assert "checksum" in details[str(ids["spoiled"])]["gps_error"]


def _nmea_sum(body: str) -> str:
    value = 0
    for ch in body:
        value ^= ord(ch)
    return f"{value:02X}"


def test_categories_retention_and_holds(unit: Unit, tmp_path: Path) -> None:
    from kuzet.services.bodycams.offload import ingest_file
    from kuzet.services.bodycams.recordings import apply_retention
    from kuzet.store.models.bodycams import BodycamDevice

    u = unit
    device_id = _device(u)
    _checked_out_and_in(u, device_id)
    root = u.inst.settings.bodycams_path
    made = []
    with u.inst.db.session() as session:
        device = session.get(BodycamDevice, device_id)
        for n in range(3):
            source = tmp_path / f"r{n}.mp4"
            source.write_bytes(os.urandom(1000))
            made.append(ingest_file(session, root, SYSTEM, device=device, source=source, filename=source.name,
                                    via="upload", ingested_by=None).id)
    c = u.client
    # Uncategorised recordings are flagged to their officer.
    flagged = c.get(f"{API}/recordings", params={"category": "none"}, headers=u.headers["officer"]).json()
    assert sorted(r["id"] for r in flagged["items"]) == made
    assert c.post(f"{API}/recordings/{made[0]}/category", json={"category": "nonsense"},
                  headers=u.headers["officer"]).status_code == 422
    for rid, code in zip(made, ("no_event", "arrest", "traffic_stop"), strict=True):
        response = c.post(f"{API}/recordings/{rid}/category", json={"category": code}, headers=u.headers["officer"])
        assert response.status_code == 200, response.text
    assert c.get(f"{API}/recordings/{made[1]}", headers=u.headers["officer"]).json()["held"]  # arrest: evidence
    # A hand hold by the custodian; the officer may not place one.
    assert c.post(f"{API}/recordings/{made[2]}/holds", json={"reason": "complaint 7"},
                  headers=u.headers["officer"]).status_code == 403
    hold = c.post(f"{API}/recordings/{made[2]}/holds", json={"reason": "complaint 7"}, headers=u.headers["keeper"])
    assert hold.status_code == 201
    # Retention: only platform admins change it; far in the future everything expired, only unheld files go.
    assert c.put(f"{API}/categories/no_event", json={"retention_days": 7}, headers=u.headers["keeper"]).status_code \
        == 403
    assert c.put(f"{API}/categories/no_event", json={"retention_days": 7}, headers=u.headers["admin"]).json()[
        "retention_days"] == 7
    with u.inst.db.session() as session:
        assert apply_retention(session, root, utcnow() + timedelta(days=400)) == [made[0]]
    assert c.get(f"{API}/recordings/{made[0]}/video.mp4", headers=u.headers["keeper"]).status_code == 410
    assert c.delete(f"{API}/holds/{hold.json()['id']}", headers=u.headers["officer"]).status_code == 403
    assert c.delete(f"{API}/holds/{hold.json()['id']}", headers=u.headers["keeper"]).status_code == 200
    with u.inst.db.session() as session:
        assert apply_retention(session, root, utcnow() + timedelta(days=400)) == [made[2]]
        assert apply_retention(session, root, utcnow() + timedelta(days=4000)) == []  # arrest stays held
        kept = session.get(BodycamRecording, made[1])
        assert (root / kept.path).exists()


def test_the_command_line_registers_checks_out_in_and_ingests(inst: Installation, tmp_path: Path) -> None:
    import json

    from tests.test_core_cli import kuzet

    with inst.db.session() as session:
        org = create_organisation(session, SYSTEM, "Патруль CLI", "police_duty_unit")
        accounts.create_user(session, SYSTEM, "cliofficer", PASSWORD, "responder", organisation=org.id)
        org_id = org.id
    env = {"KUZET_DATABASE_URL": inst.settings.database_url} if inst.settings.database_url else {}
    data = inst.settings.data_dir

    def run(*args: str) -> dict | list:
        out = kuzet("bodycam", *args, "--json", data=data, env=env)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        return json.loads(out.stdout)

    assert run("device", "add", "CLI-1", "--organisation", str(org_id), "--kind", "dash")["serial"] == "CLI-1"
    assert run("duty", "cliofficer", "officer", "--basis", "Приказ 5")["duty"] == "officer"
    assert run("checkout", "CLI-1", "cliofficer")["officer"] == "cliofficer"
    clock = (utcnow() - timedelta(seconds=30)).isoformat()
    # the clock was read before the command started: 30 s slow, plus the time the command took to start
    assert -120_000 < run("checkin", "CLI-1", "--device-clock", clock)["clock_offset_ms"] <= -30_000
    clip = tmp_path / "a.bin"
    clip.write_bytes(os.urandom(4096))
    digest = hashlib.sha256(clip.read_bytes()).hexdigest()
    ingested = run("ingest", str(clip), "--device", "CLI-1")["ingested"]
    assert [i["sha256"] for i in ingested] == [digest] and not clip.exists()
    listed = run("recordings", "--officer", "cliofficer")
    assert listed["total"] == 1 and listed["items"][0]["sha256"] == digest
    refused = kuzet("bodycam", "checkin", "CLI-1", data=data, env=env)
    assert refused.returncode == 1 and "not checked out" in refused.stderr


def test_recordings_link_to_incidents_and_are_held(unit: Unit, tmp_path: Path) -> None:
    from kuzet.services.bodycams.offload import ingest_file
    from kuzet.store.models.bodycams import BodycamDevice
    from kuzet.store.models.operations import IncidentEntry

    u = unit
    device_id = _device(u)
    _checked_out_and_in(u, device_id)
    source = tmp_path / "r.mp4"
    source.write_bytes(os.urandom(2000))
    with u.inst.db.session() as session:
        rid = ingest_file(session, u.inst.settings.bodycams_path, SYSTEM, device=session.get(BodycamDevice, device_id),
                          source=source, filename="r.mp4", via="upload", ingested_by=None).id
    c = u.client
    mine = c.post("/api/v1/incidents", json={"offence_type": "theft"}, headers=u.headers["keeper"])
    theirs = c.post("/api/v1/incidents", json={"offence_type": "theft"}, headers=u.headers["stranger"])
    assert mine.status_code == theirs.status_code == 201, mine.text
    incident = mine.json()["id"]
    assert c.post(f"{API}/recordings/{rid}/incidents", json={"incident_id": incident},
                  headers=u.headers["officer"]).status_code == 403
    assert c.post(f"{API}/recordings/{rid}/incidents", json={"incident_id": theirs.json()["id"]},
                  headers=u.headers["keeper"]).status_code == 422
    linked = c.post(f"{API}/recordings/{rid}/incidents", json={"incident_id": incident}, headers=u.headers["keeper"])
    assert linked.status_code == 201, linked.text
    found = c.get(f"{API}/recordings", params={"incident_id": incident}, headers=u.headers["keeper"]).json()
    assert [r["id"] for r in found["items"]] == [rid] and found["items"][0]["held"]
    with u.inst.db.session() as session:
        kinds = session.scalars(select(IncidentEntry.kind).where(IncidentEntry.incident_id == incident)).all()
    assert "bodycam_linked" in kinds
    # A body-worn recording without GPS is placed where its incident happened: street cameras near it are offered.
    from kuzet.services.cameras import create_camera
    from kuzet.services.grants import create_grant
    from kuzet.services.places import create_place
    from kuzet.store.models.operations import Incident

    with u.inst.db.session() as session:
        session.get(Incident, incident).lat, session.get(Incident, incident).lon = 43.2389, 76.8897
        place = create_place(session, SYSTEM, "district", "Район")
        cam = create_camera(session, SYSTEM, u.inst.keys, name="угол", place_id=place.id, lat=43.2391,
                            lon=76.8899, main_url="rtsp://192.0.2.1/x").id
        create_grant(session, SYSTEM, organisation_id=u.unit_id, camera_id=cam, rights=["view_archive"],
                     legal_basis="test")
    nearby = c.get(f"{API}/recordings/{rid}/nearby-cameras", params={"covering": "false"},
                   headers=u.headers["keeper"]).json()
    assert [(n["camera_id"], n["near"]) for n in nearby] == [(cam, "incident")] and nearby[0]["distance_m"] < 50


def _street_recording(u, tmp_path: Path, seconds: int, faces: int, seed: int) -> tuple[int, str, Path]:  # noqa: ANN001
    """A labelled street clip recorded by a device checked out and in: (recording id, its SHA-256, its stored file)."""
    from kuzet.bench.redaction import make_labelled_clip
    from kuzet.services.bodycams.offload import ingest_file
    from kuzet.store.models.bodycams import BodycamDevice

    device_id = _device(u)
    _checked_out_and_in(u, device_id)
    source = tmp_path / "street.mp4"
    make_labelled_clip(source, seconds=seconds, faces=faces, seed=seed)
    with u.inst.db.session() as session:
        rec = ingest_file(session, u.inst.settings.bodycams_path, SYSTEM, device=session.get(BodycamDevice, device_id),
                          source=source, filename="street.mp4", via="upload", ingested_by=None)
        return rec.id, rec.sha256, u.inst.settings.bodycams_path / rec.path


def test_redacted_disclosure_is_signed_shared_and_audited(unit: Unit, tmp_path: Path) -> None:
    import io
    import json
    import zipfile

    from kuzet.services.watching.evidence import verify_bundle
    from kuzet.store.models.bodycams import BodycamDisclosure

    u = unit
    rid, original_hash, original_path = _street_recording(u, tmp_path, seconds=2, faces=2, seed=3)
    c, keeper = u.client, u.headers["keeper"]
    assert c.post(f"{API}/recordings/{rid}/redactions", headers=u.headers["officer"]).status_code == 403
    assert c.post(f"{API}/recordings/{rid}/redactions", headers=u.headers["stranger"]).status_code == 404
    queued = c.post(f"{API}/recordings/{rid}/redactions", headers=keeper)
    assert queued.status_code == 201, queued.text
    # Finding the faces is a background job: the request only queues it; its state and progress are in the database.
    job = queued.json()
    assert job["state"] == "queued" and job["frames_total"] == 50 and job["tracks"] == []
    assert c.put(f"{API}/redactions/{job['id']}", headers=keeper, json={}).status_code == 409  # not planned yet
    listed = c.get(f"{API}/recordings/{rid}/redactions", headers=keeper)
    assert [r["id"] for r in listed.json()] == [job["id"]]
    assert c.get(f"{API}/recordings/{rid}/redactions", headers=u.headers["officer"]).status_code == 403
    assert c.get(f"{API}/recordings/{rid}/redactions", headers=u.headers["stranger"]).status_code == 404
    from kuzet.services.bodycams.runtime import redaction_pass

    assert redaction_pass(u.inst) == {"planned": 1}
    plan = c.get(f"{API}/redactions/{job['id']}", headers=keeper).json()
    assert plan["state"] == "planned" and plan["tracks"] and plan["original_sha256"] == original_hash
    assert plan["frames_done"] == plan["frames_total"] == 50 and plan["audio"] is True
    bad = c.put(f"{API}/redactions/{plan['id']}", headers=keeper, json={"excluded": [9999]})
    assert bad.status_code == 422 and "9999" in bad.json()["error"]["message"]
    edited = c.put(f"{API}/redactions/{plan['id']}", headers=keeper, json={
        "added": [{"from": 0, "to": 5, "box": [10, 10, 100, 100]}]})
    assert edited.status_code == 200 and edited.json()["added"][0]["box"] == [10, 10, 100, 100]
    rendered = c.post(f"{API}/redactions/{plan['id']}/render", headers=keeper).json()
    assert rendered["state"] == "rendered" and rendered["sha256"] not in (None, original_hash)
    copy = c.get(f"{API}/redactions/{plan['id']}/video.mp4", headers=keeper)
    assert hashlib.sha256(copy.content).hexdigest() == rendered["sha256"]
    assert hashlib.sha256(original_path.read_bytes()).hexdigest() == original_hash  # untouched
    made = c.post(f"{API}/disclosures", headers=keeper, json={
        "redaction_ids": [plan["id"]], "recipient": "Прокуратура района", "reason": "Запрос № 12", "hours": 24})
    assert made.status_code == 201, made.text
    link = made.json()["url"]
    package = c.get(link)  # no token: the link is the key
    assert package.status_code == 200
    bundle = tmp_path / "package.zip"
    bundle.write_bytes(package.content)
    report = verify_bundle(bundle, u.inst.keys.public_key_pem())
    assert report.ok, report.problems
    with zipfile.ZipFile(io.BytesIO(package.content)) as zf:
        manifest = json.loads(zf.read(next(n for n in zf.namelist() if n.endswith("manifest.json"))))
    entry = manifest["recordings"][0]
    assert entry["original_sha256"] == original_hash and entry["redacted_sha256"] == rendered["sha256"]
    assert c.get(f"{API}/recordings/{rid}", headers=keeper).json()["held"]
    # The link expires; every opening was audited with where it came from.
    with u.inst.db.session() as session:
        session.get(BodycamDisclosure, made.json()["id"]).expires_at = utcnow() - timedelta(seconds=1)
    assert c.get(link).status_code == 404
    assert c.get("/api/v1/shared/bodycams/nonsense.zip").status_code == 404
    actions = [a for a, _ in _actions(u.inst)]
    for action in ("bodycam.redaction_requested", "bodycam.redaction_planned", "bodycam.redaction_edited",
                   "bodycam.redacted", "bodycam.disclosed", "bodycam.disclosure_opened"):
        assert action in actions
    assert u.inst.verify_audit().ok


def test_a_redaction_job_survives_a_server_restart(unit: Unit, tmp_path: Path) -> None:
    """A job cut short by a restart (state ``planning``, its heartbeat stale) is taken over by the next server's pass;
    one whose worker still beats is left alone; a file that cannot be decoded fails with the decoder's words."""
    from kuzet.services.bodycams.disclosure import checkpoints_of, save_checkpoint
    from kuzet.services.bodycams.redaction import Plan, plan
    from kuzet.services.bodycams.runtime import redaction_pass
    from kuzet.store.models.bodycams import BodycamRedaction

    u = unit
    rid, _hash, source = _street_recording(u, tmp_path, seconds=1, faces=1, seed=5)
    keeper = u.headers["keeper"]
    first = u.client.post(f"{API}/recordings/{rid}/redactions", headers=keeper).json()["id"]
    second = u.client.post(f"{API}/recordings/{rid}/redactions", headers=keeper).json()["id"]
    # The server died while the first ran, at frame 15, after its checkpoint at frame 10; the second's worker lives.
    class Killed(BaseException):
        pass

    def killed_at_15(frames: int) -> None:
        if frames == 15:
            raise Killed

    with pytest.raises(Killed):
        plan(source, progress=killed_at_15, checkpoint_every=10,
             checkpoint=lambda frame, state: save_checkpoint(u.inst.db, first, frame, state))
    with u.inst.db.session() as session:
        died = session.get(BodycamRedaction, first)
        assert died.frames_done == 10 and [c["frame"] for c in checkpoints_of(session, first)] == [10]
        died.state, died.frames_done, died.heartbeat_at = "planning", 15, utcnow() - timedelta(minutes=10)
        alive = session.get(BodycamRedaction, second)
        alive.state, alive.frames_done, alive.heartbeat_at = "planning", 7, utcnow()
    restarted = Installation.open(settings=u.inst.settings)  # a new server process on the same database
    try:
        assert redaction_pass(restarted) == {"planned": 1}
    finally:
        restarted.close()
    states = {r["id"]: r for r in u.client.get(f"{API}/recordings/{rid}/redactions", headers=keeper).json()}
    assert states[first]["state"] == "planned" and states[first]["frames_done"] == 25
    with u.inst.db.session() as session:  # taken over at the checkpoint, not at frame 0; the same plan as in one go
        planned = [r.details for r in session.scalars(select(AuditRecord).where(
            AuditRecord.action == "bodycam.redaction_planned"))]
        assert [d.get("resumed_from") for d in planned] == [10]
        assert checkpoints_of(session, first) == []
        resumed = Plan.load(u.inst.settings.bodycams_path / session.get(BodycamRedaction, first).plan_path)
    assert resumed.as_dict() == plan(source).as_dict() and resumed.tracks
    assert states[second]["state"] == "planning" and states[second]["frames_done"] == 7
    # A recording whose file does not decode: the job fails, says why, and the failure is audited.
    with u.inst.db.session() as session:
        broken = session.get(BodycamRecording, rid)
        (u.inst.settings.bodycams_path / "broken.mp4").write_bytes(b"not a video")
        broken.path = "broken.mp4"
    third = u.client.post(f"{API}/recordings/{rid}/redactions", headers=keeper).json()["id"]
    assert redaction_pass(u.inst) == {"failed": 1}
    failed = u.client.get(f"{API}/redactions/{third}", headers=keeper).json()
    assert failed["state"] == "failed" and "decoded" in failed["error"]
    assert u.client.post(f"{API}/redactions/{third}/render", headers=keeper).status_code == 409
    actions = [a for a, _ in _actions(u.inst)]
    assert actions.count("bodycam.redaction_requested") == 3 and "bodycam.redaction_failed" in actions
    assert u.inst.verify_audit().ok


def test_a_patrol_cars_dash_camera_streams_live_through_the_push_ingest(unit: Unit, tmp_path: Path) -> None:
    from urllib.parse import parse_qs, urlparse

    from kuzet.services.onboarding.push import check_publish
    from kuzet.services.places import create_place
    from kuzet.store.models import Organisation

    u = unit
    with u.inst.db.session() as session:
        district = create_place(session, SYSTEM, "district", "Район 1")
        session.get(Organisation, u.unit_id).place_id = district.id
    body_cam, dash = _device(u, "BWC-2", "body"), _device(u, "DASH-2", "dash")
    c = u.client
    assert c.post(f"{API}/devices/{body_cam}/live", json={}, headers=u.headers["keeper"]).status_code == 422
    assert c.post(f"{API}/devices/{dash}/live", json={}, headers=u.headers["officer"]).status_code == 403
    assert c.post(f"{API}/devices/{dash}/live", json={}, headers=u.headers["stranger"]).status_code == 404
    live = c.post(f"{API}/devices/{dash}/live", json={"protocol": "rtmp"}, headers=u.headers["keeper"])
    assert live.status_code == 201, live.text
    out = live.json()
    key = parse_qs(urlparse(out["push_url"]).query)["key"][0]
    camera_id = out["camera_id"]
    # The push servers' check lets the car in with its key only.
    with u.inst.db.session() as session:
        assert check_publish(session, str(camera_id), key, protocol="rtmp", address="10.0.0.7") == camera_id
        assert check_publish(session, str(camera_id), "wrong", protocol="rtmp", address="10.0.0.7") is None
    # The unit watches it like any camera; the other unit does not see it.
    assert c.get(f"/api/v1/cameras/{camera_id}", headers=u.headers["keeper"]).status_code == 200
    assert c.get(f"/api/v1/cameras/{camera_id}", headers=u.headers["stranger"]).status_code == 404
    # A new key replaces the old one; the camera stays the same.
    again = c.post(f"{API}/devices/{dash}/live", json={}, headers=u.headers["keeper"]).json()
    assert again["camera_id"] == camera_id
    with u.inst.db.session() as session:
        assert check_publish(session, str(camera_id), key, protocol="rtmp", address="10.0.0.7") is None

    # The car on the map, at the latest fix of its tracks, for the unit (and whom it shares the camera with) only.
    from kuzet.services.bodycams.offload import ingest_file
    from kuzet.store.models.bodycams import BodycamDevice

    assert c.get(f"{API}/crews", headers=u.headers["keeper"]).json() == []  # no fix yet
    clip = make_dashcam_clip(tmp_path / "patrol.mp4", 3, nmea=nmea_rmc(3))
    with u.inst.db.session() as session:
        ingest_file(session, u.inst.settings.bodycams_path, SYSTEM, device=session.get(BodycamDevice, dash),
                    source=clip, filename="patrol.mp4", via="upload", ingested_by=None)
    crews = c.get(f"{API}/crews", headers=u.headers["keeper"]).json()
    assert [(x["serial"], x["camera_id"], x["live"]) for x in crews] == [("DASH-2", camera_id, True)]
    assert crews[0]["at"].startswith("2026-03-01T10:00:02") and abs(crews[0]["lat"] - (44 + 50.934 / 60)) < 1e-6
    assert c.get(f"{API}/crews", headers=u.headers["officer"]).json()[0]["serial"] == "DASH-2"  # watches live
    assert c.get(f"{API}/crews", headers=u.headers["stranger"]).json() == []
    assert c.get(f"{API}/crews", headers=u.headers["teacher"]).json() == []
    c.get(f"{API}/crews", headers=u.headers["keeper"])  # the same viewing session: audited once
    assert [a for a, _ in _actions(u.inst)].count("bodycam.crews_viewed") == 2  # keeper, officer


def test_only_tus_uploads_get_the_large_body_limit(unit: Unit) -> None:
    """The upload's media type does not lift the body limit of any other route."""
    u = unit
    big = b"x" * (u.inst.settings.http.max_body_bytes + 1)
    for method, path in (("POST", f"{API}/devices"), ("PATCH", "/api/v1/users/1"), ("POST", f"{API}/uploads")):
        response = u.client.request(method, path, content=big, headers={
            **u.headers["keeper"], "Content-Type": "application/offset+octet-stream"})
        assert response.status_code == 413, (method, path, response.status_code)


def test_a_streaming_patrol_car_posts_its_position_and_moves_on_the_map(unit: Unit) -> None:
    """RTMP/RTSP carries no GPS: the car posts fixes (JSON or NMEA) with its push key; they become the live track of
    its shift, and the crews endpoint (the map) shows the newest. No key: 401; a wrong key or another device: 404;
    a spoiled sentence: 422 naming it; too many posts: 429; users without the right do not see the car."""
    from urllib.parse import parse_qs, urlparse

    from kuzet.services.bodycams.live import live_track
    from kuzet.services.places import create_place
    from kuzet.store.models import Organisation

    u = unit
    c = u.client
    with u.inst.db.session() as session:
        district = create_place(session, SYSTEM, "district", "Район 1")
        session.get(Organisation, u.unit_id).place_id = district.id
    dash, other = _device(u, "DASH-7", "dash"), _device(u, "DASH-8", "dash")
    shift = c.post(f"{API}/devices/{dash}/check-out", json={"officer_id": u.users["officer"]},
                   headers=u.headers["keeper"])
    assert shift.status_code == 201, shift.text
    out = c.post(f"{API}/devices/{dash}/live", json={}, headers=u.headers["keeper"]).json()
    key = parse_qs(urlparse(out["push_url"]).query)["key"][0]
    other_key = parse_qs(urlparse(c.post(f"{API}/devices/{other}/live", json={},
                                         headers=u.headers["keeper"]).json()["push_url"]).query)["key"][0]
    car = {"Authorization": f"Bearer {key}"}
    url = f"{API}/devices/{dash}/positions"
    now = utcnow().replace(microsecond=0)
    fixes = [{"at": (now - timedelta(seconds=20 - s)).isoformat(), "lat": 43.2389 + s / 1000, "lon": 76.8897,
              "speed_kmh": 30} for s in range(3)]
    first = c.post(url, json={"fixes": fixes}, headers=car)
    assert first.status_code == 200, first.text
    assert first.json()["stored"] == 3 and first.json()["shift_id"] == shift.json()["id"]
    again = c.post(url, json={"fixes": fixes}, headers=car).json()  # a modem sends a batch twice
    assert again["stored"] == 0 and again["skipped"] == 3
    crews = c.get(f"{API}/crews", headers=u.headers["keeper"]).json()
    assert [(x["serial"], x["source"]) for x in crews] == [("DASH-7", "live")]
    assert abs(crews[0]["lat"] - 43.2409) < 1e-9
    # NMEA as the in-car modem writes it (text/plain): the car moves on
    hhmmss, ddmmyy = now.strftime("%H%M%S"), now.strftime("%d%m%y")
    body = f"GPRMC,{hhmmss},A,4315.000,N,07654.000,E,010.0,084.4,{ddmmyy},,"
    checksum = 0
    for ch in body:
        checksum ^= ord(ch)
    sentence = f"${body}*{checksum:02X}"
    moved = c.post(url, content=f"$GPGGA,ignored\n{sentence}\n", headers={**car, "Content-Type": "text/plain"})
    assert moved.status_code == 200, moved.text
    crews = c.get(f"{API}/crews", headers=u.headers["officer"]).json()
    assert abs(crews[0]["lat"] - 43.25) < 1e-9 and abs(crews[0]["lon"] - 76.9) < 1e-9
    assert abs(crews[0]["speed_kmh"] - 18.52) < 1e-9
    # refused: no key, a wrong key, another car's key, a device that is not there (the same 404)
    assert c.post(url, json={"fixes": fixes}).status_code == 401
    wrong = c.post(url, json={"fixes": fixes}, headers={"Authorization": "Bearer nonsense"})
    assert wrong.status_code == 404
    assert c.post(url, json={"fixes": fixes}, headers={"Authorization": f"Bearer {other_key}"}).json() == wrong.json()
    assert c.post(f"{API}/devices/999999/positions", json={"fixes": fixes}, headers=car).json() == wrong.json()
    # a user's token is not a device key
    assert c.post(url, json={"fixes": fixes}, headers=u.headers["keeper"]).status_code == 404
    # bad input: named, nothing stored
    spoiled = sentence[:-2] + ("00" if sentence[-2:] != "00" else "11")
    bad = c.post(url, json={"nmea": f"{sentence}\n{spoiled}"}, headers=car)
    assert bad.status_code == 422 and "line 2 ($GPRMC)" in bad.json()["error"]["message"]
    assert "checksum" in bad.json()["error"]["message"]
    in_russian = c.post(url, json={"nmea": f"{sentence}\n{spoiled}"}, headers={**car, "Accept-Language": "ru"})
    assert "NMEA: строка 2 ($GPRMC): контрольная сумма NMEA не совпадает" == in_russian.json()["error"]["message"]
    off_globe = c.post(url, json={"fixes": [{**fixes[0], "lat": 91}]}, headers=car)
    assert off_globe.status_code == 422 and "fixes.0.lat" in off_globe.json()["error"]["message"]
    future = c.post(url, json={"fixes": [{**fixes[0], "at": (now + timedelta(hours=1)).isoformat()}]}, headers=car)
    assert future.status_code == 422 and "future" in future.json()["error"]["message"]
    assert c.post(url, content=b"{not json", headers={**car, "Content-Type": "application/json"}).status_code == 422
    with u.inst.db.session() as session:
        track = live_track(session, shift.json()["id"])
    assert len(track) == 4 and track[-1].lat == 43.25
    # who may not see the car does not
    assert c.get(f"{API}/crews", headers=u.headers["stranger"]).json() == []
    assert c.get(f"{API}/crews", headers=u.headers["teacher"]).json() == []
    # refusals are audited without anything the car sent; no coordinates in the audit
    with u.inst.db.session() as session:
        refused = [r.details for r in session.scalars(select(AuditRecord).where(
            AuditRecord.action == "bodycam.position_refused"))]
    assert {d["reason"] for d in refused} == {"wrong key"} and all(set(d) == {"reason"} for d in refused)
    # rate limited per device
    u.inst.settings.bodycams.position_posts_per_minute = 1
    u.inst.running.position_rate = None  # a fresh count with the new limit
    assert c.post(url, json={"fixes": []}, headers=car).status_code == 200
    limited = c.post(url, json={"fixes": []}, headers=car)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    # and an address guessing keys: 30 refusals a minute, then 429 without further audit records
    guess = {"Authorization": "Bearer guess"}
    assert {c.post(url, json={"fixes": []}, headers=guess).status_code for _ in range(30)} == {404}
    assert c.post(url, json={"fixes": []}, headers=guess).status_code == 429
    u.inst.settings.bodycams.position_posts_per_minute = 60
    assert c.post(url, json={"fixes": []}, headers=car).status_code == 200  # the right key still passes
    with u.inst.db.session() as session:
        refusals = session.scalars(select(AuditRecord).where(AuditRecord.action == "bodycam.position_refused")).all()
    assert len(refusals) == len(refused) + 30
    assert u.inst.verify_audit().ok


def test_novatek_free_gps_boxes_become_the_track(unit: Unit, tmp_path: Path) -> None:
    """The binary GPS of most cheap dash cameras (Novatek ``freeGPS`` boxes listed by a ``gps `` atom in ``moov``),
    written with struct into an MP4 that ffmpeg made: read at ingest as the recording's track; fixes without a
    satellite lock (status V) and entries pointing nowhere are skipped; the video still plays."""
    import av

    from kuzet.services.bodycams.offload import ingest_file
    from kuzet.services.bodycams.tracks import parse_free_gps
    from kuzet.store.models.bodycams import BodycamDevice
    from tests.bodycams_support import add_novatek_gps

    u = unit
    device_id = _device(u, "DASH-NVT", "dash")
    _checked_out_and_in(u, device_id)
    clip = make_clip(tmp_path / "novatek.mp4", 3, codec="libx264")
    add_novatek_gps(clip, [("A", 4315.0, "N", 7654.0, "E", 20.0), ("V", 0.0, "N", 0.0, "E", 0.0),
                           ("A", 4315.3, "N", 7654.6, "E", 21.0), ("A", 3352.5, "S", 15112.5, "W", 0.0)])
    with av.open(str(clip)) as container:  # still a video its players open
        assert len(list(container.decode(video=0))) == 45
    assert len(parse_free_gps(clip)) == 3
    assert parse_free_gps(make_clip(tmp_path / "plain.mp4", 1, codec="libx264")) == []
    with u.inst.db.session() as session:
        rid = ingest_file(session, u.inst.settings.bodycams_path, SYSTEM, device=session.get(BodycamDevice, device_id),
                          source=clip, filename=clip.name, via="upload", ingested_by=None).id
    track = u.client.get(f"{API}/recordings/{rid}/track", headers=u.headers["keeper"]).json()
    assert [p["at"][:19] for p in track] == ["2026-03-01T10:00:00", "2026-03-01T10:00:02", "2026-03-01T10:00:03"]
    assert abs(track[0]["lat"] - 43.25) < 1e-4 and abs(track[0]["lon"] - 76.9) < 1e-4
    assert abs(track[1]["lat"] - (43 + 15.3 / 60)) < 1e-4 and abs(track[1]["lon"] - (76 + 54.6 / 60)) < 1e-4
    assert abs(track[0]["speed_kmh"] - 20 * 1.852) < 1e-3
    assert abs(track[2]["lat"] + (33 + 52.5 / 60)) < 1e-4 and abs(track[2]["lon"] + (151 + 12.5 / 60)) < 1e-4
    with u.inst.db.session() as session:
        details = session.scalars(select(AuditRecord).where(AuditRecord.action == "bodycam.ingested")).all()[-1].details
    assert details["gps"] == "mp4 freeGPS (Novatek)" and details["gps_points"] == 3


def test_gopro_gpmf_and_google_camm_tracks_become_the_track(unit: Unit, tmp_path: Path) -> None:
    """GoPro GPMF (``gpmd``: GPS5 timed by GPSU, GPS9 with its own times) and Google CAMM (``camm``: type 6 fixes,
    type 5 positions) metadata tracks muxed into real MP4s beside ffmpeg's H.264 and AAC: read at ingest as the
    recording's track with times and speed, found by place; samples without a fix are skipped; the video still
    plays."""
    import av

    from kuzet.services.bodycams.offload import ingest_file
    from kuzet.services.bodycams.tracks import embedded_track, sample_entries
    from kuzet.store.models.bodycams import BodycamDevice
    from tests.bodycams_support import add_metadata_track, camm_gps, camm_position, gpmf_gps5, gpmf_gps9

    u = unit
    device_id = _device(u, "GOPRO-1", "dash")
    _checked_out_and_in(u, device_id)
    clip = make_clip(tmp_path / "plain.mp4", 3, codec="libx264")
    gopro = add_metadata_track(clip, tmp_path / "GX010001.MP4", "gpmd", [
        (0, 1, gpmf_gps5([(43.25, 76.9, 10.0), (43.2501, 76.9002, 11.0)], "260301100000.000")),
        (1, 1, gpmf_gps5([(43.2502, 76.9004, 12.0), (43.2503, 76.9006, 12.5)], "260301100001.000")),
        (2, 1, gpmf_gps5([(0.0, 0.0, 0.0)], "260301100002.000", fix=0))])  # no lock: skipped
    days = (datetime(2026, 3, 1) - datetime(2000, 1, 1)).days
    hero12 = add_metadata_track(clip, tmp_path / "GX020001.MP4", "gpmd", [
        (0, 1, gpmf_gps9([(43.26, 76.91, 5.0, days, 36000.0, 3), (43.27, 76.92, 5.0, days, 36000.1, 0),
                          (43.2601, 76.9101, 5.5, days, 36000.2, 3)]))])
    gps_epoch = (datetime(2026, 3, 1, 10, 0, 18, tzinfo=UTC) - datetime(1980, 1, 6, tzinfo=UTC)).total_seconds()
    camm = add_metadata_track(clip, tmp_path / "street.mp4", "camm", [
        (0, 0.5, camm_gps(gps_epoch, 43.24, 76.95, 3.0, 4.0)),  # 10:00:00 UTC (GPS runs 18 s ahead), 18 km/h
        (0.5, 0.5, camm_position(43.2401, 76.9501)),  # at the sample's place in the recording
        (1, 0.5, camm_gps(gps_epoch + 1, 1.0, 1.0, 0.0, 0.0, fix=0))])  # no fix: skipped
    assert sample_entries(gopro)[-1] == b"gpmd" and sample_entries(camm)[-1] == b"camm"
    assert embedded_track(clip, None) == (None, [])
    with av.open(str(camm)) as container:  # still a video its players open
        assert len(list(container.decode(video=0))) == 45
    ids = {}
    with u.inst.db.session() as session:
        device = session.get(BodycamDevice, device_id)
        for name, path in (("gopro", gopro), ("hero12", hero12), ("camm", camm)):
            ids[name] = ingest_file(session, u.inst.settings.bodycams_path, SYSTEM, device=device, source=path,
                                    filename=path.name, via="upload", ingested_by=None).id
    keeper = u.headers["keeper"]

    def track(name: str) -> list[dict]:
        response = u.client.get(f"{API}/recordings/{ids[name]}/track", headers=keeper)
        assert response.status_code == 200
        return response.json()

    gopro_track = track("gopro")
    ten = datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert [datetime.fromisoformat(p["at"]) - ten for p in gopro_track] == [
        timedelta(seconds=s) for s in (0, 0.5, 1, 1.5)]
    assert abs(gopro_track[0]["lat"] - 43.25) < 1e-6 and abs(gopro_track[3]["lon"] - 76.9006) < 1e-6
    assert [round(p["speed_kmh"], 1) for p in gopro_track] == [36.0, 39.6, 43.2, 45.0]
    hero12_track = track("hero12")
    assert [datetime.fromisoformat(p["at"]) - ten for p in hero12_track] == [timedelta(0), timedelta(seconds=0.2)]
    assert abs(hero12_track[1]["lat"] - 43.2601) < 1e-6 and abs(hero12_track[0]["speed_kmh"] - 18.0) < 1e-6
    camm_track = track("camm")
    started = datetime.fromisoformat(
        u.client.get(f"{API}/recordings/{ids['camm']}", headers=keeper).json()["started_at"])
    assert len(camm_track) == 2
    fix = next(p for p in camm_track if p["speed_kmh"] is not None)
    assert datetime.fromisoformat(fix["at"]) == ten and abs(fix["speed_kmh"] - 18.0) < 1e-4
    assert abs(fix["lat"] - 43.24) < 1e-9 and abs(fix["lon"] - 76.95) < 1e-9
    position = next(p for p in camm_track if p["speed_kmh"] is None)
    assert abs(datetime.fromisoformat(position["at"]) - (started + timedelta(seconds=0.5))) < timedelta(
        milliseconds=2)
    # On the map: found by place, and not seen by another unit.
    near = u.client.get(f"{API}/recordings", params={"lat": 43.2502, "lon": 76.9004, "radius_m": 50},
                        headers=keeper).json()
    assert [r["id"] for r in near["items"]] == [ids["gopro"]]
    assert u.client.get(f"{API}/recordings/{ids['gopro']}/track", headers=u.headers["stranger"]).status_code == 404
    with u.inst.db.session() as session:
        details = {r.object_id: r.details for r in session.scalars(
            select(AuditRecord).where(AuditRecord.action == "bodycam.ingested"))}
    assert details[str(ids["gopro"])]["gps"] == "mp4 GPMF (GoPro)" and details[str(ids["gopro"])]["gps_points"] == 4
    assert details[str(ids["hero12"])]["gps_points"] == 2
    assert details[str(ids["camm"])]["gps"] == "mp4 CAMM (Google)"


def test_a_fixed_cameras_timeline_lists_the_bodycam_recordings_made_near_it(unit: Unit, tmp_path: Path) -> None:
    """``/cameras/{id}/bodycam-recordings``: the recordings the caller sees whose GPS passed within the radius of the
    camera during the window; 404 for a camera whose archive the caller may not watch; listing is not audited."""
    from kuzet.services.bodycams.offload import ingest_file
    from kuzet.services.cameras import create_camera
    from kuzet.services.grants import create_grant
    from kuzet.services.places import create_place
    from kuzet.store.models.bodycams import BodycamDevice
    from tests.bodycams_support import add_metadata_track, gpmf_gps5

    u = unit
    device_id = _device(u, "GOPRO-2", "dash")
    ten = datetime(2026, 3, 1, 10, tzinfo=UTC)
    clip = add_metadata_track(make_clip(tmp_path / "plain.mp4", 3, codec="libx264"), tmp_path / "GX.MP4", "gpmd", [
        (0, 1, gpmf_gps5([(43.25, 76.9, 10.0), (43.2501, 76.9002, 11.0)], "260301100000.000")),
        (1, 1, gpmf_gps5([(43.2502, 76.9004, 12.0), (43.2503, 76.9006, 12.5)], "260301100001.000"))])
    with u.inst.db.session() as session:
        rid = ingest_file(session, u.inst.settings.bodycams_path, SYSTEM, device=session.get(BodycamDevice, device_id),
                          source=clip, filename=clip.name, via="upload", ingested_by=None, device_started_at=ten).id
        place = create_place(session, SYSTEM, "district", "Район")
        cams = {name: create_camera(session, SYSTEM, u.inst.keys, name=name, place_id=place.id, lat=lat, lon=lon,
                                    main_url="rtsp://192.0.2.1/x").id
                for name, lat, lon in (("near", 43.2503, 76.9008), ("far", 43.30, 76.95), ("unseen", 43.2503, 76.9))}
        for name in ("near", "far"):
            for org in (u.unit_id, u.other_unit_id):
                create_grant(session, SYSTEM, organisation_id=org, camera_id=cams[name], rights=["view_archive"],
                             legal_basis="test")
    keeper, window = u.headers["keeper"], {"start": "2026-03-01T09:55:00Z", "end": "2026-03-01T10:05:00Z"}

    def lane(camera: str, who: dict, **params: str) -> httpx.Response:
        return u.client.get(f"/api/v1/cameras/{cams[camera]}/bodycam-recordings", params={**window, **params},
                            headers=who)

    before = len(_actions(u.inst))
    found = lane("near", keeper).json()
    assert [r["id"] for r in found] == [rid] and found[0]["distance_m"] < 20 and found[0]["device_kind"] == "dash"
    assert datetime.fromisoformat(found[0]["started_at"]) == ten and found[0]["serial"] == "GOPRO-2"
    assert datetime.fromisoformat(found[0]["closest_at"]) == ten + timedelta(seconds=1.5)
    assert lane("near", keeper, radius_m="5").json() == []
    assert lane("near", keeper, start="2026-03-01T11:00:00Z", end="2026-03-01T12:00:00Z").json() == []
    assert lane("far", keeper).json() == []
    # Another unit watches the same camera but does not see this unit's recording; nobody sees an ungranted camera.
    assert lane("near", u.headers["stranger"]).json() == []
    assert lane("unseen", keeper).status_code == 404
    missing = u.client.get("/api/v1/cameras/2000000000/bodycam-recordings", params=window, headers=keeper)
    assert lane("unseen", keeper).json() == missing.json()
    assert lane("near", keeper, start="2026-03-01T10:00:00").status_code == 422
    assert len(_actions(u.inst)) == before  # a list of recordings shows no video: not audited


def test_the_offload_bench_ingests_a_docks_batch_through_the_watch_folder(tmp_path: Path) -> None:
    """``kuzet bench bodycam`` on a small size: the dock's files go through the real watch folder and hash right; the
    ceiling is one of the reads it reports (no figure is judged here: tests never hold wall-clock times)."""
    from kuzet.bench.bodycam import run_offload_benchmark

    result = run_offload_benchmark(size_mb=16, work_dir=tmp_path, dock_files=3)
    dock = result["dock"]
    assert result["ingest_hash_matches"] and result["upload"]["stored_sha256_matches"]
    assert dock["ingested"] == 3 and dock["failed"] == 0 and dock["hashes_match"]
    assert dock["ceiling"] in dock["disk_read_mib_s"] and dock["ceiling_mib_s"] == max(dock["disk_read_mib_s"].values())
    assert not any(tmp_path.iterdir())  # the scratch installation is gone
