"""Authentication: argon2id, bearer tokens and cookies, personal tokens hashed at rest, throttling, logout."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.audit import SYSTEM
from kuzet.store.models import ApiToken, AuditRecord, LoginAttempt, User
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
    message = invalid.json()["error"]["message"]  # names the field, the kinds it accepts and what it got
    assert invalid.status_code == 422 and message.startswith("kind: ") and "'district'" in message and "moon" in message
    missing = client.post("/api/v1/places", json={"name": "X"}, headers=headers)
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "invalid"
    assert client.get("/api/v1/nothing-here").json()["error"]["code"] == "not_found"
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200 and "/api/v1/cameras" in spec.json()["paths"]


# --- login hardening: per-address throttling, proxies, argon2 bounded, password policy -----------------------------


def _client(inst: Installation, address: str = "203.0.113.7", **kwargs) -> TestClient:
    from kuzet.api.app import create_app

    return TestClient(create_app(inst), client=(address, 50000), **kwargs)


def _audit(inst: Installation, action: str) -> list[AuditRecord]:
    with inst.db.session() as s:
        return list(s.scalars(select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.seq)))


def _attempts(inst: Installation) -> list[tuple[str, str | None, bool]]:
    with inst.db.session() as s:
        return [(a.username, a.ip, a.success) for a in s.scalars(select(LoginAttempt).order_by(LoginAttempt.id))]


def test_many_usernames_from_one_address_lock_that_address(inst: Installation) -> None:
    _user(inst)
    inst.settings.security.max_failed_logins_per_address = 6
    with _client(inst, "203.0.113.7") as attacker, _client(inst, "198.51.100.20") as elsewhere:
        for n in range(6):  # a different username each time: no username lock is ever reached
            wrong = attacker.post("/api/v1/auth/token", data={"username": f"guess{n}", "password": "x"})
            assert wrong.status_code == 401
        locked = attacker.post("/api/v1/auth/token", data={"username": "alice", "password": "correct horse"})
        assert locked.status_code == 429 and locked.json()["error"]["code"] == "too_many_attempts"
        assert "address" in locked.json()["error"]["message"] and int(locked.headers["Retry-After"]) >= 1
        assert attacker.post("/api/v1/auth/login", json={"username": "alice", "password": "correct horse"}
                             ).status_code == 429
        # Other addresses and the account itself are not locked.
        assert elsewhere.post("/api/v1/auth/token", data={"username": "alice", "password": "correct horse"}
                              ).status_code == 200
    # The refused attempts did no password work and left no attempt behind; the lock itself is audited.
    assert [a for a in _attempts(inst) if a[1] == "203.0.113.7"] == [(f"guess{n}", "203.0.113.7", False)
                                                                        for n in range(6)]
    [lock] = _audit(inst, "auth.login_throttled")
    assert lock.ip == "203.0.113.7" and lock.object_type == "address" and lock.details["scope"] == "address"


def test_a_locked_username_does_not_lock_other_users(inst: Installation, client: TestClient) -> None:
    _user(inst)
    _user(inst, "bob")
    for _ in range(inst.settings.security.max_failed_logins):
        assert client.post("/api/v1/auth/token", data={"username": "alice", "password": "x"}).status_code == 401
    refused = client.post("/api/v1/auth/token", data={"username": "alice", "password": "correct horse"})
    assert refused.status_code == 429 and "account" in refused.json()["error"]["message"]
    assert client.post("/api/v1/auth/token", data={"username": "bob", "password": "correct horse"}).status_code == 200
    [lock] = _audit(inst, "auth.login_throttled")
    assert lock.details["scope"] == "username" and lock.details["username"] == "alice"


def test_forwarded_for_is_believed_only_from_trusted_proxies(inst: Installation) -> None:
    _user(inst)
    inst.settings.http.trusted_proxies = ["10.0.0.0/8", "192.0.2.1"]
    inst.settings.security.max_failed_logins_per_address = 4
    names = iter(f"nobody{n}" for n in range(100))

    def fail(client: TestClient, forwarded: str) -> int:
        return client.post("/api/v1/auth/token", data={"username": next(names), "password": "x"},
                           headers={"X-Forwarded-For": forwarded}).status_code

    with _client(inst, "10.1.2.3") as proxy, _client(inst, "203.0.113.5") as direct:
        # Through our proxy chain: the first address from the right that none of our proxies is.
        assert fail(proxy, "198.51.100.9") == 401
        assert fail(proxy, "1.2.3.4, 198.51.100.10, 10.0.0.2") == 401
        assert fail(proxy, "[2001:db8::1]:4711, 192.0.2.1") == 401
        assert fail(proxy, "not-an-address, 10.0.0.7") == 401  # garbage: the last proxy we trust is the client
        # Anyone else's X-Forwarded-For is ignored: rotating it does not dodge the address lock.
        assert [fail(direct, f"100.64.0.{n}") for n in range(5)] == [401] * 4 + [429]
    assert [r.ip for r in _audit(inst, "auth.login_failed")] == [
        "198.51.100.9", "198.51.100.10", "2001:db8::1", "10.0.0.7"] + ["203.0.113.5"] * 4


def test_ipv6_clients_are_throttled_per_64_network(inst: Installation) -> None:
    inst.settings.security.max_failed_logins_per_address = 3
    _user(inst)
    for n in range(3):  # a fresh address of the same /64 each time
        with _client(inst, f"2001:db8:aa:bb::{n + 1}") as attacker:
            assert attacker.post("/api/v1/auth/token", data={"username": f"guess{n}", "password": "x"}
                                 ).status_code == 401
    with _client(inst, "2001:db8:aa:bb:ffff::9") as same_network, _client(inst, "2001:db8:aa:cc::1") as neighbour:
        assert same_network.post("/api/v1/auth/token", data={"username": "alice", "password": "correct horse"}
                                 ).status_code == 429
        assert neighbour.post("/api/v1/auth/token", data={"username": "alice", "password": "correct horse"}
                              ).status_code == 200
    # Audit records keep each exact address.
    assert [r.ip for r in _audit(inst, "auth.login_failed")] == [f"2001:db8:aa:bb::{n + 1}" for n in range(3)]
    assert accounts.address_key("::ffff:192.0.2.7") == "192.0.2.7"


def test_overlong_usernames_are_refused_like_unknown_ones(inst: Installation, client: TestClient) -> None:
    _user(inst, "a" * 100)
    long = client.post("/api/v1/auth/token", data={"username": "a" * 100 + "b", "password": "correct horse"})
    assert long.status_code == 401 and long.json()["error"]["code"] == "bad_credentials"
    assert client.post("/api/v1/auth/token", data={"username": "x" * 5000, "password": "p"}).status_code == 401
    assert client.post("/api/v1/auth/token", data={"username": "a" * 100, "password": "correct horse"}
                       ).status_code == 200


def test_session_cookie_is_secure_over_https_only(inst: Installation) -> None:
    _user(inst)
    inst.settings.http.trusted_proxies = ["10.0.0.1"]
    body = {"username": "alice", "password": "correct horse"}

    def cookie(client: TestClient, headers: dict | None = None) -> str:
        response = client.post("/api/v1/auth/login", json=body, headers=headers or {})
        assert response.status_code == 200, response.text
        return response.headers["set-cookie"].lower()

    with _client(inst, "203.0.113.5") as plain:
        flags = cookie(plain)
        assert "httponly" in flags and "samesite=lax" in flags and "secure" not in flags
        # X-Forwarded-Proto from an address that is not a trusted proxy changes nothing.
        assert "secure" not in cookie(plain, {"X-Forwarded-Proto": "https"})
    with _client(inst, "203.0.113.5", base_url="https://kuzet.example") as tls:
        assert "; secure" in cookie(tls)
    with _client(inst, "10.0.0.1") as proxy:
        assert "; secure" in cookie(proxy, {"X-Forwarded-Proto": "https"})
        assert "secure" not in cookie(proxy, {"X-Forwarded-Proto": "http"})
    inst.settings.http.secure_cookies = True
    with _client(inst, "203.0.113.5") as forced:
        assert "; secure" in cookie(forced)


def test_metrics_need_a_token_or_a_loopback_client(inst: Installation) -> None:
    inst.settings.http.trusted_proxies = ["127.0.0.1"]
    with _client(inst, "127.0.0.1") as local, _client(inst, "203.0.113.5") as remote:
        assert local.get("/metrics").status_code == 200
        assert remote.get("/metrics").status_code == 404
        # A local reverse proxy forwarding someone else's scrape is not a local client.
        assert local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 404
        inst.settings.http.metrics_token = "m3trics-t0ken-for-prometheus"
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "m3trics-t0ken-for-prometheus"}):
            assert local.get("/metrics", headers=headers).status_code == 401
        good = {"Authorization": "Bearer m3trics-t0ken-for-prometheus"}
        assert remote.get("/metrics", headers=good).status_code == 200
        assert "kuzet" in remote.get("/metrics", headers=good).text
        # The same metrics under the API prefix are guarded the same way.
        assert remote.get("/api/v1/metrics").status_code == 401
        assert remote.get("/api/v1/metrics", headers=good).status_code == 200
        inst.settings.http.metrics_token = None
        assert remote.get("/api/v1/metrics").status_code == 404
        assert local.get("/api/v1/metrics").status_code == 200


class _CountingHasher:
    """Wraps argon2's hasher: counts the computations running at once, and on which threads they run. The first
    ``meet`` computations wait for each other, so the test knows that many really ran together."""

    def __init__(self, real: object, meet: int) -> None:
        import threading

        self.real, self.lock = real, threading.Lock()
        self.active = self.peak = self.calls = 0
        self.threads: set[int] = set()
        self.barrier = threading.Barrier(meet, timeout=60)
        self.meet = meet

    def _run(self, fn, *args):  # noqa: ANN001, ANN002, ANN202
        import threading

        with self.lock:
            self.active += 1
            self.calls += 1
            first = self.calls <= self.meet
            self.peak = max(self.peak, self.active)
            self.threads.add(threading.get_ident())
        try:
            if first:
                self.barrier.wait()
            return fn(*args)
        finally:
            with self.lock:
                self.active -= 1

    def verify(self, digest: str, password: str) -> bool:
        return self._run(self.real.verify, digest, password)

    def hash(self, password: str) -> str:
        return self._run(self.real.hash, password)


def test_argon2_work_is_bounded_under_concurrent_logins(inst: Installation, monkeypatch) -> None:  # noqa: ANN001
    import asyncio
    import threading

    import httpx

    from kuzet.api.app import create_app

    _user(inst)
    limit = 3
    inst.settings.security.password_hash_concurrency = limit
    counting = _CountingHasher(accounts._hasher, meet=limit)
    monkeypatch.setattr(accounts, "_hasher", counting)
    monkeypatch.setattr(accounts, "HASH_WAIT_SECONDS", 120.0)
    app = create_app(inst)

    async def burst() -> tuple[list[httpx.Response], int]:
        transport = httpx.ASGITransport(app=app, client=("198.51.100.1", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kuzet") as http:
            responses = await asyncio.gather(*(
                http.post("/api/v1/auth/token", data={"username": "alice", "password": "correct horse"})
                for _ in range(20)))
        return list(responses), threading.get_ident()

    responses, loop_thread = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 20
    assert counting.calls == 20
    assert counting.peak == limit  # `limit` really ran together (they met), and never more
    assert loop_thread not in counting.threads  # argon2 never ran on the event loop


def test_no_free_argon2_slot_answers_busy_and_records_nothing(inst: Installation, client: TestClient,
                                                              monkeypatch) -> None:  # noqa: ANN001
    from contextlib import ExitStack

    _user(inst)
    monkeypatch.setattr(accounts, "HASH_WAIT_SECONDS", 0.05)
    accounts.argon2_gate.resize(inst.settings.security.password_hash_concurrency)
    before = len(_attempts(inst))
    with ExitStack() as held:
        for _ in range(inst.settings.security.password_hash_concurrency):
            held.enter_context(accounts.argon2_gate.slot())
        busy = client.post("/api/v1/auth/token", data={"username": "alice", "password": "correct horse"})
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy"
    assert busy.headers["Retry-After"] == "1"
    assert len(_attempts(inst)) == before and not _audit(inst, "auth.login_failed")
    assert client.post("/api/v1/auth/token", data={"username": "alice", "password": "correct horse"}
                       ).status_code == 200


def test_passwords_shorter_than_ten_are_refused_outside_the_demo(inst: Installation, client: TestClient) -> None:
    _user(inst, "root", "platform_admin")
    headers = login(client, "root", "correct horse")
    short = client.post("/api/v1/users", json={"username": "u1", "password": "nine-char", "role": "resident"},
                        headers=headers)
    assert short.status_code == 422 and "at least 10" in short.json()["error"]["message"]
    ok = client.post("/api/v1/users", json={"username": "u1", "password": "ten-chars!", "role": "resident"},
                     headers=headers)
    assert ok.status_code == 201
    with inst.db.session() as s:
        try:
            accounts.create_user(s, SYSTEM, "u2", "demo", "resident",
                                 policy=accounts.password_policy(inst.settings))
        except accounts.AccountError as exc:
            assert "at least 10" in str(exc)
        else:
            raise AssertionError("a 4-character password was accepted outside the demo")
    inst.settings.security.min_password_length = 14
    assert accounts.password_policy(inst.settings).min_length == 14
    # The demo installation keeps its short passwords.
    inst.settings.demo = True
    with inst.db.session() as s:
        accounts.create_user(s, SYSTEM, "visitor", "demo", "resident", policy=accounts.password_policy(inst.settings))
    assert client.post("/api/v1/auth/token", data={"username": "visitor", "password": "demo"}).status_code == 200


def test_users_change_their_own_password(inst: Installation) -> None:
    _user(inst)
    with _client(inst) as client, _client(inst) as other_device:
        headers = login(client, "alice", "correct horse")
        elsewhere = login(other_device, "alice", "correct horse")
        personal = client.post("/api/v1/auth/tokens", json={"name": "script"}, headers=headers).json()["token"]
        change = "/api/v1/auth/password"
        too_short = client.patch(change, json={"current_password": "correct horse", "new_password": "short"},
                                 headers=headers)
        assert too_short.status_code == 422 and "at least 10" in too_short.json()["error"]["message"]
        wrong = client.patch(change, json={"current_password": "guess-guess", "new_password": "battery staple"},
                             headers=headers)
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "bad_credentials"
        assert _audit(inst, "auth.login_failed")[-1].details == {"via": "password_change"}
        done = client.patch(change, json={"current_password": "correct horse", "new_password": "battery staple"},
                            headers=headers)
        assert done.status_code == 200 and done.json() == {"changed": True, "sessions_revoked": 1}
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 200  # this session goes on
        assert other_device.get("/api/v1/auth/me", headers=elsewhere).status_code == 401  # others end
        assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {personal}"}).status_code == 200
        assert client.post("/api/v1/auth/token", data={"username": "alice", "password": "correct horse"}
                           ).status_code == 401
        assert client.post("/api/v1/auth/token", data={"username": "alice", "password": "battery staple"}
                           ).status_code == 200
        # Cookie sessions need our header for the change, like every other cookie-authenticated change.
        client.post("/api/v1/auth/login", json={"username": "alice", "password": "battery staple"})
        no_header = client.patch(change, json={"current_password": "battery staple",
                                               "new_password": "third password"})
        assert no_header.status_code == 403 and "X-Requested-With" in no_header.json()["error"]["message"]
    [changed] = _audit(inst, "auth.password_changed")
    assert changed.details == {"tokens_revoked": 1}
    with inst.db.session() as s:
        stored = s.scalar(select(User.password_hash).where(User.username == "alice"))
    assert stored.startswith("$argon2id$") and "battery" not in stored


def test_attempts_older_than_the_window_are_pruned(inst: Installation, client: TestClient) -> None:
    from datetime import timedelta

    from kuzet.store.db import utcnow

    _user(inst)
    window = timedelta(minutes=inst.settings.security.failed_login_window_minutes)
    with inst.db.session() as s:
        s.add(LoginAttempt(username="old", ip="192.0.2.1", at=utcnow() - 2 * window, success=False))
        s.add(LoginAttempt(username="recent", ip="192.0.2.1", at=utcnow() - window / 2, success=False))
    assert client.post("/api/v1/auth/token", data={"username": "alice", "password": "correct horse"}
                       ).status_code == 200
    assert [name for name, _ip, _ok in _attempts(inst)] == ["recent", "alice"]


def test_websockets_get_the_same_client_address(inst: Installation) -> None:
    from types import SimpleNamespace

    from starlette.websockets import WebSocket

    from kuzet.api.deps import client_ip, is_https

    inst.settings.http.trusted_proxies = ["10.0.0.0/8"]
    app = SimpleNamespace(state=SimpleNamespace(installation=inst))

    def socket(peer: str, forwarded: str, proto: str = "http") -> WebSocket:
        scope = {"type": "websocket", "app": app, "client": (peer, 4000), "scheme": "ws", "path": "/live",
                 "query_string": b"", "server": ("kuzet", 80),
                 "headers": [(b"x-forwarded-for", forwarded.encode()), (b"x-forwarded-proto", proto.encode())]}
        return WebSocket(scope, receive=None, send=None)  # type: ignore[arg-type]

    assert client_ip(socket("10.0.0.5", "198.51.100.4")) == "198.51.100.4"
    assert client_ip(socket("203.0.113.9", "198.51.100.4")) == "203.0.113.9"
    assert is_https(socket("10.0.0.5", "198.51.100.4", "https"))
    assert not is_https(socket("203.0.113.9", "198.51.100.4", "https"))
