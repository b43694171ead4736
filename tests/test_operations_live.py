"""The operations centre end to end on real RTSP cameras: the recorder's stream → the analysis pipeline → events on
the timeline → a rule's alarm pushed over the WebSocket to the right unit only, on the in-process bus and on NATS;
a plate rendered on a simulated road camera → a hot-list alarm at that district's unit, not the other's."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from kuzet.installation import Installation
from kuzet.store.db import utcnow
from tests.conftest import NATS_URL, login
from tests.recording_support import ThreadedSim
from tests.watching_support import streaming_demo

pytestmark = pytest.mark.media
LIVE = ("b1yard", "b3yard")


def _wait(predicate, timeout: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module", params=["memory://", NATS_URL])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Installation, TestClient]]:
    from kuzet.api.app import create_app
    from kuzet.config import load_settings

    if request.param.startswith("nats"):
        import asyncio

        from kuzet.store.bus import connect_bus
        from tests.conftest import _unavailable

        try:
            asyncio.run(asyncio.wait_for(connect_bus(request.param), 5)).nc  # noqa: B018
        except Exception as exc:  # noqa: BLE001
            _unavailable("NATS", exc)
    sim = ThreadedSim(2)
    inst = streaming_demo(tmp_path_factory.mktemp("ops-live") / "data", sim, live=LIVE)
    inst.settings = load_settings(environ={"KUZET_DATA_DIR": str(inst.settings.data_dir),
                                           "KUZET_RECORDER__FILE_SECONDS": "5",
                                           "KUZET_RECORDER__FRAGMENT_SECONDS": "0.5",
                                           "KUZET_STORAGE__MIN_FREE_BYTES": "0", "KUZET_EVENTS_URL": request.param,
                                           "KUZET_OPERATIONS__WORKERS": "1"})
    try:
        with TestClient(create_app(inst, run_services=True)) as client:
            yield inst, client
    finally:
        inst.close()
        sim.close()


def test_motion_becomes_events_on_the_timeline(served) -> None:  # noqa: ANN001
    inst, client = served
    yard = inst.city.cameras["b1yard"]
    duty1 = login(client, "duty1")

    def motion_events() -> list:
        now = utcnow()
        body = client.get(f"/api/v1/cameras/{yard}/timeline", headers=duty1, params={
            "start": (now - timedelta(minutes=5)).isoformat(), "end": (now + timedelta(minutes=1)).isoformat()})
        assert body.status_code == 200, body.text
        return [e for e in body.json()["events"] if e["kind"] == "motion"]

    events = _wait(motion_events, 60, "a motion interval of the simulated camera")
    assert events[0]["start"] and events[0]["id"]
    found = client.get("/api/v1/events", headers=duty1, params={"camera": yard, "kind": "motion"}).json()
    assert found["total"] >= 1
    event = found["items"][-1]
    assert event["snapshot_url"]
    picture = client.get(event["snapshot_url"], headers=duty1)
    assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"  # a JPEG
    # the camera's current picture, to draw zones on
    current = client.get(f"/api/v1/cameras/{yard}/snapshot.jpg", headers=duty1)
    assert current.status_code == 200 and current.content[:2] == b"\xff\xd8"
    assert client.get(f"/api/v1/cameras/{yard}/snapshot.jpg",
                      headers=login(client, "resident2")).status_code == 404


def test_a_rules_alarm_is_pushed_to_its_unit_and_not_to_the_other(served) -> None:  # noqa: ANN001
    inst, client = served
    city = inst.city
    yard1, yard3 = city.cameras["b1yard"], city.cameras["b3yard"]
    duty1, duty2 = login(client, "duty1"), login(client, "duty2")
    for headers, camera in ((duty1, yard1), (duty2, yard3)):
        r = client.post("/api/v1/alarm-rules", headers=headers, json={
            "name": f"Движение, камера {camera}", "camera_id": camera, "event_kind": "motion"})
        assert r.status_code == 201, r.text
    token1 = client.post("/api/v1/auth/token", data={"username": "duty1", "password": "demo"}).json()["access_token"]
    with client.websocket_connect(f"/api/v1/alarms/live?token={token1}") as ws:
        assert json.loads(ws.receive_text())["type"] == "hello"
        deadline = time.time() + 60
        got = None
        while time.time() < deadline:
            message = json.loads(ws.receive_text())
            if message["type"] == "raised":
                got = message["alarm"]
                break
        assert got is not None, "no alarm pushed to duty1"
        # duty1's socket only ever carries duty1's alarms
        assert got["camera"]["id"] == yard1 and inst.city.organisations["duty1"] in got["organisations"]
        r = client.post(f"/api/v1/alarms/{got['id']}/acknowledge", headers=duty1)
        assert r.status_code == 200
        while True:
            message = json.loads(ws.receive_text())
            if message["type"] == "acknowledged" and message["alarm"]["id"] == got["id"]:
                break
            assert message["alarm"]["camera"]["id"] == yard1
    listed = client.get("/api/v1/alarms", headers=duty2).json()["items"]
    assert got["id"] not in [a["id"] for a in listed]
    assert all(a["camera"]["id"] == yard3 for a in listed)


@pytest.fixture(scope="module")
def road(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Installation, TestClient]]:
    """District 1's road camera sees a car with a wanted plate; district 2's sees ordinary traffic."""
    from kuzet.api.app import create_app
    from kuzet.services.simulator.scenes import DEMO_PLATE

    # demo camera i plays simulator camera i % 3 + 1: d1road (the 11th camera) → 2, d2road (the 22nd) → 1
    sim = ThreadedSim(3, scenes={2: f"road:{DEMO_PLATE}"})
    inst = streaming_demo(tmp_path_factory.mktemp("ops-road") / "data", sim, live=("d1road", "d2road"))
    try:
        with TestClient(create_app(inst, run_services=True)) as client:
            yield inst, client
    finally:
        inst.close()
        sim.close()


def test_a_wanted_plate_on_a_road_camera_alarms_its_district_not_the_other(road) -> None:  # noqa: ANN001
    from kuzet.services.simulator.scenes import DEMO_PLATE

    inst, client = road
    city = inst.city
    center, duty1, duty2 = login(client, "center"), login(client, "duty1"), login(client, "duty2")
    hot = client.post("/api/v1/hotlists", headers=center,
                      json={"name": "Угон (тест)", "kind": "stolen", "priority": "critical"}).json()
    client.post(f"/api/v1/hotlists/{hot['id']}/entries", headers=center,
                json={"plate": DEMO_PLATE, "reason": "угон 14.11"})

    def plate_alarm() -> dict | None:
        items = client.get("/api/v1/alarms", headers=duty1).json()["items"]
        return next((a for a in items if a["hot_list"] and a["hot_list"]["plate"] == DEMO_PLATE), None)

    alarm = _wait(plate_alarm, 90, f"a hot-list alarm for {DEMO_PLATE}")
    assert alarm["camera"]["id"] == city.cameras["d1road"] and alarm["priority"] == "critical"
    assert alarm["event"]["plate"] == DEMO_PLATE and alarm["event"]["plate_region"] == DEMO_PLATE[-2:]
    crop = client.get(alarm["crop_url"], headers=duty1)
    snapshot = client.get(alarm["snapshot_url"], headers=duty1)
    assert crop.status_code == 200 and snapshot.status_code == 200 and crop.content[:2] == b"\xff\xd8"
    assert set(alarm["organisations"]) == {city.organisations["duty1"], city.organisations["centre"]}
    assert alarm["id"] in [a["id"] for a in client.get("/api/v1/alarms", headers=center).json()["items"]]
    assert client.get(f"/api/v1/alarms/{alarm['id']}", headers=duty2).status_code == 404
    assert not [a for a in client.get("/api/v1/alarms", headers=duty2).json()["items"] if a["hot_list"]]
    # the read plate is searchable by prefix, by district 1 only
    found = client.get("/api/v1/events", headers=duty1, params={"plate": DEMO_PLATE[:4], "kind": "plate"}).json()
    assert found["total"] >= 1 and found["items"][0]["camera_id"] == city.cameras["d1road"]
    assert client.get("/api/v1/events", headers=duty2, params={"plate": DEMO_PLATE[:4]}).json()["total"] == 0
