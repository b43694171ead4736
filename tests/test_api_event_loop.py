"""Nothing blocks the event loop (issue 16, point 4): no database call runs on the server's event loop thread.

The guard (``store.db.forbid_on_event_loop``) is on for every installation of the suite (tests/conftest.py); these
tests show that it catches a route that forgets, and walk the routes that used to run their sessions on the loop:
live WebSocket connect, HLS playlist and segments, alarm and incident actions, imports.
"""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from kuzet.api.app import create_app
from kuzet.installation import Installation
from kuzet.store.db import EventLoopBlocked
from kuzet.store.models import User
from tests.conftest import LOOP_GUARD, login


def test_a_database_call_on_the_loop_fails(inst: Installation) -> None:
    assert LOOP_GUARD, "the suite runs with the event-loop guard on"
    app = create_app(inst)

    @app.get("/blocking")
    async def blocking() -> dict:  # the mistake the guard is for
        with inst.db.session() as session:
            return {"users": len(session.scalars(select(User)).all())}

    @app.get("/threaded")
    def threaded() -> dict:
        with inst.db.session() as session:
            return {"users": len(session.scalars(select(User)).all())}

    with TestClient(app) as client:
        assert client.get("/threaded").status_code == 200
        with pytest.raises(EventLoopBlocked):
            client.get("/blocking")


def test_async_routes_keep_the_database_off_the_loop(demo_inst: Installation, demo_client: TestClient) -> None:
    """Each of these would raise EventLoopBlocked (a 500) if it still ran its session on the loop."""
    city = demo_inst.city
    camera = city.cameras["b1e1"]
    admin = login(demo_client, "admin")
    # HLS: the caller and the camera are checked (and the view audited) in a thread; no recorder here: 503 / 404
    assert demo_client.get(f"/api/v1/cameras/{camera}/live.m3u8", headers=admin).status_code == 503
    assert demo_client.get(f"/api/v1/cameras/{camera}/live/init.mp4", headers=admin).status_code in (404, 503)
    assert demo_client.get(f"/api/v1/cameras/{camera}/live/0.m4s", headers=admin).status_code in (404, 503)
    assert demo_client.get(f"/api/v1/cameras/{camera}/snapshot.jpg", headers=admin).status_code == 503
    # the live WebSocket: authorised in a thread, then told the recorder is away
    token = admin["Authorization"].split()[1]
    with demo_client.websocket_connect(f"/api/v1/cameras/{camera}/live?token={token}") as ws:
        assert ws.receive_json()["code"] == "unavailable"
    with pytest.raises(WebSocketDisconnect):
        with demo_client.websocket_connect(f"/api/v1/cameras/{camera}/live?token=wrong") as ws:
            ws.receive_json()
    # incidents and their actions
    center = login(demo_client, "center")
    created = demo_client.post("/api/v1/incidents", json={"offence_type": "theft", "title": "loop"}, headers=center)
    assert created.status_code == 201, created.text
    incident = created.json()["id"]
    note = demo_client.post(f"/api/v1/incidents/{incident}/notes", json={"text": "seen"}, headers=center)
    assert note.status_code == 201, note.text
    patched = demo_client.patch(f"/api/v1/incidents/{incident}", json={"title": "loop 2"}, headers=center)
    assert patched.status_code == 200, patched.text
    closed = demo_client.post(f"/api/v1/incidents/{incident}/close", json={"resolution": "done"}, headers=center)
    assert closed.status_code == 200, closed.text
    # an alarm action on a missing alarm still looks it up (in a thread)
    assert demo_client.post("/api/v1/alarms/999999/acknowledge", headers=center).status_code == 404
    # an import
    csv = io.BytesIO(b"name,place_id,main_url\n")
    imported = demo_client.post("/api/v1/cameras/import", files={"file": ("c.csv", csv, "text/csv")}, headers=admin)
    assert imported.status_code in (201, 422), imported.text
