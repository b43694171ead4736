"""The access matrix: every demo role against cameras inside and outside its grants. No leak; 404 outside grants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from kuzet.installation import Installation
from kuzet.services.audit import SYSTEM
from kuzet.services.grants import create_grant
from kuzet.store.db import utcnow
from kuzet.store.models import Camera, Grant, User
from tests.conftest import login

# Which demo cameras (by slug) each account must see; everything else must be invisible.
D1 = {"b1e1", "b1e2", "b1yard", "b2e1", "b2e2", "b2yard", "d1school1", "d1school2", "d1street1", "d1street2", "d1road"}
D2 = {"b3e1", "b3e2", "b3yard", "b4e1", "b4e2", "b4yard", "d2school1", "d2school2", "d2street1", "d2street2", "d2road"}
EXPECTED = {
    "admin": D1 | D2,
    "operator": D1 | D2,
    "center": D1 | D2,
    "duty1": D1,
    "duty2": D2,
    "inspector1": D1,  # a member of district 1's police unit inherits its grants
    "resident1": {"b1e1", "b1yard"},
    "resident2": {"b2e1", "b2yard"},
    "school7": {"d1school1", "d1school2"},
    "analyst": set(),
    "auditor": set(),
    "responder1": D1,
}


def _ids(city, slugs: set[str]) -> set[int]:
    return {city.cameras[s] for s in slugs}


@pytest.mark.parametrize("username", sorted(EXPECTED))
def test_camera_list_and_get_match_grants(demo_inst: Installation, demo_client: TestClient, username: str) -> None:
    city = demo_inst.city
    headers = login(demo_client, username)
    listed = demo_client.get("/api/v1/cameras", params={"limit": 1000}, headers=headers).json()
    assert {c["id"] for c in listed["items"]} == _ids(city, EXPECTED[username])
    assert listed["total"] == len(EXPECTED[username])
    for slug, camera_id in city.cameras.items():
        response = demo_client.get(f"/api/v1/cameras/{camera_id}", headers=headers)
        if slug in EXPECTED[username]:
            assert response.status_code == 200, (username, slug)
            body = response.json()
            assert "credentials" not in body and "main_credentials" not in body
        else:
            assert response.status_code == 404, (username, slug)
            assert response.json() == {"error": {"code": "not_found", "message": "camera not found",
                                                 "key": "api_error.camera_not_found", "params": {}}}
        audit = demo_client.get("/api/v1/audit", params={"camera": camera_id}, headers=headers)
        if username in ("admin", "auditor") or slug in EXPECTED[username]:
            assert audit.status_code == 200
        else:
            assert audit.status_code == 404, (username, slug)


def test_unknown_camera_and_unknown_id_look_the_same(demo_client: TestClient) -> None:
    headers = login(demo_client, "resident1")
    missing = demo_client.get("/api/v1/cameras/999999", headers=headers)
    hidden = demo_client.get("/api/v1/cameras/5", headers=headers)
    assert missing.status_code == hidden.status_code == 404
    assert missing.json() == hidden.json()


def test_whole_audit_log_only_for_auditors(demo_client: TestClient) -> None:
    for username, status in (("auditor", 200), ("admin", 200), ("center", 404), ("resident1", 404)):
        response = demo_client.get("/api/v1/audit", headers=login(demo_client, username))
        assert response.status_code == status, username


def test_unauthenticated_requests_are_refused(demo_client: TestClient) -> None:
    for path in ("/api/v1/cameras", "/api/v1/cameras/1", "/api/v1/audit", "/api/v1/places", "/api/v1/users"):
        response = demo_client.get(path)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
    bad = demo_client.get("/api/v1/cameras", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401


def test_expired_and_future_and_revoked_grants_give_nothing(inst: Installation, client: TestClient) -> None:
    from kuzet.services import accounts
    from kuzet.services.cameras import create_camera
    from kuzet.services.places import create_place

    now = utcnow()
    with inst.db.session() as s:
        district = create_place(s, SYSTEM, "district", "D")
        cam = create_camera(s, SYSTEM, inst.keys, name="C", place_id=district.id, main_url="rtsp://10.0.0.1/x")
        user = accounts.create_user(s, SYSTEM, "u", "secret-password", "resident")
        expired = create_grant(s, SYSTEM, user_id=user.id, camera_id=cam.id, rights=["view_live"],
                               legal_basis="old subscription", valid_from=now - timedelta(days=10),
                               valid_to=now - timedelta(days=1))
        future = create_grant(s, SYSTEM, user_id=user.id, place_id=district.id, rights=["view_live"],
                              legal_basis="next year", valid_from=now + timedelta(days=1))
        ids = (cam.id, expired.id, future.id, user.id)
    headers = login(client, "u", "secret-password")
    assert client.get(f"/api/v1/cameras/{ids[0]}", headers=headers).status_code == 404
    assert client.get("/api/v1/cameras", headers=headers).json()["total"] == 0
    with inst.db.session() as s:
        grant = create_grant(s, SYSTEM, user_id=ids[3], camera_id=ids[0], rights=["view_live"],
                             legal_basis="Подписка 2024-118")
        grant_id = grant.id
    assert client.get(f"/api/v1/cameras/{ids[0]}", headers=headers).status_code == 200
    with inst.db.session() as s:
        s.get(Grant, grant_id).revoked_at = utcnow()
    assert client.get(f"/api/v1/cameras/{ids[0]}", headers=headers).status_code == 404


def test_revoked_token_is_refused(demo_client: TestClient) -> None:
    headers = login(demo_client, "duty1")
    assert demo_client.get("/api/v1/cameras", headers=headers).status_code == 200
    assert demo_client.post("/api/v1/auth/logout", headers=headers).status_code == 200
    assert demo_client.get("/api/v1/cameras", headers=headers).status_code == 401


def test_camera_api_never_returns_credentials(inst: Installation, client: TestClient) -> None:
    from kuzet.services import accounts
    from kuzet.services.places import create_place

    with inst.db.session() as s:
        accounts.create_user(s, SYSTEM, "root", "secret-password", "platform_admin")
        region = create_place(s, SYSTEM, "region", "R")
    headers = login(client, "root", "secret-password")
    created = client.post("/api/v1/cameras", headers=headers, json={
        "name": "Gate", "place_id": region.id, "main_url": "rtsp://admin:S3cr3t!@10.1.2.3:554/Streaming/101",
        "sub_url": "rtsp://admin:S3cr3t!@10.1.2.3:554/Streaming/102"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["main_url"] == "rtsp://10.1.2.3:554/Streaming/101"
    assert body["has_credentials"] is True
    everything = str(client.get(f"/api/v1/cameras/{body['id']}", headers=headers).json())
    everything += str(client.get("/api/v1/audit", params={"limit": 1000}, headers=headers).json())
    assert "S3cr3t" not in everything
    with inst.db.session() as s:
        cam = s.get(Camera, body["id"])
        assert b"S3cr3t" not in (cam.main_credentials or b"")
        from kuzet.services.cameras import stream_url

        assert stream_url(cam, inst.keys) == "rtsp://admin:S3cr3t%21@10.1.2.3:554/Streaming/101"


def test_police_unit_sees_a_site_routed_to_it(inst: Installation, client: TestClient) -> None:
    """Routing a mall's cameras to the duty unit is a grant to the unit's organisation; every member sees them."""
    from kuzet.services import accounts
    from kuzet.services.cameras import create_camera
    from kuzet.services.places import create_organisation, create_place

    with inst.db.session() as s:
        district = create_place(s, SYSTEM, "district", "D")
        mall = create_place(s, SYSTEM, "public_place", "Mall", parent_id=district.id)
        cams = [create_camera(s, SYSTEM, inst.keys, name=f"Mall {i}", place_id=mall.id,
                              main_url=f"rtsp://10.0.0.{i}/x").id for i in range(3)]
        unit = create_organisation(s, SYSTEM, "Duty unit", "police_duty_unit")
        accounts.create_user(s, SYSTEM, "officer", "secret-password", "police_operator", organisation=unit.id)
        mall_id, unit_id = mall.id, unit.id
    headers = login(client, "officer", "secret-password")
    assert client.get("/api/v1/cameras", headers=headers).json()["total"] == 0
    with inst.db.session() as s:
        create_grant(s, SYSTEM, organisation_id=unit_id, place_id=mall_id, rights=["view_live", "view_archive"],
                     legal_basis="Agreement No. 12 with the mall")
    listed = client.get("/api/v1/cameras", headers=headers).json()
    assert sorted(c["id"] for c in listed["items"]) == sorted(cams)
    assert listed["items"][0]["rights"] == ["view_archive", "view_live"]


def test_grant_api_checks_manage_right(demo_inst: Installation, demo_client: TestClient) -> None:
    city = demo_inst.city
    # resident1 cannot hand out rights on their own camera (a rule of the role: nothing about the camera is said)
    response = demo_client.post("/api/v1/grants", headers=login(demo_client, "resident1"), json={
        "user_id": 1, "camera_id": city.cameras["b1e1"], "rights": ["view_live"], "legal_basis": "x"})
    assert response.status_code == 403
    # the school's admin routes a school camera to the control centre, with a legal basis
    with demo_inst.db.session() as s:
        center = s.query(User).filter_by(username="center").one()
    response = demo_client.post("/api/v1/grants", headers=login(demo_client, "school7"), json={
        "organisation_id": center.organisation_id, "camera_id": city.cameras["d1school1"],
        "rights": ["view_live"], "legal_basis": "Agreement No. 12 with school 7"})
    assert response.status_code == 201, response.text
    grant = response.json()
    assert grant["legal_basis"] == "Agreement No. 12 with school 7"
    # ... but not on another school's camera, and without a legal basis nothing is created
    assert demo_client.post("/api/v1/grants", headers=login(demo_client, "school7"), json={
        "organisation_id": center.organisation_id, "camera_id": city.cameras["d2school1"],
        "rights": ["view_live"], "legal_basis": "x"}).status_code == 404
    empty = demo_client.post("/api/v1/grants", headers=login(demo_client, "school7"), json={
        "organisation_id": center.organisation_id, "camera_id": city.cameras["d1school1"],
        "rights": ["view_live"], "legal_basis": "  "})
    assert empty.status_code == 422
    assert "legal basis" in empty.json()["error"]["message"]
    revoked = demo_client.delete(f"/api/v1/grants/{grant['id']}", headers=login(demo_client, "school7"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
