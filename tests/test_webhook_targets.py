"""Webhook targets: never into the installation's own networks unless allow-listed, checked at creation, on every
change and again at delivery against the address the host resolves to then; no redirects followed; attempts record
a status or a generic reason, never an exception's text.

Only addresses on this machine are ever connected to (a local receiver on 127.0.0.1, or a closed local port); the
public addresses below are only classified, or "resolved" by a stub, never contacted.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.audit import SYSTEM
from kuzet.services.operations import webhooks
from tests.conftest import login

PASSWORD = "correct horse battery"
REFUSED = ["http://127.0.0.1:8080/x", "http://localhost/x", "http://10.1.2.3/x", "http://172.16.0.1/x",
           "http://192.168.1.1/x", "http://100.64.0.1/x", "http://169.254.169.254/latest/meta-data/",
           "http://0.0.0.0/x", "http://224.0.0.1/x", "http://[::1]/x", "http://[fd00::1]/x", "http://[fe80::1]/x",
           "http://[::ffff:127.0.0.1]/x", "http://[64:ff9b::a00:1]/x", "https://[fd00:ec2::254]/x",
           "http://2130706433/x", "http://0x7f.1/x"]


class Receiver:
    """A local HTTP server that records requests and answers with a planned status (and Location)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status, self.location = 200, None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append({"path": self.path, "host": self.headers.get("Host")})
                self.send_response(outer.status)
                if outer.location:
                    self.send_header("Location", outer.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_addresses_are_classified() -> None:
    nets = webhooks.allowed_networks(["127.0.0.1/32", "10.20.0.0/16", "not a network"])
    for text in ("127.0.0.2", "10.1.0.1", "172.31.255.255", "192.168.0.1", "100.127.0.1", "169.254.169.254",
                 "0.0.0.0", "255.255.255.255", "224.0.0.251", "::", "::1", "fc00::1", "fe80::1", "ff02::1",
                 "::ffff:10.0.0.1", "64:ff9b::a00:1"):
        assert not webhooks.address_allowed(ipaddress.ip_address(text), nets), text
    for text in ("127.0.0.1", "10.20.3.4", "::ffff:127.0.0.1", "93.184.216.34", "2606:4700::1111"):
        assert webhooks.address_allowed(ipaddress.ip_address(text), nets), text


def test_private_targets_are_refused_at_creation_and_on_change(inst: Installation, client: TestClient) -> None:
    with inst.db.session() as session:
        accounts.create_user(session, SYSTEM, "root", PASSWORD, "platform_admin")
    headers = login(client, "root", PASSWORD)
    for url in REFUSED:
        response = client.post("/api/v1/webhooks", json={"name": "x", "url": url}, headers=headers)
        assert response.status_code == 422, (url, response.text)
        message = response.json()["error"]["message"]
        assert "security.webhook_allowed_networks" in message or "URL" in message, message
    assert client.get("/api/v1/webhooks", headers=headers).json()["total"] == 0
    public = client.post("/api/v1/webhooks", json={"name": "SIEM", "url": "https://93.184.216.34/hook"},
                         headers=headers)
    assert public.status_code == 201
    hook = public.json()["id"]
    moved = client.patch(f"/api/v1/webhooks/{hook}", json={"url": "http://169.254.169.254/"}, headers=headers)
    assert moved.status_code == 422
    assert client.get(f"/api/v1/webhooks/{hook}", headers=headers).json()["url"] == "https://93.184.216.34/hook"
    inst.settings.security.webhook_allowed_networks = ["127.0.0.1/32"]
    local = client.patch(f"/api/v1/webhooks/{hook}", json={"url": "http://127.0.0.1:9000/hook"}, headers=headers)
    assert local.status_code == 200
    still = client.patch(f"/api/v1/webhooks/{hook}", json={"url": "http://127.0.0.2:9000/hook"}, headers=headers)
    assert still.status_code == 422


def test_test_ping_answers_generic_reasons(inst: Installation, client: TestClient, receiver: Receiver) -> None:
    inst.settings.security.webhook_allowed_networks = ["127.0.0.1/32"]
    with inst.db.session() as session:
        accounts.create_user(session, SYSTEM, "root", PASSWORD, "platform_admin")
    headers = login(client, "root", PASSWORD)

    def ping(url: str) -> dict[str, Any]:
        hook = client.post("/api/v1/webhooks", json={"name": "x", "url": url}, headers=headers)
        assert hook.status_code == 201, hook.text
        answer = client.post(f"/api/v1/webhooks/{hook.json()['id']}/test", headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()["attempts_log"][-1]

    refused = ping(f"http://127.0.0.1:{_closed_port()}/hook")
    assert refused["status"] is None and refused["error"] == "connection refused"
    receiver.status = 500
    assert ping(f"http://127.0.0.1:{receiver.port}/hook") | {"at": None, "ms": None} == {
        "at": None, "ms": None, "status": 500, "error": "HTTP 500"}
    # A redirect is an answer, not an invitation: 302 recorded, the Location (a metadata address) never requested.
    receiver.status, receiver.location = 302, "http://169.254.169.254/latest/meta-data/"
    redirected = ping(f"http://127.0.0.1:{receiver.port}/hook")
    assert redirected["status"] == 302 and redirected["error"] == "HTTP 302"
    assert [r["path"] for r in receiver.requests] == ["/hook", "/hook"]
    # The allow-list is taken away: the next attempt is refused before connecting.
    inst.settings.security.webhook_allowed_networks = []
    hooks = client.get("/api/v1/webhooks", headers=headers).json()["items"]
    answer = client.post(f"/api/v1/webhooks/{hooks[-1]['id']}/test", headers=headers).json()["attempts_log"][-1]
    assert answer == answer | {"status": None, "error": "target not allowed"}
    assert len(receiver.requests) == 2


def _job(url: str) -> webhooks.Claimed:
    return webhooks.Claimed(delivery_id=1, webhook_id=1, url=url, secret="s" * 32, message_id="msg_1", topic="ping",
                            payload={"id": "msg_1"})


async def _post(url: str, networks: list[str]) -> webhooks.AttemptResult:
    async with webhooks.new_client(2.0) as client:
        return await webhooks.post(client, _job(url), timeout=2.0, networks=networks)


def test_dns_rebinding_is_checked_at_delivery_and_the_checked_address_is_used(
        monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    import asyncio

    answers = {"hooks.example": [ipaddress.ip_address("93.184.216.34")]}
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: answers[host])
    # Created while the name pointed to a public address; by delivery time it points to loopback.
    assert webhooks.check_target("http://hooks.example/x") == [ipaddress.ip_address("93.184.216.34")]
    answers["hooks.example"] = [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("127.0.0.1")]
    result = asyncio.run(_post(f"http://hooks.example:{receiver.port}/x", []))
    assert result.status is None and result.error == "target not allowed" and receiver.requests == []
    # Allowed: the request goes to the address that was checked, with the name kept in Host.
    answers["hooks.example"] = [ipaddress.ip_address("127.0.0.1")]
    result = asyncio.run(_post(f"http://hooks.example:{receiver.port}/x", ["127.0.0.1/32"]))
    assert result.status == 200 and receiver.requests == [{"path": "/x", "host": f"hooks.example:{receiver.port}"}]


def test_reasons_never_carry_exception_text() -> None:
    import ssl

    def chained(outer: Exception, inner: BaseException) -> Exception:
        outer.__cause__ = inner
        return outer

    cases = [(chained(httpx.ConnectError("All connection attempts failed"), ConnectionRefusedError(111, "x")),
              "connection refused"),
             (httpx.ConnectTimeout("timed out connecting to 10.0.0.1"), "timed out"),
             (chained(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] internal-ca"), ssl.SSLError(1, "bad")),
              "TLS error"),
             (chained(httpx.ConnectError("[Errno -2] Name or service not known"), socket.gaierror(-2, "x")),
              "host not found"),
             (webhooks.TargetNotAllowed("10.0.0.1 is private"), "target not allowed"),
             (RuntimeError("/srv/kuzet/secret path"), "connection failed")]
    for exc, reason in cases:
        assert webhooks.failure_reason(exc) == reason
