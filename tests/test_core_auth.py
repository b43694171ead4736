"""Authentication: argon2id, bearer tokens and cookies, personal tokens hashed at rest, throttling, logout."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.audit import SYSTEM
from kuzet.store.models import ApiToken, AuditRecord, User
from tests.conftest import login


def _user(inst: Installation, name: str = "alice", role: str = "police_operator") -> None:
    with inst.db.session() as s:
        accounts.create_user(s, SYSTEM, name, "correct horse", role)


def test_password_is_argon2id(inst: Installation) -> None:
    _user(inst)
    with inst.db.session() as s:
        user = s.scalar(select(User).where(User.username == "alice"))
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash


def test_bearer_token_flow_and_errors(inst: Installation, client: TestClient) -> None:
    _user(inst)
    bad = client.post("/api/v1/auth/token", data={"username": "alice", "password": "wrong"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "bad_credentials"
    nobody = client.post("/api/v1/auth/token", data={"username": "nobody", "password": "wrong"})
    assert nobody.json() == bad.json()
    headers = login(client, "alice", "correct horse")
    me = client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200 and me.json()["username"] == "alice"
    with inst.db.session() as s:
        actions = [r.action for r in s.scalars(select(AuditRecord).order_by(AuditRecord.seq))]
    assert actions.count("auth.login_failed") == 2 and "auth.login" in actions


def test_session_cookie_login_and_csrf_guard(inst: Installation, client: TestClient) -> None:
    _user(inst, "root", "platform_admin")
    response = client.post("/api/v1/auth/login", json={"username": "root", "password": "correct horse"})
    assert response.status_code == 200
    cookie = response.cookies.get("kuzet_session")
    assert cookie and "httponly" in response.headers["set-cookie"].lower()
    assert client.get("/api/v1/auth/me").status_code == 200
    # A cookie-authenticated change without our header is refused (cross-site forms cannot add it).
    refused = client.post("/api/v1/places", json={"kind": "region", "name": "R"})
    assert refused.status_code == 403
    made = client.post("/api/v1/places", json={"kind": "region", "name": "R"}, headers={"X-Requested-With": "kuzet"})
    assert made.status_code == 201
    assert client.post("/api/v1/auth/logout", headers={"X-Requested-With": "kuzet"}).status_code == 200
    client.cookies.set("kuzet_session", cookie)
    assert client.get("/api/v1/auth/me").status_code == 401


def test_personal_tokens_are_hashed_and_revocable(inst: Installation, client: TestClient) -> None:
    _user(inst)
    headers = login(client, "alice", "correct horse")
    created = client.post("/api/v1/auth/tokens", json={"name": "ci script", "days": 30}, headers=headers)
    assert created.status_code == 201
    secret = created.json()["token"]
    with inst.db.session() as s:
        stored = s.scalars(select(ApiToken.token_hash)).all()
    assert secret not in stored and accounts.token_digest(secret) in stored
    personal = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/auth/me", headers=personal).status_code == 200
    listed = client.get("/api/v1/auth/tokens", headers=headers).json()
    assert [t["name"] for t in listed] == ["ci script"] and "token" not in listed[0]
    assert client.delete(f"/api/v1/auth/tokens/{created.json()['id']}", headers=headers).status_code == 200
    assert client.get("/api/v1/auth/me", headers=personal).status_code == 401


def test_repeated_failures_are_throttled(inst: Installation, client: TestClient) -> None:
    _user(inst)
    limit = inst.settings.security.max_failed_logins
    for _ in range(limit):
        assert client.post("/api/v1/auth/token", data={"username": "alice", "password": "x"}).status_code == 401
    throttled = client.post("/api/v1/auth/token", data={"username": "alice", "password": "correct horse"})
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "too_many_attempts"
    assert int(throttled.headers["Retry-After"]) >= 1


def test_inactive_user_cannot_log_in(inst: Installation, client: TestClient) -> None:
    _user(inst)
    with inst.db.session() as s:
        s.scalar(select(User).where(User.username == "alice")).is_active = False
    assert client.post("/api/v1/auth/token", data={"username": "alice", "password": "correct horse"}).status_code == 401


def test_errors_have_one_shape(inst: Installation, client: TestClient) -> None:
    _user(inst, "root", "platform_admin")
    headers = login(client, "root", "correct horse")
    invalid = client.post("/api/v1/places", json={"kind": "moon", "name": "X"}, headers=headers)
    assert invalid.status_code == 422 and "unknown place kind" in invalid.json()["error"]["message"]
    missing = client.post("/api/v1/places", json={"name": "X"}, headers=headers)
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "invalid"
    assert client.get("/api/v1/nothing-here").json()["error"]["code"] == "not_found"
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200 and "/api/v1/cameras" in spec.json()["paths"]
