"""The operations centre's rules, alarms, incidents, dispatch and KPIs, on SQLite and PostgreSQL.

Detections enter exactly as the analysis service stores them (``AnalysisService._persist`` of an observation); the
pipeline that makes observations from video is tested in ``test_operations_vision.py`` and end to end in
``test_operations_live.py``.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from kuzet.domain.operations import in_schedule, parse_schedule
from kuzet.installation import Installation
from kuzet.services.operations.analysis import AnalysisService
from kuzet.services.operations.observations import Observation
from kuzet.store.db import utcnow
from kuzet.store.models import Organisation, User
from kuzet.store.models.operations import Alarm, AlarmRoute, Dispatch, Event
from tests.conftest import login

JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")  # a tiny, valid JFIF marker sequence


def observe(inst: Installation, camera_id: int, kind: str = "motion", start: datetime | None = None,
            seconds: float = 3.0, key: str | None = None, **fields) -> list[tuple[str, dict]]:
    """One detection from start to end, stored by the analysis service's own code; returns its bus messages."""
    if inst.running.analysis is None:  # the analysis service of this process, not started: its code only
        inst.running.analysis = AnalysisService(inst)
    service = inst.running.analysis
    service._rule_cache = None  # rules were just changed through the API; the running service re-reads them in 5 s
    start = start or utcnow()
    key = key or f"{kind}-{start.timestamp()}"
    messages = service._persist(Observation(camera_id, kind, "start", key, start, snapshot=JPEG, **fields))
    messages += service._persist(Observation(camera_id, kind, "end", key, start,
                                             end=start + timedelta(seconds=seconds), **fields))
    return messages


def org_id(inst: Installation, key: str) -> int:
    return inst.city.organisations[key]


def cam(inst: Installation, slug: str) -> int:
    return inst.city.cameras[slug]


def alarms_of(inst: Installation, messages: list[tuple[str, dict]]) -> list[dict]:
    """The alarms the messages raised (a repeat of an open alarm is a ``repeated`` message)."""
    return [p["alarm"] for s, p in messages if s.startswith("kuzet.alarm.") and p["type"] == "raised"]


# --- schedules (pure) -------------------------------------------------------------------------------------------

def test_overnight_schedule_belongs_to_the_day_it_starts() -> None:
    night = parse_schedule([{"days": [0], "from": "22:00", "to": "06:00"}])  # Monday night
    tz = "Asia/Almaty"  # UTC+5
    monday_2330 = datetime(2026, 1, 5, 18, 30, tzinfo=UTC)
    tuesday_0500 = datetime(2026, 1, 6, 0, 0, tzinfo=UTC)
    tuesday_2330 = datetime(2026, 1, 6, 18, 30, tzinfo=UTC)
    monday_1200 = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
    assert in_schedule(night, monday_2330, tz) and in_schedule(night, tuesday_0500, tz)
    assert not in_schedule(night, tuesday_2330, tz) and not in_schedule(night, monday_1200, tz)
    assert in_schedule(None, monday_1200, tz)


@pytest.mark.parametrize("bad", [[{"days": [7], "from": "22:00", "to": "06:00"}],
                                 [{"days": [1], "from": "25:00", "to": "06:00"}],
                                 [{"days": [1], "from": "10:00", "to": "10:00"}], ["22:00"]])
def test_bad_schedules_are_refused_by_the_api(demo_inst: Installation, demo_client: TestClient, bad) -> None:  # noqa: ANN001
    headers = login(demo_client, "duty1")
    r = demo_client.post("/api/v1/alarm-rules", headers=headers,
                         json={"name": "bad", "event_kind": "motion", "schedule": bad})
    assert r.status_code == 422 and "schedule" in r.json()["error"]["message"]


# --- rules → routed alarms ------------------------------------------------------------------------------------------

def test_night_rule_raises_at_the_district_unit_only_and_only_at_night(demo_inst: Installation,
                                                                        demo_client: TestClient) -> None:
    yard = cam(demo_inst, "b2yard")
    duty1 = login(demo_client, "duty1")
    rule = demo_client.post("/api/v1/alarm-rules", headers=duty1, json={
        "name": "Двор дома 2 ночью", "camera_id": yard, "event_kind": "object", "labels": ["person"],
        "min_duration": 2, "schedule": [{"days": list(range(7)), "from": "22:00", "to": "06:00"}],
        "priority": "high"}).json()
    assert rule["organisation_id"] == org_id(demo_inst, "duty1")
    night = datetime.now(UTC).replace(hour=19, minute=0, second=0, microsecond=0)  # 00:00 in Almaty
    day = night.replace(hour=6)  # 11:00 in Almaty
    assert alarms_of(demo_inst, observe(demo_inst, yard, "object", day, label="person")) == []
    assert alarms_of(demo_inst, observe(demo_inst, yard, "object", night, seconds=1.0, label="person")) == []
    assert alarms_of(demo_inst, observe(demo_inst, yard, "object", night, label="car")) == []
    raised = alarms_of(demo_inst, observe(demo_inst, yard, "object", night, label="person"))
    assert len(raised) == 1
    alarm = raised[0]
    assert alarm["title"] == "Двор дома 2 ночью" and alarm["priority"] == "high"
    assert alarm["organisations"] == [org_id(demo_inst, "duty1")]
    assert alarm["snapshot_url"] and alarm["clip_url"].startswith(f"/api/v1/cameras/{yard}/clip.mp4?start=")
    # duty1 sees it in the queue; duty2, the control centre (not its rule) and a resident do not
    queue = demo_client.get("/api/v1/alarms", headers=duty1).json()
    assert alarm["id"] in [a["id"] for a in queue["items"]]
    for other in ("duty2", "center"):
        assert demo_client.get(f"/api/v1/alarms/{alarm['id']}", headers=login(demo_client, other)).status_code == 404
    resident = login(demo_client, "resident1")
    assert demo_client.get("/api/v1/alarms", headers=resident).status_code == 404
    assert demo_client.get(f"/api/v1/alarm-rules/{rule['id']}", headers=login(demo_client, "duty2")).status_code == 404


def test_platform_rule_goes_to_every_responding_organisation_of_the_camera(demo_inst: Installation,
                                                                           demo_client: TestClient) -> None:
    yard1 = cam(demo_inst, "b1yard")  # district 1 duty unit, control centre and the security firm guard it
    admin = login(demo_client, "admin")
    demo_client.post("/api/v1/alarm-rules", headers=admin, json={
        "name": "Движение во дворе 1", "camera_id": yard1, "event_kind": "motion", "priority": "medium"})
    raised = alarms_of(demo_inst, observe(demo_inst, yard1, "motion"))
    assert len(raised) == 1
    expected = {org_id(demo_inst, k) for k in ("duty1", "centre", "security")}
    assert set(raised[0]["organisations"]) == expected  # not the telecom, not district 2
    with demo_inst.db.session() as session:
        kinds = {o.kind for o in session.scalars(select(Organisation).where(Organisation.id.in_(expected)))}
    assert kinds == {"police_duty_unit", "control_centre", "security_firm"}
    # closed, so the next interval raises a new alarm rather than repeating this one
    demo_client.post(f"/api/v1/alarms/{raised[0]['id']}/dismiss", headers=login(demo_client, "duty1"),
                     json={"reason": "проверено"})
    # a long motion interval raises once per rule, not once per update
    service = demo_inst.running.analysis
    start = utcnow()
    first = service._persist(Observation(yard1, "motion", "start", "long", start))
    again = service._persist(Observation(yard1, "motion", "update", "long", start, end=start + timedelta(seconds=5)))
    assert len(alarms_of(demo_inst, first)) == 1 and alarms_of(demo_inst, again) == []
    service._persist(Observation(yard1, "motion", "end", "long", start, end=start + timedelta(seconds=9)))


def test_rule_on_a_place_covers_its_cameras_and_zones_filter(demo_inst: Installation,
                                                            demo_client: TestClient) -> None:
    city = demo_inst.city
    duty2 = login(demo_client, "duty2")
    school = city.schools[1]  # school No. 12, district 2
    rule = demo_client.post("/api/v1/alarm-rules", headers=duty2, json={
        "name": "Школа 12: ворота", "place_id": school, "event_kind": "motion", "zone": "ворота"}).json()
    assert rule["place_id"] == school
    cam1 = cam(demo_inst, "d2school1")
    assert alarms_of(demo_inst, observe(demo_inst, cam1, zones=["двор"])) == []
    raised = alarms_of(demo_inst, observe(demo_inst, cam1, zones=["ворота"]))
    assert [a["organisations"] for a in raised] == [[org_id(demo_inst, "duty2")]]
    # duty2 may not make a rule on a camera of district 1: it is not found for them
    r = demo_client.post("/api/v1/alarm-rules", headers=duty2, json={
        "name": "x", "camera_id": cam(demo_inst, "b1yard"), "event_kind": "motion"})
    assert r.status_code == 422 and "not found" in r.json()["error"]["message"]


# --- hot lists and plates -------------------------------------------------------------------------------------------

def test_hot_list_import_is_all_or_nothing_and_names_the_line(demo_inst: Installation,
                                                             demo_client: TestClient) -> None:
    center = login(demo_client, "center")
    hl = demo_client.post("/api/v1/hotlists", headers=center,
                          json={"name": "Угон (тест импорта)", "kind": "stolen", "priority": "critical"}).json()
    bad = "номер,причина,действует до\n123ABC02,угон,2030-01-01\nНЕ НОМЕР,x,\n777AA11,розыск,31.12.2031\n"
    r = demo_client.post(f"/api/v1/hotlists/{hl['id']}/import", headers=center,
                         files={"file": ("list.csv", bad.encode(), "text/csv")})
    assert r.status_code == 422
    assert "line 3" in r.json()["error"]["message"] and r.json()["error"]["code"] == "import_rejected"
    entries = demo_client.get(f"/api/v1/hotlists/{hl['id']}/entries", headers=center).json()
    assert entries["total"] == 0
    good = "номер;причина\n123 abc 02;угон\nА 777 ВСЕ;розыск\n"  # spaces, lower case, Cyrillic look-alikes
    r = demo_client.post(f"/api/v1/hotlists/{hl['id']}/import", headers=center,
                         files={"file": ("list.csv", good.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    plates = {e["plate"] for e in demo_client.get(f"/api/v1/hotlists/{hl['id']}/entries",
                                                  headers=center).json()["items"]}
    assert "123ABC02" in plates and len(plates) == 2
    # hot lists are police data
    for user in ("resident1", "operator", "analyst", "school7"):
        assert demo_client.get("/api/v1/hotlists", headers=login(demo_client, user)).status_code == 404


def test_plate_on_a_hot_list_raises_an_alarm_at_its_district_not_the_other(demo_inst: Installation,
                                                                           demo_client: TestClient) -> None:
    center = login(demo_client, "center")
    hl = demo_client.post("/api/v1/hotlists", headers=center,
                          json={"name": "Розыск ДП (тест)", "kind": "wanted", "priority": "critical"}).json()
    demo_client.post(f"/api/v1/hotlists/{hl['id']}/entries", headers=center,
                     json={"plate": "456 KZA 11", "reason": "ориентировка 17"})
    road1 = cam(demo_inst, "d1road")
    messages = observe(demo_inst, road1, "plate", seconds=0, label="plate", plate="456KZA11", plate_region="11",
                       score=0.93, crop=JPEG)
    raised = alarms_of(demo_inst, messages)
    assert len(raised) == 1
    alarm = raised[0]
    assert alarm["priority"] == "critical" and alarm["hot_list"]["plate"] == "456KZA11"
    assert "ориентировка 17" in alarm["title"] and alarm["crop_url"]
    assert set(alarm["organisations"]) == {org_id(demo_inst, "duty1"), org_id(demo_inst, "centre")}
    assert alarm["id"] in [a["id"] for a in demo_client.get("/api/v1/alarms",
                                                            headers=login(demo_client, "duty1")).json()["items"]]
    assert demo_client.get(f"/api/v1/alarms/{alarm['id']}", headers=login(demo_client, "duty2")).status_code == 404
    # a plate not on any list raises nothing; an expired entry raises nothing
    assert alarms_of(demo_inst, observe(demo_inst, road1, "plate", seconds=0, plate="111AAA11")) == []
    demo_client.post(f"/api/v1/hotlists/{hl['id']}/entries", headers=center,
                     json={"plate": "222BBB11", "valid_to": "2020-01-01T00:00:00Z"})
    assert alarms_of(demo_inst, observe(demo_inst, road1, "plate", seconds=0, plate="222BBB11")) == []


def test_event_search_by_plate_prefix_fuzzy_place_and_visibility(demo_inst: Installation,
                                                                  demo_client: TestClient) -> None:
    road2 = cam(demo_inst, "d2road")
    observe(demo_inst, road2, "plate", seconds=0, label="plate", plate="901QWE17", plate_region="17")
    duty2, duty1 = login(demo_client, "duty2"), login(demo_client, "duty1")
    by_prefix = demo_client.get("/api/v1/events", headers=duty2, params={"plate": "901q"}).json()
    assert [e["plate"] for e in by_prefix["items"]] == ["901QWE17"]
    # one OCR-style error (O for 0) still finds it with fuzzy, not without
    assert demo_client.get("/api/v1/events", headers=duty2, params={"plate": "9O1QWE17"}).json()["total"] == 0
    fuzzy = demo_client.get("/api/v1/events", headers=duty2, params={"plate": "9O1QWE17", "fuzzy": "true"}).json()
    assert [e["plate"] for e in fuzzy["items"]] == ["901QWE17"]
    # district 1 cannot see district 2's road camera
    assert demo_client.get("/api/v1/events", headers=duty1, params={"plate": "901"}).json()["total"] == 0
    district2 = demo_inst.city.districts[1]
    in_place = demo_client.get("/api/v1/events", headers=duty2, params={"place": district2, "kind": "plate"}).json()
    assert "901QWE17" in [e["plate"] for e in in_place["items"]]
    event = by_prefix["items"][0]
    assert demo_client.get(f"/api/v1/events/{event['id']}", headers=duty1).status_code == 404
    assert demo_client.get("/api/v1/events", headers=duty2, params={"kind": "ghost"}).status_code == 422


# --- handling, incidents, dispatch, KPIs ----------------------------------------------------------------------------

def test_alarm_handling_states_and_false_alarm_reason(demo_inst: Installation, demo_client: TestClient) -> None:
    street = cam(demo_inst, "d1street1")
    admin, duty1 = login(demo_client, "admin"), login(demo_client, "duty1")
    demo_client.post("/api/v1/alarm-rules", headers=admin, json={
        "name": "Перекрёсток: движение", "camera_id": street, "event_kind": "motion"})
    first = alarms_of(demo_inst, observe(demo_inst, street))[0]
    # while it waits unhandled, more motion on the camera raises nothing new: it counts as a repeat of it
    assert alarms_of(demo_inst, observe(demo_inst, street)) == []
    assert demo_client.get(f"/api/v1/alarms/{first['id']}", headers=duty1).json()["occurrences"] == 2
    assert demo_client.post(f"/api/v1/alarms/{first['id']}/dismiss", headers=duty1,
                            json={"reason": ""}).status_code == 422
    r = demo_client.post(f"/api/v1/alarms/{first['id']}/dismiss", headers=duty1, json={"reason": "ветер, листва"})
    assert r.status_code == 200 and r.json()["state"] == "dismissed" and r.json()["acknowledged_at"]
    assert demo_client.post(f"/api/v1/alarms/{first['id']}/acknowledge", headers=duty1).status_code == 409
    second = alarms_of(demo_inst, observe(demo_inst, street))[0]  # handled: the next motion raises again
    assert demo_client.post(f"/api/v1/alarms/{second['id']}/acknowledge", headers=duty1).json()["state"] == \
        "acknowledged"
    open_queue = demo_client.get("/api/v1/alarms", headers=duty1, params={"state": ["new", "acknowledged"]}).json()
    ids = [a["id"] for a in open_queue["items"]]
    assert second["id"] in ids and first["id"] not in ids


def test_incident_dispatch_crew_reports_and_kpis(demo_inst: Installation, demo_client: TestClient) -> None:
    yard = cam(demo_inst, "b2yard")
    admin, duty1, responder = (login(demo_client, u) for u in ("admin", "duty1", "responder1"))
    demo_client.post("/api/v1/alarm-rules", headers=admin, json={
        "name": "Двор 2: человек", "camera_id": yard, "event_kind": "object", "labels": ["person"]})
    alarm = alarms_of(demo_inst, observe(demo_inst, yard, "object", label="person"))[-1]
    r = demo_client.post(f"/api/v1/alarms/{alarm['id']}/incident", headers=duty1,
                         json={"offence_type": "theft", "title": "Кража велосипеда во дворе"})
    assert r.status_code == 201, r.text
    incident = r.json()
    assert incident["status"] == "open" and incident["offence_type"] == "theft"
    assert incident["cameras"][0]["camera_id"] == yard and incident["alarms"][0]["id"] == alarm["id"]
    assert demo_client.get(f"/api/v1/alarms/{alarm['id']}", headers=duty1).json()["state"] == "incident"
    # an alarm already in an incident cannot open another one, however often it is named
    again = demo_client.post("/api/v1/incidents", headers=duty1,
                             json={"offence_type": "theft", "alarm_ids": [alarm["id"], alarm["id"]]})
    assert again.status_code == 422 and "already" in again.json()["error"]["message"], again.text
    # responders duty1 may send: district 1's crew
    crews = demo_client.get(f"/api/v1/incidents/{incident['id']}/responders", headers=duty1).json()["items"]
    responder_id = next(c["id"] for c in crews if c["username"] == "responder1")
    assert demo_client.post(f"/api/v1/incidents/{incident['id']}/dispatches", headers=duty1,
                            json={"responder_ids": [responder_id]}).status_code == 201
    assert demo_client.post(f"/api/v1/incidents/{incident['id']}/dispatches", headers=duty1,
                            json={"responder_ids": [responder_id]}).status_code == 422  # already on it
    mine = demo_client.get("/api/v1/dispatches/mine", headers=responder).json()["items"]
    d = next(x for x in mine if x["incident_id"] == incident["id"])
    for status in ("acknowledged", "en_route", "on_scene"):
        assert demo_client.post(f"/api/v1/dispatches/{d['id']}/status", headers=responder,
                                json={"status": status}).status_code == 200
    assert demo_client.post(f"/api/v1/dispatches/{d['id']}/status", headers=responder,
                            json={"status": "en_route"}).status_code == 409  # no going back
    assert demo_client.post(f"/api/v1/dispatches/{d['id']}/status", headers=duty1,
                            json={"status": "closed"}).status_code == 404  # only the crew reports
    assert demo_client.get(f"/api/v1/incidents/{incident['id']}", headers=duty1).json()["status"] == "on_scene"
    demo_client.post(f"/api/v1/incidents/{incident['id']}/notes", headers=duty1, json={"text": "Задержан 1"})
    assert demo_client.post(f"/api/v1/incidents/{incident['id']}/close", headers=duty1,
                            json={"resolution": "Передано в СОГ"}).status_code == 200
    full = demo_client.get(f"/api/v1/incidents/{incident['id']}", headers=duty1).json()
    kinds = [e["kind"] for e in full["timeline"]]
    assert kinds[:3] == ["created", "alarm", "dispatched"] and kinds[-1] == "closed"
    assert {"crew_acknowledged", "crew_en_route", "crew_on_scene", "note"} <= set(kinds)
    # others do not see it; the responder sees it while dispatched
    assert demo_client.get(f"/api/v1/incidents/{incident['id']}", headers=login(demo_client, "duty2")).status_code \
        == 404
    assert demo_client.get(f"/api/v1/incidents/{incident['id']}", headers=responder).status_code == 200

    # KPIs from known times: set the moments by hand and compare with the arithmetic
    t0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    with demo_inst.db.session() as session:
        session.execute(update(Alarm).where(Alarm.id == alarm["id"]).values(
            raised_at=t0, acknowledged_at=t0 + timedelta(seconds=40)))
        from kuzet.store.models.operations import Incident

        session.execute(update(Incident).where(Incident.id == incident["id"]).values(
            created_at=t0 + timedelta(seconds=60)))
        session.execute(update(Dispatch).where(Dispatch.id == d["id"]).values(
            sent_at=t0 + timedelta(seconds=90), on_scene_at=t0 + timedelta(seconds=90 + 420)))
    k = demo_client.get("/api/v1/operations/kpis", headers=duty1, params={
        "start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z"}).json()
    unit = next(u for u in k["units"] if u["organisation_id"] == org_id(demo_inst, "duty1"))
    assert unit["time_to_acknowledge"]["median"] == 40.0
    assert unit["time_to_dispatch"]["median"] == 90.0  # from the alarm, not from opening the incident
    assert unit["time_to_arrival"]["median"] == 420.0
    assert unit["incidents"] == 1 and unit["incidents_closed"] == 1
    assert demo_client.get("/api/v1/operations/kpis", headers=login(demo_client, "resident1")).status_code == 404

    # the export: CSV with the response times, audited
    r = demo_client.get("/api/v1/incidents/export", headers=duty1, params={
        "start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["id"] for row in rows] == [str(incident["id"])]
    assert rows[0]["first_on_scene_at"] == "2026-03-02T10:08:30Z" and rows[0]["offence_type"] == "theft"
    audit = demo_client.get("/api/v1/audit", headers=login(demo_client, "auditor"),
                            params={"action": "incident.exported", "limit": 1000}).json()
    assert any(a["action"] == "incident.exported" for a in audit["items"])


def test_false_alarm_rates_per_camera_and_rule(demo_inst: Installation, demo_client: TestClient) -> None:
    entrance = cam(demo_inst, "b2e2")
    admin, duty1 = login(demo_client, "admin"), login(demo_client, "duty1")
    rule = demo_client.post("/api/v1/alarm-rules", headers=admin, json={
        "name": "Подъезд 2-2: движение", "camera_id": entrance, "event_kind": "motion"}).json()
    for n in range(4):
        alarm_id = alarms_of(demo_inst, observe(demo_inst, entrance))[0]["id"]
        if n < 3:
            demo_client.post(f"/api/v1/alarms/{alarm_id}/dismiss", headers=duty1, json={"reason": "тень"})
        else:
            demo_client.post(f"/api/v1/alarms/{alarm_id}/acknowledge", headers=duty1)
    k = demo_client.get("/api/v1/operations/kpis", headers=duty1).json()
    by_rule = next(r for r in k["rules"] if r["rule_id"] == rule["id"])
    assert by_rule["alarms"] == 4 and by_rule["false_alarms"] == 3 and by_rule["false_alarm_rate"] == 75.0
    by_camera = next(c for c in k["cameras"] if c["camera_id"] == entrance)
    assert by_camera["false_alarm_rate"] == 75.0


def test_analysis_settings_zones_need_manage_and_are_validated(demo_inst: Installation,
                                                               demo_client: TestClient) -> None:
    yard = cam(demo_inst, "b1yard")
    operator, duty1, resident2 = (login(demo_client, u) for u in ("operator", "duty1", "resident2"))
    got = demo_client.get(f"/api/v1/cameras/{yard}/analysis", headers=duty1).json()
    assert got["motion"] is True and got["analysed_stream"] == "sub" and got["customised"] is False
    road = demo_client.get(f"/api/v1/cameras/{cam(demo_inst, 'd1road')}/analysis", headers=duty1).json()
    assert road["anpr"] is True and road["analysed_stream"] == "main"  # plates need the main stream's pixels
    zones = [{"name": "дорожка", "kind": "mask", "points": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]},
             {"name": "подъезд", "kind": "zone", "points": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4]]}]
    body = {"motion": True, "fps": 5, "sensitivity": 70, "min_area": 0.004, "zones": zones}
    assert demo_client.put(f"/api/v1/cameras/{yard}/analysis", headers=duty1, json=body).status_code == 403
    assert demo_client.get(f"/api/v1/cameras/{yard}/analysis", headers=resident2).status_code == 404
    r = demo_client.put(f"/api/v1/cameras/{yard}/analysis", headers=operator, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["zones"][0]["kind"] == "mask" and r.json()["customised"] is True
    outside = {**body, "zones": [{"name": "x", "points": [[0, 0], [1.5, 0], [1, 1]]}]}
    assert demo_client.put(f"/api/v1/cameras/{yard}/analysis", headers=operator, json=outside).status_code == 422
    twice = {**body, "zones": [zones[1], zones[1]]}
    assert demo_client.put(f"/api/v1/cameras/{yard}/analysis", headers=operator, json=twice).status_code == 422


def test_event_pictures_are_audited_and_pruned_with_their_files(demo_inst: Installation,
                                                                demo_client: TestClient) -> None:
    from kuzet.services.operations.analysis import EventRetentionService

    entrance = cam(demo_inst, "b1e2")
    old = utcnow() - timedelta(days=400)
    observe(demo_inst, entrance, "object", old, label="person")
    with demo_inst.db.session() as session:
        event = session.scalar(select(Event).where(Event.camera_id == entrance, Event.start_at == old))
        path = demo_inst.settings.events_path / event.snapshot
        event_id = event.id
    assert path.exists()
    duty1 = login(demo_client, "duty1")
    r = demo_client.get(f"/api/v1/events/{event_id}/snapshot.jpg", headers=duty1)
    assert r.status_code == 200 and r.content == JPEG
    audit = demo_client.get("/api/v1/audit", headers=login(demo_client, "auditor"),
                            params={"camera": entrance, "limit": 1000}).json()["items"]
    assert any(a["action"] == "video.archive" and (a.get("details") or {}).get("event_id") == event_id
               for a in audit)
    assert demo_client.get(f"/api/v1/events/{event_id}/snapshot.jpg",
                           headers=login(demo_client, "resident2")).status_code == 404
    EventRetentionService(demo_inst).run_once()
    with demo_inst.db.session() as session:
        assert session.get(Event, event_id) is None
    assert not path.exists()


def test_alarm_routes_never_name_organisations_without_a_grant(demo_inst: Installation) -> None:
    with demo_inst.db.session() as session:
        telecom = demo_inst.city.organisations["telecom"]
        assert session.scalar(select(AlarmRoute).where(AlarmRoute.organisation_id == telecom)) is None
        responders = session.scalars(select(User).where(User.role == "responder")).all()
        assert responders  # the demo has a crew to dispatch


def test_command_line_hot_list_import_event_search_and_incident_export(demo_inst: Installation, tmp_path) -> None:  # noqa: ANN001
    from tests.test_core_cli import kuzet

    env = {"KUZET_DATABASE_URL": demo_inst.settings.database_url} if demo_inst.settings.database_url else {}
    data = demo_inst.settings.data_dir
    bad = tmp_path / "bad.csv"
    bad.write_text("plate,reason\n100ABC02,ok\nnot a plate,x\n", encoding="utf-8")
    out = kuzet("hotlist", "import", "CLI list", str(bad), "--user", "center", "--json", data=data, env=env)
    assert out.returncode == 1 and json.loads(out.stdout)["errors"][0]["line"] == 3
    good = tmp_path / "good.csv"
    good.write_text("госномер;причина;действует до\n100 abc 02;угон;31.12.2030\n", encoding="utf-8")
    out = kuzet("hotlist", "import", "CLI list", str(good), "--user", "center", "--kind", "stolen", "--json",
                data=data, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"list": "CLI list", "added": 1, "updated": 0}
    assert kuzet("hotlist", "import", "CLI list", str(good), "--user", "resident1", data=data,
                 env=env).returncode == 1
    listed = json.loads(kuzet("hotlist", "list", "--user", "center", "--json", data=data, env=env).stdout)
    assert next(h for h in listed if h["name"] == "CLI list")["entries"] == 1
    observe(demo_inst, cam(demo_inst, "d1road"), "plate", seconds=0, plate="100ABC02", plate_region="02")
    found = kuzet("events", "search", "--user", "duty1", "--plate", "100AB", "--json", data=data, env=env)
    assert found.returncode == 0, found.stderr
    assert [e["plate"] for e in json.loads(found.stdout)] == ["100ABC02"]
    assert json.loads(kuzet("events", "search", "--user", "duty2", "--plate", "100AB", "--json", data=data,
                            env=env).stdout) == []
    export = kuzet("incidents", "export", "--user", "duty1", "--start", "2026-03-02T00:00:00Z", "--end",
                   "2026-03-03T00:00:00Z", data=data, env=env)
    assert export.returncode == 0, export.stderr
    assert export.stdout.startswith("id,offence_type,title")


def test_alarm_and_event_pages_show_each_item_as_its_own_page_does(demo_inst: Installation,
                                                                   demo_client: TestClient) -> None:
    """The lists build their pages from rows (``alarms_out``, ``events_out``), the detail routes from ORM objects
    (``alarm_out``, ``event_out``): a hot-list alarm, a repeated one whose latest picture is another event, one whose
    first event was pruned read the same in the queue, over both kinds of paging, as on their own."""
    center = login(demo_client, "center")
    hl = demo_client.post("/api/v1/hotlists", headers=center,
                          json={"name": "Pages (test)", "kind": "stolen", "priority": "high"}).json()
    demo_client.post(f"/api/v1/hotlists/{hl['id']}/entries", headers=center,
                     json={"plate": "777 PGS 01", "reason": "angarsk"})
    demo_client.post(f"/api/v1/hotlists/{hl['id']}/entries", headers=center, json={"plate": "888 PGS 01"})
    road = cam(demo_inst, "d1road")
    start = utcnow() - timedelta(minutes=2)
    hot = alarms_of(demo_inst, observe(demo_inst, road, "plate", start=start, seconds=0, label="plate",
                                       plate="777PGS01", plate_region="01", score=0.9, crop=JPEG))
    assert len(hot) == 1 and hot[0]["hot_list"]["kind"] == "stolen"
    other = alarms_of(demo_inst, observe(demo_inst, road, "plate", start=start, seconds=0, plate="888PGS01"))
    assert len(other) == 1
    # the same plate again within the repeat window: the alarm's latest picture becomes the second event
    observe(demo_inst, road, "plate", start=start + timedelta(seconds=30), seconds=0, label="plate",
            plate="777PGS01", plate_region="01", score=0.95, crop=JPEG)
    with demo_inst.db.session() as session:
        repeated = session.get(Alarm, hot[0]["id"])
        assert repeated.occurrences == 2 and repeated.last_event_id != repeated.event_id
        pruned = session.get(Alarm, other[0]["id"])
        pruned.event_id = None  # as the retention's prune leaves an alarm whose event it deleted
        pruned_id = pruned.id
    seen = []
    for username in ("center", "duty1"):
        headers = login(demo_client, username)
        whole = demo_client.get("/api/v1/alarms", headers=headers, params={"limit": 1000})
        assert whole.status_code == 200 and whole.json()["total"] == len(whole.json()["items"])
        cursor, keyset = "", []
        while cursor is not None:
            page = demo_client.get("/api/v1/alarms", headers=headers, params={"limit": 3, "cursor": cursor}).json()
            keyset += page["items"]
            cursor = page["next_cursor"]
        assert keyset == whole.json()["items"]
        for item in keyset:
            assert item == demo_client.get(f"/api/v1/alarms/{item['id']}", headers=headers).json()
            seen.append(item["id"])
        events = demo_client.get("/api/v1/events", headers=headers, params={"limit": 200, "cursor": ""}).json()
        assert events["items"]
        for item in events["items"][:40]:
            assert item == demo_client.get(f"/api/v1/events/{item['id']}", headers=headers).json()
    assert {hot[0]["id"], pruned_id} <= set(seen)
