"""Bounded work per request for the lists added after issue 16's first pass — the telecom's contracts, subscribers
and invoices, the field technician's offline cameras, body-worn camera devices and recordings: the number of SQL
statements must not grow with the rows (same method as tests/test_api_statements.py)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kuzet.domain.cloud import FlatState
from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.access.cache import cache_of
from kuzet.services.audit import SYSTEM
from kuzet.services.bodycams import demo as bodycams_demo
from kuzet.services.bodycams.devices import check_out, register_device
from kuzet.services.bodycams.recordings import hold
from kuzet.services.cameras import create_camera
from kuzet.services.cloud import subscriptions
from kuzet.services.cloud.activation import issue_codes
from kuzet.services.places import create_place
from kuzet.store.db import utcnow
from kuzet.store.models import User
from kuzet.store.models.bodycams import BodycamCategory, BodycamRecording
from kuzet.store.models.cloud import Invoice, Plan
from tests.conftest import login
from tests.test_api_statements import counting

GROWTH = 12
PERIOD = f"{date.today():%Y-%m}"
CALLERS = ("admin", "operator", "duty1")
URLS = {
    "contracts": "/api/v1/cloud/contracts",
    "flats": "/api/v1/cloud/flats?limit=500",
    "invoices": f"/api/v1/cloud/invoices?period={PERIOD}&limit=1000",
    "offline": "/api/v1/field/offline",
    "devices": "/api/v1/bodycams/devices",
    "recordings": "/api/v1/bodycams/recordings?limit=500",
}


def _grow(inst: Installation, n: int, start: int) -> None:
    """``n`` more buildings under contract (an entrance with a camera that never connected, a yard, a subscriber
    with a resident, an activation code and an invoice) and ``n`` more body cameras of duty unit 1, each checked out
    with a held, categorised recording."""
    city = inst.city
    now = utcnow()
    with inst.db.session() as session:
        admin = session.scalar(select(User).where(User.username == "admin"))
        responder = session.scalar(select(User).where(User.username == "responder1"))
        plan = session.scalar(select(Plan).order_by(Plan.id).limit(1))
        category = session.scalar(select(BodycamCategory.id).order_by(BodycamCategory.id).limit(1))
        telecom, unit = city.organisations["telecom"], city.organisations["duty1"]
        for i in range(start, start + n):
            lat, lon = 44.80 + 0.001 * i, 65.40
            building = create_place(session, SYSTEM, "building", f"Grown house {i}", parent_id=city.districts[0],
                                    lat=lat, lon=lon)
            entrance = create_place(session, SYSTEM, "entrance", f"Grown entrance {i}", parent_id=building.id)
            create_place(session, SYSTEM, "yard", f"Grown yard {i}", parent_id=building.id)
            create_camera(session, SYSTEM, inst.keys, name=f"Grown entrance camera {i}", kind="entrance",
                          place_id=entrance.id, owner_org_id=telecom, main_url=f"rtsp://127.0.0.1:9/g{i}",
                          lat=lat, lon=lon)
            contract = subscriptions.create_contract(session, SYSTEM, None, number=f"G-{i}", building_id=building.id,
                                                     plan_id=plan.id, entrance_ids=[entrance.id],
                                                     starts_on=date.today() - timedelta(days=40),
                                                     organisation_id=telecom)
            flat = subscriptions.add_flat(session, SYSTEM, contract, entrance_id=entrance.id, number=str(i),
                                          state=FlatState.ACTIVE)
            user = accounts.create_user(session, SYSTEM, f"grown{i}", "a-long-enough-password", "resident")
            subscriptions.add_resident(session, SYSTEM, flat, user)
            issue_codes(session, SYSTEM, inst.keys, [flat])
            session.add(Invoice(flat_id=flat.id, period=PERIOD, plan_id=plan.id, plan_name=plan.name,
                                price_tiyn=plan.price_tiyn, days_active=30, days_in_period=30,
                                amount_tiyn=plan.price_tiyn, due_on=date.today()))
            device = register_device(session, SYSTEM, admin, serial=f"GROWN-{i}", kind="body", organisation_id=unit)
            shift = check_out(session, SYSTEM, admin, device, responder.id)
            recording = BodycamRecording(
                device_id=device.id, officer_id=responder.id, shift_id=shift.id, organisation_id=unit,
                filename=f"grown{i}.mp4", path=f"grown/{i}.mp4", bytes=1, sha256=f"{i:064x}",
                started_at=now - timedelta(minutes=i + 5), ended_at=now - timedelta(minutes=i), via="upload",
                category_id=category, lat=lat, lon=lon)
            session.add(recording)
            session.flush()
            hold(session, SYSTEM, admin, recording, "kept for the statement-count test")


def _measure(inst: Installation, client: TestClient, headers: dict[str, str]) -> dict[str, tuple[int, int]]:
    out = {}
    cache = cache_of(inst.db.engine)
    for name, url in URLS.items():
        client.get(url, headers=headers)  # warm: a token's last-use time is written at most once a minute
        cache.invalidate()
        with counting(inst) as statements:
            response = client.get(url, headers=headers)
        out[name] = (response.status_code, len(statements), len(response.content))
    return out


@pytest.fixture(scope="module")
def grown(demo_inst: Installation, demo_client: TestClient) -> dict[str, tuple[dict, dict]]:
    bodycams_demo.seed(demo_inst, demo_inst.city)  # duties and devices (the full demo's)
    _grow(demo_inst, 2, start=1000)  # every list has rows before the growth
    tokens = {u: login(demo_client, u) for u in CALLERS}
    before = {u: _measure(demo_inst, demo_client, tokens[u]) for u in CALLERS}
    _grow(demo_inst, GROWTH, start=0)
    after = {u: _measure(demo_inst, demo_client, tokens[u]) for u in CALLERS}
    return {u: (before[u], after[u]) for u in CALLERS}


@pytest.mark.parametrize("username", CALLERS)
def test_statements_do_not_grow_with_the_rows(grown: dict, username: str) -> None:
    before, after = grown[username]
    grew = {name: (before[name][:2], after[name][:2]) for name in URLS if before[name][:2] != after[name][:2]}
    assert not grew, f"{username}: (status, statements) before → after {GROWTH} more rows: {grew}"


def test_the_grown_rows_are_on_the_measured_pages(grown: dict) -> None:
    """Equal counts mean something only if the answers grew: every list the caller may read got longer."""
    readable = {"admin": ("contracts", "flats", "invoices", "offline", "devices", "recordings"),
                "operator": ("contracts", "flats", "invoices", "offline"),
                "duty1": ("devices", "recordings")}
    for username, names in readable.items():
        before, after = grown[username]
        for name in names:
            assert after[name][0] == 200, (username, name, after[name])
            assert after[name][2] > before[name][2], (username, name)
