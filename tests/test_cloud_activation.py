"""Activation without SMS: a resident signs up with the flat's code (a password of the policy's length), the code
fills one resident slot per use, expires, can be revoked; guessing is throttled per code and per address and every
failure is audited. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from kuzet.installation import Installation
from kuzet.services.audit import SYSTEM
from kuzet.services.cloud import activation, subscriptions
from kuzet.store.db import utcnow
from kuzet.store.models import AuditRecord, User
from kuzet.store.models.cloud import ActivationCode, Contract
from tests.conftest import login

PASSWORD = "a-long-enough-password"


def _flat(inst: Installation, slots: int = 2) -> tuple[int, str]:
    from kuzet.services.demo import seed_demo_city

    with inst.db.session() as session:
        city = seed_demo_city(session, inst.keys)
        contract = session.scalar(select(Contract).where(Contract.building_id == city.buildings[1]))
        flat = subscriptions.add_flat(session, SYSTEM, contract, entrance_id=contract.entrance_ids[1], number="5",
                                      state="trial", resident_slots=slots)
        code = activation.issue_codes(session, SYSTEM, inst.keys, [flat])[0].code
        return flat.id, code


def _signup(client: TestClient, code: str, username: str, password: str = PASSWORD, ip: str | None = None):  # noqa: ANN202
    return client.post("/api/v1/activation", json={"code": code, "username": username, "password": password})


def test_a_resident_signs_up_with_the_flats_code_and_watches(inst: Installation, client: TestClient) -> None:
    flat_id, code = _flat(inst)
    assert _signup(client, code, "short", "x" * 9).status_code == 422  # the policy's 10 characters
    made = _signup(client, code.lower().replace("-", " "), "neighbour")
    assert made.status_code == 201 and made.json() == {"username": "neighbour", "flat": "5", "watching": True}
    headers = login(client, "neighbour", PASSWORD)
    cameras = client.get("/api/v1/my/cameras", headers=headers).json()
    assert {c["name"] for c in cameras} == {"Дом 2, подъезд 2", "Двор дома 2"}
    assert cameras[0]["account"].endswith("-5")
    assert _signup(client, code, "neighbour").status_code == 422  # the username is taken: the slot is not used
    assert _signup(client, code, "second").status_code == 201
    # Both slots are used: the code is spent, and says only that it is not valid.
    spent = _signup(client, code, "third")
    assert spent.status_code == 422 and spent.json()["error"]["code"] == "invalid_code"
    with inst.db.session() as session:
        assert session.scalar(select(ActivationCode.uses).where(ActivationCode.flat_id == flat_id)) == 2
        joined = session.scalars(select(AuditRecord.actor_name).where(AuditRecord.action == "cloud.activated")).all()
        assert joined == ["neighbour", "second"]
        user = session.scalar(select(User).where(User.username == "second"))
        assert user.role == "resident" and user.organisation_id is None


def test_codes_expire_and_are_revoked(inst: Installation, client: TestClient) -> None:
    flat_id, code = _flat(inst, slots=4)
    with inst.db.session() as session:
        session.scalar(select(ActivationCode).where(ActivationCode.flat_id == flat_id)).expires_at = \
            utcnow() - timedelta(seconds=1)
    assert _signup(client, code, "late").status_code == 422
    admin = login(client, "admin")
    fresh = client.post(f"/api/v1/cloud/flats/{flat_id}/code", headers=admin)
    assert fresh.status_code == 201 and fresh.json()["url"].endswith("/activate?code=" + fresh.json()["code"])
    assert client.delete(f"/api/v1/cloud/flats/{flat_id}/code", headers=admin).status_code == 204
    assert _signup(client, fresh.json()["code"], "late").status_code == 422
    newest = client.post(f"/api/v1/cloud/flats/{flat_id}/code", headers=admin).json()["code"]
    assert _signup(client, newest, "late").status_code == 201
    assert client.post(f"/api/v1/cloud/flats/{flat_id}/code", headers=login(client, "resident1")).status_code == 404


def test_guessing_is_throttled_per_code_and_per_address(inst: Installation, client: TestClient) -> None:
    _flat_id, code = _flat(inst)
    locator = code.split("-")[0]
    wrong = f"{locator}-AAAA-AAAA"
    for _ in range(inst.settings.security.max_failed_logins):
        assert _signup(client, wrong, "guess").status_code == 422
    locked = _signup(client, wrong, "guess")
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert "for this code" in locked.json()["error"]["message"]
    # Even the right code waits while its locator is locked (no work is done for a locked attempt).
    assert _signup(client, code, "guess").status_code == 429
    with inst.db.session() as session:
        actions = session.scalars(select(AuditRecord.action).where(AuditRecord.action.startswith("cloud.activation"))
                                  ).all()
    assert actions.count("cloud.activation_failed") == inst.settings.security.max_failed_logins
    assert "cloud.activation_throttled" in actions
    # Per address: other codes guessed from the same address lock it too.
    inst.settings.security.max_failed_logins_per_address = 8
    for n in range(8 - inst.settings.security.max_failed_logins):
        _signup(client, f"Q{n}QQ-AAAA-AAAA", "guess")
    by_address = _signup(client, "XXXX-AAAA-AAAA", "guess")
    assert by_address.status_code == 429 and "from this address" in by_address.json()["error"]["message"]
