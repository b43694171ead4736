"""Operators' details (issue 12): repeated alarms fold into one with a count and the latest picture; the incident's
type is suggested from the alarm; "no crews" says why and offers the neighbouring district's; the control centre's
KPIs cover every district; a crew's new calls are pushed over its WebSocket. SQLite and PostgreSQL; the push on the
in-process bus and on NATS.

Detections enter exactly as the analysis service stores them (``AnalysisService._persist``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from kuzet.installation import Installation
from kuzet.services.operations.analysis import AnalysisService
from kuzet.services.operations.observations import Observation
from kuzet.store.db import utcnow
from kuzet.store.models import User
from kuzet.store.models.operations import Alarm, Dispatch
from tests.conftest import NATS_URL, _unavailable, login

JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


def observe(inst: Installation, camera_id: int, kind: str, start: datetime, seconds: float = 0.0,
            **fields) -> list[tuple[str, dict]]:  # noqa: ANN003
    """A detection from start to end, stored by the analysis service's own code; returns its bus messages."""
    if inst.running.analysis is None:  # the analysis service of this process, not started: its code only
        inst.running.analysis = AnalysisService(inst)
    service = inst.running.analysis
    service._rule_cache = None
    key = f"{kind}-{start.timestamp()}"
    messages = service._persist(Observation(camera_id, kind, "start", key, start, snapshot=JPEG, **fields))
    messages += service._persist(Observation(camera_id, kind, "end", key, start,
                                             end=start + timedelta(seconds=seconds), **fields))
    return messages


def alarm_messages(messages: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    return [(p["type"], p["alarm"]) for s, p in messages if s.startswith("kuzet.alarm.")]


def cam(inst: Installation, slug: str) -> int:
    return inst.city.cameras[slug]


def org(inst: Installation, key: str) -> int:
    return inst.city.organisations[key]


def test_repeated_plate_alarms_fold_into_one_with_a_count_and_the_latest_picture(
        demo_inst: Installation, demo_client: TestClient) -> None:
    center, duty1 = login(demo_client, "center"), login(demo_client, "duty1")
    hl = demo_client.post("/api/v1/hotlists", headers=center,
                          json={"name": "Угон (повторы)", "kind": "stolen", "priority": "critical"}).json()
    assert demo_client.post(f"/api/v1/hotlists/{hl['id']}/entries", headers=center,
                            json={"plate": "777 FLD 11", "reason": "угнан 01.12"}).status_code == 201
    road = cam(demo_inst, "d1road")
    t0 = utcnow() - timedelta(minutes=3)
    passes = [observe(demo_inst, road, "plate", t0 + timedelta(seconds=40 * i), label="plate", plate="777FLD11",
                      plate_region="11", score=0.9, crop=JPEG) for i in range(3)]
    kinds = [[k for k, _ in alarm_messages(m)] for m in passes]
    assert kinds == [["raised"], ["repeated"], ["repeated"]]  # one critical card, then repeats of it
    first, latest = alarm_messages(passes[0])[0][1], alarm_messages(passes[2])[0][1]
    assert latest["id"] == first["id"] and latest["occurrences"] == 3
    assert latest["event"]["id"] != first["event"]["id"] and latest["first_event_id"] == first["event"]["id"]
    assert latest["crop_url"] == f"/api/v1/events/{latest['event']['id']}/crop.jpg"  # the latest picture
    assert latest["suggested_offence_type"] == "vehicle_theft"

    queue = [a for a in demo_client.get("/api/v1/alarms", headers=duty1, params={"state": "new"}).json()["items"]
             if a["hot_list"] and a["hot_list"]["list_id"] == hl["id"]]
    assert [(a["id"], a["occurrences"]) for a in queue] == [(first["id"], 3)]
    # An update of a pass already counted counts nothing again.
    service = demo_inst.running.analysis
    again = service._persist(Observation(road, "plate", "end", f"plate-{(t0 + timedelta(seconds=40)).timestamp()}",
                                         t0 + timedelta(seconds=40), end=t0 + timedelta(seconds=41),
                                         plate="777FLD11", label="plate"))
    assert alarm_messages(again) == []
    # Acknowledged, it still folds the next pass; once dismissed, the next pass is a new alarm.
    assert demo_client.post(f"/api/v1/alarms/{first['id']}/acknowledge", headers=duty1).status_code == 200
    fourth = alarm_messages(observe(demo_inst, road, "plate", t0 + timedelta(seconds=160), plate="777FLD11",
                                    label="plate", crop=JPEG))
    assert [(k, a["id"], a["occurrences"]) for k, a in fourth] == [("repeated", first["id"], 4)]
    assert demo_client.post(f"/api/v1/alarms/{first['id']}/dismiss", headers=duty1,
                            json={"reason": "проверено, не тот автомобиль"}).status_code == 200
    fifth = alarm_messages(observe(demo_inst, road, "plate", t0 + timedelta(seconds=200), plate="777FLD11",
                                   label="plate", crop=JPEG))
    assert [k for k, _ in fifth] == ["raised"] and fifth[0][1]["id"] != first["id"]
    # The KPIs count alarms, not sightings: two for this camera and list.
    k = demo_client.get("/api/v1/operations/kpis", headers=duty1).json()
    row = next(r for r in k["cameras"] if r["camera_id"] == road)
    with demo_inst.db.session() as s:
        assert row["alarms"] == len(s.scalars(select(Alarm.id).where(Alarm.camera_id == road)).all())
        assert s.get(Alarm, first["id"]).occurrences == 4


def test_an_incident_from_a_stolen_car_alarm_is_vehicle_theft_with_both_clips(
        demo_inst: Installation, demo_client: TestClient) -> None:
    center, duty2 = login(demo_client, "center"), login(demo_client, "duty2")
    hl = demo_client.post("/api/v1/hotlists", headers=center,
                          json={"name": "Угон (инцидент)", "kind": "stolen", "priority": "high"}).json()
    demo_client.post(f"/api/v1/hotlists/{hl['id']}/entries", headers=center, json={"plate": "555 INC 11"})
    road = cam(demo_inst, "d2road")
    t0 = utcnow() - timedelta(minutes=2)
    raised = alarm_messages(observe(demo_inst, road, "plate", t0, plate="555INC11", label="plate", crop=JPEG))
    observe(demo_inst, road, "plate", t0 + timedelta(seconds=45), plate="555INC11", label="plate", crop=JPEG)
    alarm_id = raised[0][1]["id"]
    made = demo_client.post(f"/api/v1/alarms/{alarm_id}/incident", headers=duty2, json={})
    assert made.status_code == 201, made.text
    incident = made.json()
    assert incident["offence_type"] == "vehicle_theft"  # suggested from the stolen-car list, not "theft"
    assert len(incident["cameras"]) == 2  # the first pass's clip and the latest's
    chosen = demo_client.post(f"/api/v1/alarms/{alarm_id}/incident", headers=duty2, json={})
    assert chosen.status_code == 409  # already an incident


def test_no_crews_says_why_and_offers_the_neighbouring_districts(demo_inst: Installation,
                                                                   demo_client: TestClient) -> None:
    duty1, duty2 = login(demo_client, "duty1"), login(demo_client, "duty2")
    city = demo_inst.city
    # District 2 has no crew of its own.
    south = demo_client.post("/api/v1/incidents", headers=duty2, json={
        "offence_type": "hooliganism", "place_id": city.yards[2]}).json()
    crews = demo_client.get(f"/api/v1/incidents/{south['id']}/responders", headers=duty2).json()
    assert crews["items"] == [] and crews["reason"] == "none_in_district"
    assert crews["district"]["id"] == city.districts[1]
    with demo_inst.db.session() as s:
        responder1 = s.scalar(select(User.id).where(User.username == "responder1"))
    assert [(n["id"], n["busy"]) for n in crews["neighbours"]] == [(responder1, False)]
    assert crews["neighbours"][0]["district"] == "Северный район (демо)"
    # The neighbour may be sent while district 2 has nobody free.
    sent = demo_client.post(f"/api/v1/incidents/{south['id']}/dispatches", headers=duty2,
                            json={"responder_ids": [responder1]})
    assert sent.status_code == 201, sent.text
    # District 1: its own crew is now busy on the south call; nothing free and no neighbour with a crew.
    north = demo_client.post("/api/v1/incidents", headers=duty1, json={
        "offence_type": "theft", "place_id": city.yards[0]}).json()
    crews1 = demo_client.get(f"/api/v1/incidents/{north['id']}/responders", headers=duty1).json()
    assert [(i["id"], i["busy"]) for i in crews1["items"]] == [(responder1, True)]
    assert crews1["reason"] == "all_busy" and crews1["neighbours"] == []
    # A unit with a free crew of its own sends no neighbour: the crew reports the south call closed.
    dispatch_id = sent.json()["dispatches"][0]["id"]
    assert demo_client.post(f"/api/v1/dispatches/{dispatch_id}/status", headers=login(demo_client, "responder1"),
                            json={"status": "closed"}).status_code == 200
    again = demo_client.get(f"/api/v1/incidents/{north['id']}/responders", headers=duty1).json()
    assert again["reason"] is None and again["neighbours"] == []
    # Another south call: responder1 is free again, so district 2 may send the neighbour again — but not duty1's
    # operators to a call they do not see.
    south2 = demo_client.post("/api/v1/incidents", headers=duty2, json={
        "offence_type": "theft", "place_id": city.yards[3]}).json()
    assert demo_client.get(f"/api/v1/incidents/{south2['id']}/responders", headers=duty1).status_code == 404


def test_the_control_centres_kpis_cover_every_district(demo_inst: Installation, demo_client: TestClient) -> None:
    centre = demo_client.get("/api/v1/operations/kpis", headers=login(demo_client, "center")).json()
    units = {u["organisation_id"] for u in centre["units"]}
    assert {org(demo_inst, "centre"), org(demo_inst, "duty1"), org(demo_inst, "duty2")} <= units
    duty1 = demo_client.get("/api/v1/operations/kpis", headers=login(demo_client, "duty1")).json()
    assert {u["organisation_id"] for u in duty1["units"]} == {org(demo_inst, "duty1")}
    one = demo_client.get("/api/v1/operations/kpis", headers=login(demo_client, "center"),
                          params={"organisation": org(demo_inst, "duty2")}).json()
    assert [u["organisation_id"] for u in one["units"]] == [org(demo_inst, "duty2")]
    # The centre cannot read a unit outside its area (the school's organisation): nothing, not an error.
    school = demo_client.get("/api/v1/operations/kpis", headers=login(demo_client, "center"),
                             params={"organisation": org(demo_inst, "school1")}).json()
    assert school["units"] == []


@pytest.fixture(params=["memory://", NATS_URL])
def crew_client(request: pytest.FixtureRequest, demo_inst: Installation) -> Iterator[TestClient]:
    """The demo's API with an event bus (in-process or NATS), without the recorder."""
    from kuzet.api.app import create_app
    from kuzet.store.bus import connect_bus

    with TestClient(create_app(demo_inst)) as client:
        try:
            bus = client.portal.call(connect_bus, request.param)
        except Exception as exc:  # noqa: BLE001
            _unavailable("NATS", exc)
        demo_inst.running.bus = bus
        try:
            yield client
        finally:
            demo_inst.running.bus = None
            client.portal.call(bus.close)


def test_a_crew_gets_its_new_call_pushed_and_nobody_elses(demo_inst: Installation, crew_client: TestClient) -> None:
    client = crew_client
    duty1 = login(client, "duty1")
    city = demo_inst.city
    with demo_inst.db.session() as s:
        responder1 = s.scalar(select(User.id).where(User.username == "responder1"))
        s.execute(update(Dispatch).values(status="closed"))  # earlier tests' calls are over
    token = client.post("/api/v1/auth/token", data={"username": "responder1", "password": "demo"}).json()
    with client.websocket_connect(f"/api/v1/dispatches/live?token={token['access_token']}") as ws:
        assert json.loads(ws.receive_text())["type"] == "hello"
        other = client.post("/api/v1/incidents", headers=duty1, json={"offence_type": "theft",
                                                                    "place_id": city.yards[1]}).json()
        call = client.post("/api/v1/incidents", headers=duty1, json={
            "offence_type": "robbery", "title": "Грабёж у подъезда", "place_id": city.entrances[0]}).json()
        sent = client.post(f"/api/v1/incidents/{call['id']}/dispatches", headers=duty1,
                           json={"responder_ids": [responder1], "note": "срочно"})
        assert sent.status_code == 201, sent.text
        message = json.loads(ws.receive_text())  # the incidents without this crew were not pushed to it
        assert message["type"] == "dispatch" and message["change"] == "dispatched"
        item = message["item"]
        assert item["incident"]["id"] == call["id"] and item["status"] == "sent" and item["note"] == "срочно"
        mine = client.get("/api/v1/dispatches/mine", headers={"Authorization": f"Bearer {token['access_token']}"})
        listed = next(d for d in mine.json()["items"] if d["id"] == item["id"])
        assert set(item) == set(listed) and set(item["incident"]) == set(listed["incident"])  # the REST shape
        assert "timeline" not in item["incident"] and other["id"] != item["incident"]["id"]
        # Signed out: the stream ends within the re-check period.
        client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token['access_token']}"})
        ended = None
        for _ in range(20):
            got = ws.receive()
            if got["type"] == "websocket.close":
                ended = got.get("code")
                break
            if json.loads(got.get("text") or "{}").get("code") == "access_ended":
                ended = ws.receive().get("code")
                break
        assert ended == 4403


def test_the_crew_push_is_refused_to_others(demo_inst: Installation, demo_client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    token = demo_client.post("/api/v1/auth/token", data={"username": "duty1", "password": "demo"}).json()
    with pytest.raises(WebSocketDisconnect) as refused, \
            demo_client.websocket_connect(f"/api/v1/dispatches/live?token={token['access_token']}") as ws:
        ws.receive_text()
    assert refused.value.code == 4404
