"""The alarm queue's WebSocket carries only what ``GET /alarms`` would show, and stops within seconds when access
ends. On SQLite and PostgreSQL, with the in-process bus and NATS."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.audit import SYSTEM
from kuzet.services.cameras import create_camera
from kuzet.services.grants import create_grant, revoke_grant
from kuzet.services.operations.messages import alarm_subject
from kuzet.services.places import create_organisation, create_place
from kuzet.store.bus import connect_bus
from kuzet.store.models import Grant, User
from tests.conftest import NATS_URL, _unavailable

PASSWORD = "a-long-enough-password"


@pytest.fixture
def unit(inst: Installation) -> dict:
    """A duty unit watching one of two cameras of its district, and one of its operators."""
    with inst.db.session() as session:
        district = create_place(session, SYSTEM, "district", "District")
        org = create_organisation(session, SYSTEM, f"Unit {uuid.uuid4().hex[:6]}", "police_duty_unit",
                                  place_id=district.id)
        seen, unseen = (create_camera(session, SYSTEM, inst.keys, name=name, place_id=district.id,
                                      main_url="rtsp://127.0.0.1:9/x") for name in ("seen", "unseen"))
        grant = create_grant(session, SYSTEM, organisation_id=org.id, camera_id=seen.id, rights=["view_live"],
                             legal_basis="Соглашение 1")
        user = accounts.create_user(session, SYSTEM, "op", PASSWORD, "police_operator", organisation=org.id)
        return {"org": org.id, "seen": seen.id, "unseen": unseen.id, "grant": grant.id, "user": user.id}


def _publish_alarm(client: TestClient, bus, alarm_id: int, camera: int, org: int, marker: str) -> None:  # noqa: ANN001
    client.portal.call(bus.publish, alarm_subject(alarm_id), {
        "type": "raised", "alarm": {"id": alarm_id, "camera": {"id": camera}, "marker": marker},
        "organisations": [org]})


@pytest.mark.parametrize("bus_url", ["memory://", NATS_URL])
@pytest.mark.parametrize("ending", ["logout", "deactivated"])
def test_alarm_pushes_follow_get_alarms_and_stop_when_access_ends(inst: Installation, unit: dict, bus_url: str,
                                                                  ending: str) -> None:
    from kuzet.api.app import create_app

    with inst.db.session() as session:  # a second camera the unit watches: the sentinel of what still arrives
        other = create_place(session, SYSTEM, "district", "Other")
        sentinel = create_camera(session, SYSTEM, inst.keys, name="sentinel", place_id=other.id,
                                 main_url="rtsp://127.0.0.1:9/y").id
        create_grant(session, SYSTEM, organisation_id=unit["org"], camera_id=sentinel, rights=["view_live"],
                     legal_basis="Соглашение 2")
    with TestClient(create_app(inst)) as client:
        try:
            bus = client.portal.call(connect_bus, bus_url)
        except Exception as exc:  # noqa: BLE001
            _unavailable("NATS", exc)
        inst.running.bus = bus
        try:
            token = client.post("/api/v1/auth/token", data={"username": "op", "password": PASSWORD}).json()
            marker = uuid.uuid4().hex
            with client.websocket_connect(f"/api/v1/alarms/live?token={token['access_token']}") as ws:
                assert json.loads(ws.receive_text())["type"] == "hello"
                _publish_alarm(client, bus, 1, unit["unseen"], unit["org"], marker)
                _publish_alarm(client, bus, 2, unit["seen"], unit["org"], marker)
                first = json.loads(ws.receive_text())
                # Routed to the unit, but on a camera the operator may not watch live: never pushed.
                assert first["alarm"]["id"] == 2 and first["alarm"]["marker"] == marker
                # The unit's grant on the camera is revoked: within seconds its alarms stop arriving, the
                # sentinel camera's still do.
                with inst.db.session() as session:
                    revoke_grant(session, SYSTEM, session.get(Grant, unit["grant"]))
                for round_ in range(60):
                    base = 100 + 2 * round_
                    _publish_alarm(client, bus, base, unit["seen"], unit["org"], marker)
                    _publish_alarm(client, bus, base + 1, sentinel, unit["org"], marker)
                    got = json.loads(ws.receive_text())["alarm"]["id"]
                    if got == base + 1:
                        break
                    assert got == base and json.loads(ws.receive_text())["alarm"]["id"] == base + 1
                    time.sleep(0.5)
                else:
                    raise AssertionError("alarms of a revoked camera kept arriving")
                # The token signs out (or the account is deactivated): the stream ends, saying why.
                if ending == "logout":
                    assert client.post("/api/v1/auth/logout", headers={
                        "Authorization": f"Bearer {token['access_token']}"}).status_code == 200
                else:
                    with inst.db.session() as session:
                        session.get(User, unit["user"]).is_active = False
                closing = json.loads(ws.receive_text())
                assert closing == {"type": "error", "code": "access_ended", "message": closing["message"]}
                assert ws.receive()["code"] == 4403
        finally:
            client.portal.call(bus.close)
