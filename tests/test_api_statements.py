"""Bounded work per request: the number of SQL statements a list or detail request runs must not grow with the
number of rows on the page or of cameras in the city (issue 16, "access as sets").

Each endpoint is asked once on the demo city and once after the city grew by ``GROWTH`` cameras, each with an event,
an alarm, an incident and audit records, all visible to the callers; the statement counts must be equal. The callers'
cached grants are dropped before each measured request, so the count includes loading them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from kuzet.api.routes.common import encode_cursor
from kuzet.installation import Installation
from kuzet.services import audit
from kuzet.services.access.cache import cache_of
from kuzet.services.audit import SYSTEM
from kuzet.services.grants import create_grant
from kuzet.store.db import utcnow
from kuzet.store.models import Camera, Organisation, Place, User
from kuzet.store.models.operations import Alarm, AlarmRoute, Event, Incident
from tests.conftest import login

GROWTH = 25
CALLERS = ("admin", "center", "duty1", "resident1", "auditor")


@contextmanager
def counting(inst: Installation) -> Iterator[list[str]]:
    statements: list[str] = []

    def _count(_conn, _cursor, statement, _params, _context, _many) -> None:  # noqa: ANN001
        if not statement.startswith("PRAGMA query_only"):  # a pooled SQLite connection switching read/write mode
            statements.append(statement)

    event.listen(inst.db.engine, "before_cursor_execute", _count)
    try:
        yield statements
    finally:
        event.remove(inst.db.engine, "before_cursor_execute", _count)


def _grow(inst: Installation, n: int, start: int = 0) -> dict[str, int]:
    """``n`` more cameras beside the first demo camera, each with an event, an alarm routed to every police unit,
    an incident of district 1's unit, audit records, and a camera grant of its own to the control centre."""
    city = inst.city
    now = utcnow()
    with inst.db.session() as session:
        first = session.get(Camera, city.cameras["b1e1"])
        police = list(session.scalars(select(Organisation.id).where(
            Organisation.kind.in_(["police_duty_unit", "control_centre"]))))
        centre = session.scalar(select(Organisation.id).where(Organisation.kind == "control_centre"))
        duty1 = session.scalar(select(User).where(User.username == "duty1"))
        ids = {}
        for i in range(start, start + n):
            camera = Camera(name=f"grown {i}", kind="entrance", place_id=first.place_id,
                            owner_org_id=first.owner_org_id, main_url=f"rtsp://127.0.0.1:1/grown{i}",
                            lat=first.lat, lon=first.lon)
            session.add(camera)
            session.flush()
            ev = Event(camera_id=camera.id, kind="motion", start_at=now - timedelta(minutes=i + 1),
                       end_at=now - timedelta(minutes=i))
            session.add(ev)
            session.flush()
            alarm = Alarm(event_id=ev.id, last_event_id=ev.id, camera_id=camera.id, title=f"motion {i}",
                          priority="high", state="new", raised_at=now - timedelta(minutes=i), occurrences=1)
            session.add(alarm)
            session.flush()
            session.add_all([AlarmRoute(alarm_id=alarm.id, organisation_id=o) for o in police])
            session.add(Incident(offence_type="theft", title=f"incident {i}", place_id=first.place_id,
                                 organisation_id=duty1.organisation_id, created_by=duty1.id,
                                 created_at=now - timedelta(minutes=i)))
            for action in ("camera.live_viewed", "camera.archive_viewed"):
                audit.append(session, SYSTEM, action, object_type="camera", object_id=camera.id,
                             camera_id=camera.id)
            create_grant(session, SYSTEM, organisation_id=centre, camera_id=camera.id, rights=["view_live"],
                         legal_basis="growth of the statement-count test")
            ids[f"grown{i}"] = camera.id
        return ids


def _endpoints(inst: Installation, client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    """The list and detail URLs to measure for a caller: details of the newest object it sees."""
    city = inst.city
    camera_id = city.cameras["b1e1"]
    urls = {
        "cameras": "/api/v1/cameras?limit=500",
        "camera": f"/api/v1/cameras/{camera_id}",
        "places": "/api/v1/places?limit=500",
        "place": f"/api/v1/places/{city.entrances[0]}",
        "events": "/api/v1/events?limit=500",
        "alarms": "/api/v1/alarms?limit=500",
        "incidents": "/api/v1/incidents?limit=500",
        "camera audit": f"/api/v1/audit?camera={camera_id}&limit=500",
        "audit": "/api/v1/audit?limit=500",
        "map": "/api/v1/map",
        "timeline": f"/api/v1/cameras/{camera_id}/timeline",
    }
    for name, list_url in (("event", "/api/v1/events?limit=1"), ("alarm", "/api/v1/alarms?limit=1"),
                           ("incident", "/api/v1/incidents?limit=1")):
        response = client.get(list_url, headers=headers)
        items = response.json().get("items", []) if response.status_code == 200 else []
        if items:
            urls[name] = f"/api/v1/{name}s/{items[0]['id']}"
    return urls


def _measure(inst: Installation, client: TestClient, headers: dict[str, str],
             urls: dict[str, str]) -> dict[str, tuple[int, int]]:
    """(status, statements) per endpoint; the caller's cached grants dropped before each request."""
    out = {}
    cache = cache_of(inst.db.engine)
    for name, url in urls.items():
        client.get(url, headers=headers)  # warm: a token's last-use time is written at most once a minute
        cache.invalidate()
        with counting(inst) as statements:
            response = client.get(url, headers=headers)
        out[name] = (response.status_code, len(statements))
    return out


@pytest.fixture(scope="module")
def grown_counts(demo_inst: Installation, demo_client: TestClient) -> dict[str, tuple[dict, dict]]:
    _grow(demo_inst, 2, start=1000)  # every list has rows before the growth: the same statements run
    before = {}
    urls = {}
    tokens = {}
    for username in CALLERS:
        tokens[username] = login(demo_client, username)
        urls[username] = _endpoints(demo_inst, demo_client, tokens[username])
        before[username] = _measure(demo_inst, demo_client, tokens[username], urls[username])
    _grow(demo_inst, GROWTH)
    after = {u: _measure(demo_inst, demo_client, tokens[u], urls[u]) for u in CALLERS}
    return {u: (before[u], after[u]) for u in CALLERS}


@pytest.mark.parametrize("username", CALLERS)
def test_statements_do_not_grow_with_the_city(grown_counts: dict, username: str) -> None:
    before, after = grown_counts[username]
    grew = {name: (before[name], after[name]) for name in before if before[name] != after[name]}
    assert not grew, f"{username}: (status, statements) before → after {GROWTH} more cameras: {grew}"
    # the measured requests did real work: the lists the caller may read answered
    assert after["cameras"][0] == 200
    assert after["camera"][0] == (404 if username == "auditor" else 200)


def test_growth_is_visible(demo_inst: Installation, demo_client: TestClient, grown_counts: dict) -> None:
    """The grown rows are on the measured pages, so equal counts mean the cost does not follow the rows."""
    headers = login(demo_client, "center")
    cameras = demo_client.get("/api/v1/cameras?limit=500", headers=headers).json()
    assert sum(1 for c in cameras["items"] if c["name"].startswith("grown ")) == GROWTH + 2
    alarms = demo_client.get("/api/v1/alarms?limit=500", headers=headers).json()
    assert sum(1 for a in alarms["items"] if a["title"].startswith("motion ")) >= GROWTH
    with demo_inst.db.session() as session:
        assert session.scalar(select(Place.id).where(Place.id == demo_inst.city.entrances[0]))


@pytest.mark.parametrize("path", ["/api/v1/audit", "/api/v1/events", "/api/v1/alarms", "/api/v1/incidents"])
def test_keyset_pages_walk_the_same_rows_as_offset_pages(demo_inst: Installation, demo_client: TestClient,
                                                         grown_counts: dict, path: str) -> None:
    """Cursor pages of the long lists give exactly the rows of the offset pages, in the same order, without a total;
    a cursor that the list did not give is refused naming the problem."""
    headers = login(demo_client, "admin")
    everything = demo_client.get(path, params={"limit": 1000}, headers=headers).json()
    expected = [item.get("id", item.get("seq")) for item in everything["items"]]
    assert len(expected) > 7
    walked, cursor = [], ""
    while cursor is not None:
        page = demo_client.get(path, params={"limit": 7, "cursor": cursor}, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["total"] is None
        walked += [item.get("id", item.get("seq")) for item in body["items"]]
        cursor = body["next_cursor"]
    assert walked == expected
    keys = {"/api/v1/audit": 1, "/api/v1/events": 2, "/api/v1/alarms": 3, "/api/v1/incidents": 2}[path]
    for cursor in ("not-a-cursor", encode_cursor(("x",) * keys), encode_cursor((1.5,) * keys),
                   encode_cursor((1,) * (keys + 1))):
        bad = demo_client.get(path, params={"cursor": cursor}, headers=headers)
        assert bad.status_code == 422 and "cursor" in bad.json()["error"]["message"], (cursor, bad.text)
