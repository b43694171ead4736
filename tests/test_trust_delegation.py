"""Delegation: nobody hands out more than they hold. Tried as the demo's own delegated admins would try it — the
school's admin minting police accounts, the telecom granting itself the archive, padded rights, deactivating the
platform admin — and the safe-yard need to know that only an explicit district assignment gives. Both databases."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kuzet.installation import Installation
from kuzet.store.db import utcnow
from kuzet.store.models import AuditRecord, Grant, User
from tests.conftest import login

PASSWORD = "a-long-enough-password"


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def _counts(inst: Installation) -> tuple[int, int]:
    with inst.db.session() as session:
        return session.scalar(select(func.count(User.id))), session.scalar(select(func.count(Grant.id)))


def _new_user(client: TestClient, headers: dict, **body: object):  # noqa: ANN202
    return client.post("/api/v1/users", headers=headers, json={"username": _name("u"), "password": PASSWORD, **body})


@pytest.fixture(scope="module")
def yards(demo_inst: Installation) -> dict:
    from kuzet.services.safeyard.demo import seed
    from kuzet.store.models.safeyard import SafeYard

    seed(demo_inst, demo_inst.city)
    city = demo_inst.city
    with demo_inst.db.session() as session:
        rows = session.scalars(select(SafeYard).order_by(SafeYard.id)).all()
        return {"d1": next(y.id for y in rows if y.district_id == city.districts[0]),
                "d2": next(y.id for y in rows if y.district_id == city.districts[1])}


def test_an_organisation_admin_cannot_mint_police_reach(demo_inst: Installation, demo_client: TestClient) -> None:
    city = demo_inst.city
    school7 = login(demo_client, "school7")
    school_org = city.organisations["school1"]
    before = _counts(demo_inst)
    # The attack: an inspector (and operators, analysts …) of district 1 made by the school's admin.
    for role, place in (("inspector", city.districts[0]), ("inspector", None), ("police_operator", city.districts[0]),
                        ("analyst", None), ("auditor", None), ("platform_admin", None), ("operator_admin", None)):
        response = _new_user(demo_client, school7, role=role, organisation_id=school_org, place_id=place)
        assert response.status_code in (403, 404), (role, response.text)
    # Accounts of another organisation (a police unit's), and homes outside the school: refused.
    assert _new_user(demo_client, school7, role="responder",
                     organisation_id=city.organisations["duty1"]).status_code == 403
    assert _new_user(demo_client, school7, role="resident", place_id=city.entrances[0]).status_code == 404
    assert _counts(demo_inst) == before  # nothing written
    # What a school's admin may do: staff of its own school (organisation_id defaults to its own).
    made = _new_user(demo_client, school7, role="responder", place_id=city.schools[0])
    assert made.status_code == 201, made.text
    assert made.json()["organisation_id"] == school_org
    # The school's admin lists its own staff, not the police's accounts.
    names = {u["username"] for u in demo_client.get("/api/v1/users", headers=school7).json()["items"]}
    assert made.json()["username"] in names and "duty1" not in names and "admin" not in names


def test_a_police_units_admin_creates_its_staff_within_its_district(demo_inst: Installation,
                                                                   demo_client: TestClient, yards: dict) -> None:
    city = demo_inst.city
    admin = login(demo_client, "admin")
    unit_admin_name = _name("unitadmin")
    made = demo_client.post("/api/v1/users", headers=admin, json={
        "username": unit_admin_name, "password": PASSWORD, "role": "organisation_admin",
        "organisation_id": city.organisations["duty1"]})
    assert made.status_code == 201, made.text
    unit_admin = login(demo_client, unit_admin_name, PASSWORD)
    inspector = _new_user(demo_client, unit_admin, role="inspector", place_id=city.districts[0])
    assert inspector.status_code == 201, inspector.text
    assert _new_user(demo_client, unit_admin, role="analyst").status_code == 201
    assert _new_user(demo_client, unit_admin, role="inspector", place_id=city.districts[1]).status_code == 404
    assert _new_user(demo_client, unit_admin, role="auditor").status_code == 403
    assert _new_user(demo_client, unit_admin, role="police_operator",
                     organisation_id=city.organisations["duty2"]).status_code == 403
    # A new inspector reads no personal data until assigned to the district, with the order that assigns them.
    inspector_name, inspector_id = inspector.json()["username"], inspector.json()["id"]
    headers = login(demo_client, inspector_name, PASSWORD)
    people = f"/api/v1/safe-yards/{yards['d1']}/people"
    assert demo_client.get(people, params={"purpose": "проверка"}, headers=headers).status_code == 404
    assert demo_client.post("/api/v1/safe-yards/assignments", headers=unit_admin, json={
        "user_id": inspector_id, "place_id": city.districts[1], "legal_basis": "Приказ 7"}).status_code == 404
    assigned = demo_client.post("/api/v1/safe-yards/assignments", headers=unit_admin, json={
        "user_id": inspector_id, "place_id": city.districts[0], "legal_basis": "Приказ № 7 о закреплении"})
    assert assigned.status_code == 201, assigned.text
    assert assigned.json()["active"] and assigned.json()["assigned_by"] == made.json()["id"]
    assert demo_client.get(people, params={"purpose": "проверка"}, headers=headers).status_code == 200
    other = f"/api/v1/safe-yards/{yards['d2']}/people"
    assert demo_client.get(other, params={"purpose": "проверка"}, headers=headers).status_code == 404
    mine = demo_client.get("/api/v1/safe-yards/assignments", headers=headers).json()["items"]
    assert [a["id"] for a in mine] == [assigned.json()["id"]]
    ended = demo_client.delete(f"/api/v1/safe-yards/assignments/{assigned.json()['id']}", headers=unit_admin)
    assert ended.status_code == 200 and ended.json()["active"] is False
    assert demo_client.get(people, params={"purpose": "проверка"}, headers=headers).status_code == 404
    log = demo_client.get("/api/v1/audit", params={"action": "safeyard.", "limit": 20},
                          headers=login(demo_client, "auditor")).json()["items"]
    mine_log = [r for r in log if r["object_id"] == str(assigned.json()["id"])]
    assert [r["action"] for r in mine_log] == ["safeyard.assignment_ended", "safeyard.assigned"]
    assert mine_log[1]["legal_basis"] == "Приказ № 7 о закреплении" and mine_log[1]["actor_name"] == unit_admin_name


def test_an_expired_assignment_gives_no_need_to_know(demo_inst: Installation, demo_client: TestClient,
                                                     yards: dict) -> None:
    city = demo_inst.city
    admin = login(demo_client, "admin")
    inspector = demo_client.post("/api/v1/users", headers=admin, json={
        "username": _name("insp"), "password": PASSWORD, "role": "inspector",
        "organisation_id": city.organisations["duty1"], "place_id": city.districts[0]}).json()
    now = utcnow()
    assert demo_client.post("/api/v1/safe-yards/assignments", headers=admin, json={
        "user_id": inspector["id"], "place_id": city.districts[0], "legal_basis": "Приказ 9",
        "valid_from": (now - timedelta(days=30)).isoformat(),
        "valid_to": (now - timedelta(days=1)).isoformat()}).status_code == 201
    headers = login(demo_client, inspector["username"], PASSWORD)
    assert demo_client.get(f"/api/v1/safe-yards/{yards['d1']}/people", params={"purpose": "проверка"},
                           headers=headers).status_code == 404
    # A resident or a school cannot be given need to know at all.
    resident = demo_client.get("/api/v1/users", headers=admin).json()["items"]
    resident_id = next(u["id"] for u in resident if u["username"] == "resident1")
    refused = demo_client.post("/api/v1/safe-yards/assignments", headers=admin, json={
        "user_id": resident_id, "place_id": city.districts[0], "legal_basis": "x"})
    assert refused.status_code == 422 and "inspectors" in refused.json()["error"]["message"]


def test_the_telecom_grants_only_what_it_holds(demo_inst: Installation, demo_client: TestClient) -> None:
    city = demo_inst.city
    operator = login(demo_client, "operator")
    with demo_inst.db.session() as session:
        ids = dict(session.execute(select(User.username, User.id)).all())
    camera = city.cameras["b1e1"]
    before = _counts(demo_inst)

    def grant(**body: object):  # noqa: ANN202
        return demo_client.post("/api/v1/grants", headers=operator, json={
            "camera_id": camera, "legal_basis": "Подписка 1", **body})

    # The attacks: itself, the archive it does not hold, the manage right with a leading space.
    assert grant(user_id=ids["operator"], rights=["view_live"]).status_code == 403
    denied = grant(user_id=ids["resident2"], rights=["view_archive"])
    assert denied.status_code == 403 and "view_archive" in denied.json()["error"]["message"]
    for padded in (" manage", "view_live ", "VIEW_LIVE", "view-live", ""):
        bad = grant(user_id=ids["resident2"], rights=[padded])
        assert bad.status_code == 422 and repr(padded) in bad.json()["error"]["message"], (padded, bad.text)
    assert grant(user_id=ids["resident2"], rights=["manage"]).status_code == 403
    assert grant(user_id=ids["resident2"], rights=[]).status_code == 422
    telecom = city.organisations["telecom"]
    assert grant(organisation_id=telecom, rights=["view_live"]).status_code == 403  # its own organisation
    assert _counts(demo_inst) == before
    # What it holds (view_live on the city's cameras) it may hand to a subscriber.
    ok = grant(user_id=ids["resident2"], rights=["view_live"])
    assert ok.status_code == 201 and ok.json()["rights"] == ["view_live"]
    # It may not revoke the control centre's grant (it could not have made it), but may revoke its own.
    with demo_inst.db.session() as session:
        centre_grant = session.scalar(select(Grant.id).where(Grant.organisation_id == city.organisations["centre"]))
    assert demo_client.delete(f"/api/v1/grants/{centre_grant}", headers=operator).status_code == 404
    assert demo_client.delete(f"/api/v1/grants/{ok.json()['id']}", headers=operator).status_code == 200


def test_the_telecom_cannot_add_police_staff_nor_touch_the_platform_admin(demo_inst: Installation,
                                                                         demo_client: TestClient) -> None:
    city = demo_inst.city
    operator = login(demo_client, "operator")
    with demo_inst.db.session() as session:
        ids = dict(session.execute(select(User.username, User.id)).all())
    for body in ({"role": "police_operator", "organisation_id": city.organisations["centre"]},
                 {"role": "responder", "organisation_id": city.organisations["duty1"]},
                 {"role": "organisation_admin", "organisation_id": city.organisations["school1"]},
                 {"role": "operator_admin", "organisation_id": city.organisations["telecom"]}):
        assert _new_user(demo_client, operator, **body).status_code in (403, 404), body
    for target in ("admin", "duty1", "center", "auditor"):
        response = demo_client.patch(f"/api/v1/users/{ids[target]}", headers=operator, json={"is_active": False})
        assert response.status_code == 404, (target, response.text)
    assert demo_client.patch(f"/api/v1/users/{ids['operator']}", headers=operator,
                             json={"is_active": False}).status_code == 403
    with demo_inst.db.session() as session:
        assert all(session.get(User, ids[n]).is_active for n in ("admin", "duty1", "center", "operator"))
    # A subscriber in its own city: made, then (de)activated by the telecom.
    resident = _new_user(demo_client, operator, role="resident", place_id=city.entrances[1])
    assert resident.status_code == 201, resident.text
    paused = demo_client.patch(f"/api/v1/users/{resident.json()['id']}", headers=operator, json={"is_active": False})
    assert paused.status_code == 200 and paused.json()["is_active"] is False
    # Cameras move only between places the telecom manages (it manages the whole city: to a new region, no).
    admin = login(demo_client, "admin")
    region = demo_client.post("/api/v1/places", headers=admin, json={"kind": "region", "name": _name("r")}).json()
    assert demo_client.patch(f"/api/v1/cameras/{city.cameras['b1e2']}", headers=operator,
                             json={"place_id": region["id"]}).status_code == 404


def test_a_grant_never_outlives_the_grantors_own(demo_inst: Installation, demo_client: TestClient) -> None:
    admin = login(demo_client, "admin")
    place = demo_client.post("/api/v1/places", headers=admin, json={"kind": "region", "name": _name("mall")}).json()
    org = demo_client.post("/api/v1/organisations", headers=admin, json={
        "name": _name("Mall "), "kind": "business", "place_id": place["id"]}).json()
    until = utcnow() + timedelta(days=30)
    assert demo_client.post("/api/v1/grants", headers=admin, json={
        "organisation_id": org["id"], "place_id": place["id"], "rights": ["manage", "view_live"],
        "legal_basis": "Договор 30 дней", "valid_to": until.isoformat()}).status_code == 201
    name = _name("malladmin")
    assert demo_client.post("/api/v1/users", headers=admin, json={
        "username": name, "password": PASSWORD, "role": "organisation_admin",
        "organisation_id": org["id"]}).status_code == 201
    mall_admin = login(demo_client, name, PASSWORD)
    guard = _new_user(demo_client, mall_admin, role="responder").json()
    forever = demo_client.post("/api/v1/grants", headers=mall_admin, json={
        "user_id": guard["id"], "place_id": place["id"], "rights": ["view_live"], "legal_basis": "x"})
    assert forever.status_code == 403 and "valid_to" in forever.json()["error"]["message"]
    shorter = demo_client.post("/api/v1/grants", headers=mall_admin, json={
        "user_id": guard["id"], "place_id": place["id"], "rights": ["view_live"], "legal_basis": "x",
        "valid_to": (until - timedelta(days=10)).isoformat()})
    assert shorter.status_code == 201, shorter.text


def test_subject_access_takes_the_national_id_in_the_body_only(demo_inst: Installation, demo_client: TestClient,
                                                               yards: dict) -> None:
    headers = login(demo_client, "inspector1")
    iin = "900101300005"
    assert demo_client.get(f"/api/v1/safe-yards/subject-access/{iin}", params={"purpose": "запрос"},
                           headers=headers).status_code in (404, 405, 422)
    bad = demo_client.post("/api/v1/safe-yards/subject-access", json={"iin": "12ab", "purpose": "запрос"},
                           headers=headers)
    assert bad.status_code == 422
    with demo_inst.db.session() as session:
        last = session.scalar(select(func.max(AuditRecord.seq)))
    ok = demo_client.post("/api/v1/safe-yards/subject-access", json={"iin": iin, "purpose": "запрос субъекта"},
                          headers=headers)
    assert ok.status_code == 200
    with demo_inst.db.session() as session:
        record = session.scalar(select(AuditRecord).where(AuditRecord.seq > last,
                                                          AuditRecord.action == "personal.exported"))
    assert record is not None and record.purpose == "запрос субъекта" and iin not in str(record.details)
