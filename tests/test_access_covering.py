"""A caller whose reach covers every camera (platform admins, the control centre's grant on the whole city) gets
the event and alarm lists without a per-camera condition (issue 16: the page then comes straight off the order
index, whatever the size of the city) — and only while it really covers every camera: a camera placed outside the
centre's subtree (on the region above the city) or a place outside it brings the condition back, so access never
widens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from kuzet.domain.access import Right
from kuzet.installation import Installation
from kuzet.services import access
from kuzet.services.access.cache import cache_of
from kuzet.services.audit import SYSTEM
from kuzet.services.places import create_place
from kuzet.store.db import utcnow
from kuzet.store.models import Camera, Organisation, User
from kuzet.store.models.operations import Alarm, AlarmRoute, Event
from tests.conftest import login


@pytest.fixture
def city_client(inst: Installation) -> Iterator[TestClient]:
    from kuzet.api.app import create_app
    from kuzet.services.demo import seed_demo_city

    with inst.db.session() as session:
        inst.city = seed_demo_city(session, inst.keys)  # type: ignore[attr-defined]  # as DemoInstallation
    with TestClient(create_app(inst)) as test_client:
        yield test_client


def _sees_all(inst: Installation, username: str, right: Right | None = None) -> bool:
    with inst.db.session(readonly=True) as session:
        user = session.scalar(select(User).where(User.username == username))
        return access.sees_every_camera(session, user, right)


def _watched_camera(inst: Installation, place_id: int, tag: str) -> tuple[int, int, int]:
    """A camera on ``place_id`` with an event and an alarm routed to every police organisation:
    (camera, event, alarm)."""
    city = inst.city
    now = utcnow()
    with inst.db.session() as session:
        first = session.get(Camera, city.cameras["b1e1"])
        camera = Camera(name=f"outside {tag}", kind="street", place_id=place_id, owner_org_id=first.owner_org_id,
                        main_url=f"rtsp://127.0.0.1:1/{tag}", lat=first.lat, lon=first.lon)
        session.add(camera)
        session.flush()
        ev = Event(camera_id=camera.id, kind="motion", start_at=now + timedelta(minutes=1),
                   end_at=now + timedelta(minutes=2))
        session.add(ev)
        session.flush()
        alarm = Alarm(event_id=ev.id, last_event_id=ev.id, camera_id=camera.id, title=f"outside {tag}",
                      priority="critical", state="new", raised_at=now + timedelta(minutes=1), occurrences=1)
        session.add(alarm)
        session.flush()
        for org in session.scalars(select(Organisation.id).where(
                Organisation.kind.in_(["police_duty_unit", "control_centre"]))):
            session.add(AlarmRoute(alarm_id=alarm.id, organisation_id=org))
        return camera.id, ev.id, alarm.id


def _page_ids(client: TestClient, headers: dict[str, str], path: str) -> set[int]:
    response = client.get(path, params={"limit": 500, "cursor": ""}, headers=headers)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


def test_who_sees_every_camera(inst: Installation, city_client: TestClient) -> None:
    assert _sees_all(inst, "admin")
    assert _sees_all(inst, "center") and _sees_all(inst, "center", Right.VIEW_LIVE)
    assert _sees_all(inst, "center", Right.VIEW_ARCHIVE)
    assert not _sees_all(inst, "center", Right.MANAGE)  # the centre's grant carries no manage
    for username in ("duty1", "resident1", "inspector1"):
        assert not _sees_all(inst, username), username


def test_centre_lists_carry_no_camera_condition(inst: Installation, city_client: TestClient) -> None:
    """The centre's event and alarm pages read no camera table; a district unit's still do."""
    statements: list[str] = []

    def _record(_conn, _cursor, statement, _params, _context, _many) -> None:  # noqa: ANN001
        statements.append(statement)

    for username, expect_cameras in (("center", False), ("duty1", True)):
        headers = login(city_client, username)
        for path, table in (("/api/v1/events", "events"), ("/api/v1/alarms", "alarms")):
            statements.clear()
            event.listen(inst.db.engine, "before_cursor_execute", _record)
            try:
                assert city_client.get(path, params={"limit": 50, "cursor": ""}, headers=headers).status_code == 200
            finally:
                event.remove(inst.db.engine, "before_cursor_execute", _record)
            page = [s for s in statements if f"FROM {table}" in s and "ORDER BY" in s and "LIMIT" in s]
            assert len(page) == 1, (username, path, statements)
            assert ("cameras" in page[0]) == expect_cameras, (username, path, page[0])


def test_a_camera_outside_the_centre_brings_the_condition_back(inst: Installation,
                                                                  city_client: TestClient) -> None:
    city = inst.city
    headers = login(city_client, "center")
    inside_camera, inside_event, inside_alarm = _watched_camera(inst, city.districts[0], "inside")
    assert _sees_all(inst, "center")
    assert inside_event in _page_ids(city_client, headers, "/api/v1/events")
    assert inside_alarm in _page_ids(city_client, headers, "/api/v1/alarms")

    # a camera on the region above the city: outside the centre's grant
    camera, ev, alarm = _watched_camera(inst, city.region_id, "region")
    cache_of(inst.db.engine).invalidate()
    assert not _sees_all(inst, "center")
    assert ev not in _page_ids(city_client, headers, "/api/v1/events")
    assert alarm not in _page_ids(city_client, headers, "/api/v1/alarms")
    assert inside_event in _page_ids(city_client, headers, "/api/v1/events")
    assert city_client.get(f"/api/v1/events/{ev}", headers=headers).status_code == 404
    assert city_client.get(f"/api/v1/cameras/{camera}", headers=headers).status_code == 404
    assert camera not in {c["id"] for c in city_client.get("/api/v1/cameras", params={"limit": 500},
                                                           headers=headers).json()["items"]}

    # moved into the city, it is the centre's again
    with inst.db.session() as session:
        session.get(Camera, camera).place_id = city.districts[1]
    cache_of(inst.db.engine).invalidate()
    assert _sees_all(inst, "center")
    assert ev in _page_ids(city_client, headers, "/api/v1/events")

    # a second region beside the first (no camera yet): the centre no longer covers every place
    with inst.db.session() as session:
        other = create_place(session, SYSTEM, "region", "Another region", lat=44.0, lon=65.0).id
    assert not _sees_all(inst, "center")
    camera2, ev2, alarm2 = _watched_camera(inst, other, "other")
    assert ev2 not in _page_ids(city_client, headers, "/api/v1/events")
    assert alarm2 not in _page_ids(city_client, headers, "/api/v1/alarms")
    assert ev in _page_ids(city_client, headers, "/api/v1/events")
