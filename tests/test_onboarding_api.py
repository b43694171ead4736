"""Onboarding at scale through the API and the command line, on the demo city (SQLite and PostgreSQL): the installation
list (CSV and XLSX, all rows or none, every bad row named), ONVIF discovery of simulated cameras added and recorded
without typing an RTSP URL, the field technician's list, a camera's storage tier."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kuzet.installation import Installation
from kuzet.store.db import utcnow
from kuzet.store.models import AuditRecord, Camera, Place
from kuzet.store.models.recording import Gap
from tests.conftest import login
from tests.test_core_cli import kuzet

HEADER = "parent,building,address,entrance,yard,camera,kind,main_url,sub_url,username,password,lat,lon\n"


def _counts(inst: Installation) -> tuple[int, int]:
    with inst.db.session() as s:
        return s.scalar(select(func.count()).select_from(Camera)), s.scalar(select(func.count()).select_from(Place))


def _upload(client: TestClient, headers: dict, content: bytes, name: str = "list.csv"):  # noqa: ANN202
    return client.post("/api/v1/onboarding/installations", headers=headers,
                       files={"file": (name, io.BytesIO(content), "text/csv")})


def test_installation_list_creates_the_tree_and_cameras_all_or_none(demo_inst: Installation,
                                                                    demo_client: TestClient) -> None:
    city = demo_inst.city
    operator = login(demo_client, "operator")
    with demo_inst.db.session() as s:
        street = s.get(Place, city.streets[0])
        street_name = street.name
    rows = (f"{city.streets[0]},ул. Новая 5,\"ул. Новая, 5\",Подъезд 1,,Вход 1,,rtsp://10.1.1.10/main,"
            "rtsp://10.1.1.10/sub,admin,p@ss:w0rd,44.85,65.5\n"
            f"{city.streets[0]},ул. Новая 5,,Подъезд 2,,Вход 2,,rtsp://u2:own@10.1.1.11/main,,admin,ignored,,\n"
            f"{city.streets[0]},ул. Новая 5,,,Двор,Двор север,,rtsp://10.1.1.12/main,,,,,\n"
            f"{street_name},ул. Новая 7,,Подъезд 1,,Вход,entrance,rtsp://10.1.1.13/main,,,,,\n")
    before = _counts(demo_inst)
    response = _upload(demo_client, operator, (HEADER + rows).encode())
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["imported"] == 4 and out["places_created"] == 6  # 2 buildings, 3 entrances, 1 yard
    assert _counts(demo_inst) == (before[0] + 4, before[1] + 6)
    with demo_inst.db.session() as s:
        cams = {c.name: c for c in s.scalars(select(Camera).where(Camera.id.in_(
            [c["camera_id"] for c in out["cameras"]])))}
        first = cams["Вход 1"]
        assert first.main_url == "rtsp://10.1.1.10/main" and first.sub_url == "rtsp://10.1.1.10/sub"
        assert demo_inst.keys.decrypt(first.main_credentials) == "admin:p@ss:w0rd"  # encrypted, not in the URL
        assert demo_inst.keys.decrypt(cams["Вход 2"].main_credentials) == "u2:own"  # the URL's own win
        assert cams["Двор север"].kind == "yard" and cams["Вход 1"].kind == "entrance"
        entrance = s.get(Place, first.place_id)
        building = s.get(Place, entrance.parent_id)
        assert (entrance.kind, entrance.name, building.kind, building.address) == (
            "entrance", "Подъезд 1", "building", "ул. Новая, 5")
        assert building.parent_id == city.streets[0]
        audit = s.scalars(select(AuditRecord).where(AuditRecord.action == "onboarding.installations_imported")).all()
        assert audit[-1].actor_name == "operator" and audit[-1].details["cameras"] == 4
    # The same list again: every row names the camera that already exists; nothing changes.
    again = _upload(demo_client, operator, (HEADER + rows).encode())
    assert again.status_code == 422 and [r["line"] for r in again.json()["error"]["rows"]] == [2, 3, 4, 5]
    assert "already exists" in again.json()["error"]["rows"][0]["message"]
    # Bad rows: each is named, nothing is written — not even the good rows' buildings.
    bad = (HEADER
           + f"{city.streets[0]},ул. Новая 9,,Подъезд 1,,Хорошая,,rtsp://10.1.1.20/main,,,,,\n"
           + f"{city.streets[0]},ул. Новая 9,,Подъезд 1,,Файл,,file:///etc/passwd,,,,,\n"
           + f"{city.streets[0]},ул. Новая 9,,Подъезд 1,,Вид,tank,rtsp://10.1.1.21/main,,,,,\n"
           + "Нет такого места,ул. Новая 9,,,,Нигде,,rtsp://10.1.1.22/main,,,,,\n"
           + f"{city.streets[0]},ул. Новая 9,,Подъезд 1,,Хорошая,,rtsp://10.1.1.23/main,,,,,\n"
           + f"{city.streets[0]},ул. Новая 9,,Подъезд 1,Двор,Оба,,rtsp://10.1.1.24/main,,,,,\n"
           + f"{city.streets[0]},ул. Новая 9,,,,Пароль,,rtsp://10.1.1.25/main,,,secret,,\n"
           + f"{city.streets[0]},ул. Новая 9,,,,Широта,,rtsp://10.1.1.26/main,,,,95,65\n"
           + f"{city.entrances[0]},ул. Новая 9,,,,Внутри,,rtsp://10.1.1.27/main,,,,,\n")
    before = _counts(demo_inst)
    response = _upload(demo_client, operator, bad.encode())
    assert response.status_code == 422
    rows_out = {r["line"]: r["message"] for r in response.json()["error"]["rows"]}
    assert sorted(rows_out) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "scheme file:" in rows_out[3] and "tank" in rows_out[4] and "not found" in rows_out[5]
    assert "line 2" in rows_out[6] and "not both" in rows_out[7] and "password without username" in rows_out[8]
    assert "latitude" in rows_out[9] and "entrance" in rows_out[10]
    assert _counts(demo_inst) == before
    for problem in (b"camera,main_url\nx,rtsp://a/b\n", b"\xff\xfe not text", b""):
        r = _upload(demo_client, operator, problem)
        assert r.status_code == 422 and r.json()["error"]["rows"], r.text
    # Only the telecom's and the platform's admins onboard; nobody fills a place outside what they manage.
    for account in ("resident1", "school7", "duty1"):
        assert _upload(demo_client, login(demo_client, account), (HEADER + rows).encode()).status_code == 403
    admin = login(demo_client, "admin")
    region = demo_client.post("/api/v1/places", headers=admin, json={"kind": "region", "name": "Другая область"})
    district = demo_client.post("/api/v1/places", headers=admin, json={
        "kind": "district", "name": "Район вне договора", "parent_id": region.json()["id"]}).json()
    outside = _upload(demo_client, operator, (HEADER + f"{district['id']},Дом,,,,Кам,,rtsp://10.9.9.9/x,,,,,\n")
                      .encode())
    assert outside.status_code == 422 and "not found" in outside.json()["error"]["rows"][0]["message"]


def test_installation_list_as_xlsx(demo_inst: Installation, demo_client: TestClient) -> None:
    import openpyxl

    city = demo_inst.city
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER.strip().split(","))
    sheet.append([city.streets[1], "ул. Садовая 3", None, "Подъезд 1", None, "Подъезд 1 вход", None,
                  "rtsp://10.2.2.2/main", None, "admin", 12345, 44.8, 65.4])
    buf = io.BytesIO()
    book.save(buf)
    response = _upload(demo_client, login(demo_client, "admin"), buf.getvalue(), "list.xlsx")
    assert response.status_code == 201, response.text
    with demo_inst.db.session() as s:
        camera = s.get(Camera, response.json()["cameras"][0]["camera_id"])
        assert demo_inst.keys.decrypt(camera.main_credentials) == "admin:12345"
        assert (camera.lat, camera.lon) == (44.8, 65.4)


def test_onvif_cameras_are_discovered_added_and_recorded(demo_inst: Installation, demo_client: TestClient) -> None:
    """A simulated ONVIF camera is found by WS-Discovery, added from its profiles and recorded, no URL typed."""
    from kuzet.services.recording.recorder import Recorder
    from tests.recording_support import ThreadedSim
    from tests.test_recording_engine import _wait_recording

    sim = ThreadedSim(2, credentials={2: "onvif:cam-secret"})
    try:
        face = sim.start_onvif()
        operator = login(demo_client, "operator")
        found = demo_client.post("/api/v1/onboarding/onvif/discover", headers=operator, json={
            "addresses": ["127.0.0.1"], "port": face.discovery_port, "multicast": False, "timeout": 2})
        assert found.status_code == 200, found.text
        devices = {d["scopes"][2].rsplit("/", 1)[-1]: d for d in found.json()["devices"]}
        assert set(devices) == {"KuzetSim-cam1", "KuzetSim-cam2"}
        xaddr = devices["KuzetSim-cam2"]["xaddrs"][0]
        refused = demo_client.post("/api/v1/onboarding/onvif/probe", headers=operator,
                                   json={"xaddr": xaddr, "username": "onvif", "password": "wrong"})
        assert refused.status_code == 422 and "refused" in refused.json()["error"]["message"]
        probe = demo_client.post("/api/v1/onboarding/onvif/probe", headers=operator,
                                 json={"xaddr": xaddr, "username": "onvif", "password": "cam-secret"})
        assert probe.status_code == 200, probe.text
        assert [(p["token"], p["width"]) for p in probe.json()["profiles"]] == [("main", 640), ("sub", 320)]
        city = demo_inst.city
        added = demo_client.post("/api/v1/onboarding/onvif/cameras", headers=operator, json={
            "xaddr": xaddr, "username": "onvif", "password": "cam-secret", "place_id": city.entrances[2],
            "name": "ONVIF вход"})
        assert added.status_code == 201, added.text
        camera_id = added.json()["camera_id"]
        with demo_inst.db.session() as s:
            camera = s.get(Camera, camera_id)
            assert camera.main_url == sim.url(2) and camera.sub_url == sim.url(2, "sub")
            assert demo_inst.keys.decrypt(camera.main_credentials) == "onvif:cam-secret"
            s.execute(Camera.__table__.update().where(Camera.id != camera_id).values(enabled=False))
        # Not in a place the caller manages: 404, like a place that does not exist.
        assert demo_client.post("/api/v1/onboarding/onvif/cameras", headers=login(demo_client, "school7"), json={
            "xaddr": xaddr, "place_id": city.entrances[2]}).status_code == 403

        async def record() -> dict:
            recorder = Recorder(demo_inst.settings, demo_inst.db, demo_inst.keys)
            await recorder.start()
            try:
                await _wait_recording(recorder, camera_id, timeout=40)
                return recorder.health(camera_id)
            finally:
                await recorder.stop()

        health = asyncio.run(record())
        assert health["codec"] == "h264" and health["width"] == 640
    finally:
        sim.close()
        with demo_inst.db.session() as s:
            s.execute(Camera.__table__.update().values(enabled=True))


def test_field_list_names_offline_cameras_with_address_entrance_and_since(demo_inst: Installation,
                                                                          demo_client: TestClient) -> None:
    city = demo_inst.city
    since = utcnow().replace(microsecond=0) - timedelta(hours=3)
    with demo_inst.db.session() as s:
        s.add(Gap(camera_id=city.cameras["b1e1"], start_at=since, reason="unreachable", message="connection refused"))
    listed = demo_client.get("/api/v1/field/offline", headers=login(demo_client, "operator")).json()["items"]
    item = next(i for i in listed if i["camera_id"] == city.cameras["b1e1"])
    assert item["reason"] == "unreachable" and item["since"].startswith(since.isoformat()[:19])
    assert item["entrance"].endswith("подъезд 1") and item["building"] and item["address"]
    # Never recorded and no gap: listed as never connected, since it was added.
    assert any(i["reason"] == "never_connected" for i in listed)
    # A resident manages nothing: an empty list, not someone else's cameras.
    assert demo_client.get("/api/v1/field/offline", headers=login(demo_client, "resident1")).json()["items"] == []


def test_storage_tier_through_the_api(demo_inst: Installation, demo_client: TestClient) -> None:
    city = demo_inst.city
    cam = city.cameras["b1e1"]
    operator, resident = login(demo_client, "operator"), login(demo_client, "resident1")
    url = f"/api/v1/cameras/{cam}/storage-tier"
    assert demo_client.get(url, headers=resident).json()["policy"] is None
    assert demo_client.put(url, headers=resident, json={"full_days": 7, "motion_days": 23}).status_code == 403
    assert demo_client.put(url, headers=operator, json={"full_days": 0, "motion_days": 23}).status_code == 422
    put = demo_client.put(url, headers=operator, json={"full_days": 7, "motion_days": 23})
    assert put.status_code == 200 and put.json()["policy"] == {"full_days": 7, "motion_days": 23, "total_days": 30,
                                                               "source": "camera"}
    assert put.json()["thinned"] is True
    assert demo_client.delete(url, headers=operator).json()["policy"] is None
    assert demo_client.get(f"/api/v1/cameras/{city.cameras['b3e1']}/storage-tier", headers=resident).status_code == 404


def test_installation_list_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "inst"
    assert kuzet("init", "--data", str(data)).returncode == 0
    inst = Installation.open(data)
    from kuzet.services.audit import SYSTEM
    from kuzet.services.places import create_place

    with inst.db.session() as s:
        create_place(s, SYSTEM, "district", "Центральный")
    inst.close()
    good = tmp_path / "list.csv"
    good.write_text(HEADER + "Центральный,Дом 1,,Подъезд 1,,Камера 1,,rtsp://10.0.0.1/a,,admin,pw,,\n"
                    "Центральный,Дом 1,,Подъезд 2,,Камера 2,,rtsp://10.0.0.2/a,,,,,\n", encoding="utf-8")
    out = kuzet("camera", "import-installations", str(good), "--json", data=data)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["imported"] == 2 and result["places_created"] == 3
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "Центральный,Дом 2,,,,К,,ftp://x/y,,,,,\nНигде,Дом 2,,,,К2,,rtsp://x/y,,,,,\n",
                   encoding="utf-8")
    out = kuzet("camera", "import-installations", str(bad), "--json", data=data)
    assert out.returncode == 1
    assert [e["line"] for e in json.loads(out.stdout)["errors"]] == [2, 3]
    out = kuzet("camera", "import-installations", str(bad), data=data)
    assert out.returncode == 1 and "line 2" in out.stderr and "nothing was imported" in out.stderr
    tier = kuzet("camera", "tier", "1", "--full-days", "7", "--motion-days", "23", "--json", data=data)
    assert tier.returncode == 0 and json.loads(tier.stdout)["policy"]["total_days"] == 30
    push = kuzet("camera", "push", "2", "--host", "video.example.kz", "--json", data=data)
    assert push.returncode == 0 and json.loads(push.stdout)["push_url"].startswith(
        "rtmp://video.example.kz:1935/push/2?key=")
    offline = kuzet("camera", "offline", "--json", data=data)
    assert offline.returncode == 0 and {i["camera_id"] for i in json.loads(offline.stdout)["items"]} == {1, 2}
    assert kuzet("onvif", "discover", "--help").returncode == 0
