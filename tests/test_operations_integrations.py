"""Integrations of the operations centre: signed webhooks with retries and a delivery log, the MQTT bridge, the API.

Webhooks are received by a real HTTP server on a free port; MQTT goes through the local Mosquitto (127.0.0.1:1883).
Tests that touch the database run on SQLite and PostgreSQL, tests that touch the bus on the in-process bus and NATS.
Bus messages are published here, shaped as ``services/operations/messages.py`` documents them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kuzet.installation import Installation, Running
from kuzet.services import accounts
from kuzet.services.audit import SYSTEM
from kuzet.services.operations import webhooks
from kuzet.services.operations.messages import alarm_subject, event_subject, incident_subject
from kuzet.services.operations.mqtt import MqttBridge, parse_mqtt_url
from kuzet.services.places import create_organisation
from kuzet.store.bus import Bus, connect_bus
from kuzet.store.models import AuditRecord
from kuzet.store.models.operations import Webhook, WebhookDelivery
from tests.conftest import NATS_URL, _unavailable, login

BUSES = ["memory://", NATS_URL]
# The broker of the MQTT tests: KUZET_TEST_MQTT_URL (CI: the machine's Mosquitto).
_MQTT = urlsplit(os.environ.get("KUZET_TEST_MQTT_URL", "mqtt://127.0.0.1:1883"))
MQTT_HOST, MQTT_PORT = _MQTT.hostname or "127.0.0.1", _MQTT.port or 1883


# --- a real webhook receiver ------------------------------------------------------------------------------------------


class Receiver:
    """An HTTP server in a thread. ``plan[path]`` lists the answers in turn (the last repeats): a status code, or
    ``("slow", seconds)`` to hang before answering 200. Every request is kept with its headers and body."""

    def __init__(self) -> None:
        self.plan: dict[str, list[Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    answers = receiver.plan.setdefault(self.path, [200])
                    answer = answers.pop(0) if len(answers) > 1 else answers[0]
                if isinstance(answer, tuple):
                    time.sleep(answer[1])
                    answer = 200
                self.send_response(answer)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.daemon_threads = True
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def got(self, path: str, marker: str | None = None) -> list[dict[str, Any]]:
        """Requests to ``path`` (whose body mentions ``marker``, if given: the shared NATS may carry others' tests)."""
        with self.lock:
            return [r for r in self.requests if r["path"] == path and (marker is None or marker in r["body"].decode())]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def inst(inst: Installation) -> Installation:
    """The installation of these tests: its webhooks may deliver to the local test receivers (127.0.0.1)."""
    inst.settings.security.webhook_allowed_networks = ["127.0.0.1/32"]
    return inst


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


async def _connect(url: str) -> Bus:
    try:
        return await connect_bus(url)
    except Exception as exc:  # noqa: BLE001
        _unavailable("NATS", exc)
        raise


async def _until(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``check`` (a function, run in a thread: it may query the database) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _orgs(inst: Installation, *names: str) -> list[int]:
    with inst.db.session() as session:
        return [create_organisation(session, SYSTEM, f"{name} {uuid.uuid4().hex[:6]}", "police_duty_unit").id
                for name in names]


def _camera_seen_by(inst: Installation, organisation_id: int, rights: list[str]) -> int:
    """A camera on which ``organisation_id`` holds ``rights``: webhooks get what GET /alarms, /events would show."""
    from kuzet.services.cameras import create_camera
    from kuzet.services.grants import create_grant
    from kuzet.services.places import create_place

    with inst.db.session() as session:
        place = create_place(session, SYSTEM, "district", f"district {uuid.uuid4().hex[:6]}")
        camera = create_camera(session, SYSTEM, inst.keys, name="yard", place_id=place.id,
                               main_url="rtsp://127.0.0.1:9/none")
        create_grant(session, SYSTEM, organisation_id=organisation_id, place_id=place.id, rights=rights,
                     legal_basis="test agreement")
        return camera.id


def _hook(inst: Installation, url: str, organisation_id: int | None, topics: str = "*") -> tuple[int, str]:
    with inst.db.session() as session:
        hook, secret = webhooks.create_webhook(session, SYSTEM, inst.keys, name="test", url=url,
                                               organisation_id=organisation_id, topics=topics,
                                               networks=inst.settings.security.webhook_allowed_networks)
        return hook.id, secret


def _deliveries(inst: Installation, webhook_id: int, marker: str | None = None) -> list[WebhookDelivery]:
    with inst.db.session() as session:
        rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
                               .order_by(WebhookDelivery.id)).all()
    return [r for r in rows if marker is None or marker in json.dumps(r.payload)]


def _run_service(inst: Installation, bus_url: str, scenario: Callable[[Bus, webhooks.WebhookService], Awaitable[None]],
                 **options: Any) -> None:
    async def main() -> None:
        bus = await _connect(bus_url)
        inst.running.bus = bus
        service = webhooks.WebhookService(inst, **options)
        await service.start()
        try:
            await scenario(bus, service)
        finally:
            await service.stop()
            await bus.close()
            inst.running.bus = None

    asyncio.run(main())


FAST = {"base_delay": 0.05, "max_delay": 0.2, "timeout": 2.0, "poll_interval": 0.5}


# --- signing and topics (no I/O) --------------------------------------------------------------------------------------


def test_signature_scheme() -> None:
    body = b'{"id":"msg_1","topic":"alarm.raised"}'
    signature = webhooks.sign("s3cret-s3cret-s3cret", 1700000000, body)
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", signature)
    assert webhooks.verify("s3cret-s3cret-s3cret", "1700000000", body, signature)
    assert webhooks.verify("s3cret-s3cret-s3cret", "1700000000", body, signature.removeprefix("sha256="))
    assert not webhooks.verify("another-secret-value", "1700000000", body, signature)
    assert not webhooks.verify("s3cret-s3cret-s3cret", "1700000001", body, signature)
    assert not webhooks.verify("s3cret-s3cret-s3cret", "1700000000", body + b" ", signature)
    assert not webhooks.verify("s3cret-s3cret-s3cret", None, body, signature)
    assert webhooks.verify("s3cret-s3cret-s3cret", "1700000000", body, signature, max_age=300, now=1700000100)
    assert not webhooks.verify("s3cret-s3cret-s3cret", "1700000000", body, signature, max_age=300, now=1700000400)


def test_retry_schedule_and_topics() -> None:
    assert [webhooks.backoff(n) for n in range(1, 12)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600]
    assert webhooks.normalise_topics(["alarm.*", " incident.closed", "alarm.*"]) == "alarm.*,incident.closed"
    assert webhooks.normalise_topics("*") == "*"
    for bad in ("alarm.bogus", "camera.*", "", "event."):
        with pytest.raises(webhooks.WebhookError):
            webhooks.normalise_topics(bad)
    for bad in ("ftp://example.org/x", "http://user:pw@example.org/x", "example.org/x", "http:///x"):
        with pytest.raises(webhooks.WebhookError):
            webhooks.validate_url(bad)
    assert webhooks.safe_url("https://example.org/hook?token=abc#x") == "https://example.org/hook"


def test_receiver_example_in_the_docs_verifies_our_signature() -> None:
    """The standard-library receiver in docs/integrations.md accepts what we send and refuses a tampered body."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "integrations.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    namespace: dict[str, Any] = {"__name__": "kuzet_docs_example"}
    exec(compile(code, "docs/integrations.md", "exec"), namespace)  # noqa: S102 - our own documentation
    body = webhooks.encode_body({"id": "msg_1", "topic": "alarm.raised", "data": {"type": "raised"}})
    headers = webhooks.headers_for("a-long-enough-secret", body, message_id="msg_1", topic="alarm.raised",
                                   delivery_id=1)
    assert namespace["verify_kuzet"]("a-long-enough-secret", headers, body)
    assert not namespace["verify_kuzet"]("a-long-enough-secret", headers, body.replace(b"raised", b"dismissd"))


# --- webhook deliveries -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bus_url", BUSES)
def test_webhook_retries_until_delivered_signed_and_only_to_its_organisation(
        inst: Installation, receiver: Receiver, bus_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    org_a, org_b = _orgs(inst, "A", "B")
    camera_a = _camera_seen_by(inst, org_a, ["view_live"])
    hook_a, secret_a = _hook(inst, receiver.url("/a"), org_a, "alarm.*")
    hook_b, _ = _hook(inst, receiver.url("/b"), org_b)
    hook_all, secret_all = _hook(inst, receiver.url("/all"), None, "alarm.raised")
    receiver.plan["/a"] = [500, 500, 200]
    marker = f"m{uuid.uuid4().hex}"
    alarm_id = secrets.randbelow(10**9) + 10**9

    async def scenario(bus: Bus, service: webhooks.WebhookService) -> None:
        alarm = {"id": alarm_id, "camera": {"id": camera_a}, "title": "Человек во дворе", "priority": "high",
                 "marker": marker}
        await bus.publish(alarm_subject(alarm_id), {"type": "raised", "alarm": alarm, "organisations": [org_a]})
        # Routed to B too, but B holds no view_live on the camera: as GET /alarms, B's webhook never gets it.
        await bus.publish(alarm_subject(alarm_id + 1), {"type": "raised", "alarm": {**alarm, "id": alarm_id + 1},
                                                        "organisations": [org_b]})
        # An incident of organisation B only: A's webhook must not get it, B's does (topics "*").
        await bus.publish(incident_subject(alarm_id), {"type": "created", "incident": {"id": alarm_id, "m": marker},
                                                       "organisations": [org_b]})
        await _until(lambda: [d for d in _deliveries(inst, hook_a, marker) if d.state == "delivered"],
                     what="the third attempt to succeed")
        await _until(lambda: receiver.got("/b", marker) and receiver.got("/all", marker), what="B and platform")

    _run_service(inst, bus_url, scenario, **FAST)

    attempts = receiver.got("/a", marker)
    assert len(attempts) == 3
    assert len({r["headers"]["X-Kuzet-Message-Id"] for r in attempts}) == 1  # stable across retries
    for request in attempts:
        headers = request["headers"]
        assert headers["X-Kuzet-Topic"] == "alarm.raised"
        assert webhooks.verify(secret_a, headers["X-Kuzet-Timestamp"], request["body"],
                               headers["X-Kuzet-Signature"], max_age=300)
    body = json.loads(attempts[-1]["body"])
    assert body["topic"] == "alarm.raised" and body["id"] == attempts[-1]["headers"]["X-Kuzet-Message-Id"]
    assert body["data"]["alarm"]["id"] == alarm_id
    assert "organisations" not in body["data"]  # an organisation's receiver is not told who else sees it

    [delivery] = _deliveries(inst, hook_a, marker)
    assert (delivery.state, delivery.attempts, delivery.delivered_at is not None) == ("delivered", 3, True)
    assert [a["status"] for a in delivery.attempts_log] == [500, 500, 200]
    assert [a["error"] for a in delivery.attempts_log] == ["HTTP 500", "HTTP 500", None]
    assert all(isinstance(a["ms"], int) and a["at"] for a in delivery.attempts_log)

    # Organisation B's webhook got only B's incident; the platform-wide one the alarm (its topic), with organisations.
    assert [json.loads(r["body"])["topic"] for r in receiver.got("/b", marker)] == ["incident.created"]
    assert [d.topic for d in _deliveries(inst, hook_b, marker)] == ["incident.created"]
    # The platform-wide one gets both alarms (a platform admin sees every alarm).
    both = receiver.got("/all", marker)
    assert sorted(json.loads(r["body"])["data"]["alarm"]["id"] for r in both) == [alarm_id, alarm_id + 1]
    [everything] = [r for r in both if json.loads(r["body"])["data"]["alarm"]["id"] == alarm_id]
    assert webhooks.verify(secret_all, everything["headers"]["X-Kuzet-Timestamp"], everything["body"],
                           everything["headers"]["X-Kuzet-Signature"])
    assert json.loads(everything["body"])["data"]["organisations"] == [org_a]
    for secret in (secret_a, secret_all):
        assert secret not in caplog.text


@pytest.mark.parametrize("bus_url", BUSES)
def test_pending_deliveries_survive_a_restart_and_a_dead_receiver_holds_back_no_one(
        inst: Installation, receiver: Receiver, bus_url: str) -> None:
    org = _orgs(inst, "C")[0]
    camera = _camera_seen_by(inst, org, ["view_live", "view_archive"])
    slow, _ = _hook(inst, receiver.url("/slow"), org)
    fine, _ = _hook(inst, receiver.url("/fine"), org)
    receiver.plan["/slow"] = [("slow", 1.5)]  # longer than the service's timeout: every attempt fails
    marker = f"m{uuid.uuid4().hex}"
    # Rows queued before the service starts, as a stopped server leaves them.
    with inst.db.session() as session:
        for n in range(3):
            webhooks.enqueue(session, event_subject(camera), {"type": "new", "event": {"id": n, "m": marker},
                                                         "organisations": [org]})

    async def scenario(bus: Bus, service: webhooks.WebhookService) -> None:
        def healthy_done() -> bool:
            return [d.state for d in _deliveries(inst, fine, marker)] == ["delivered"] * 3

        await _until(healthy_done, what="the healthy receiver's deliveries")
        assert all(d.state == "pending" for d in _deliveries(inst, slow, marker))  # still trying the dead one
        await _until(lambda: all(d.state == "failed" for d in _deliveries(inst, slow, marker)), timeout=20,
                     what="the dead receiver's deliveries to fail")
        failed = _deliveries(inst, slow, marker)[0]
        assert failed.attempts == 2 and all(a["status"] is None and a["error"] for a in failed.attempts_log)
        # The receiver is back: redeliver one message; same message id, a fresh set of attempts.
        receiver.plan["/slow"] = [200]
        new_id = await service.redeliver(failed.id)
        again = await _until(lambda: [d for d in _deliveries(inst, slow, marker)
                                      if d.id == new_id and d.state == "delivered"], what="the redelivery")
        assert again[0].message_id == failed.message_id and again[0].attempts == 1

    _run_service(inst, bus_url, scenario, base_delay=0.05, max_delay=0.2, timeout=0.5, poll_interval=0.5,
                 max_attempts=2)
    assert len(receiver.got("/fine", marker)) == 3


def test_webhook_of_a_disabled_or_deleted_hook_gets_nothing(inst: Installation) -> None:
    org = _orgs(inst, "D")[0]
    camera = _camera_seen_by(inst, org, ["view_live"])
    off, _ = _hook(inst, "http://127.0.0.1:9/off", org)
    with inst.db.session() as session:
        webhooks.update_webhook(session, SYSTEM, inst.keys, session.get(Webhook, off), enabled=False)
        message = {"type": "raised", "alarm": {"camera": {"id": camera}}, "organisations": [org]}
        assert webhooks.enqueue(session, alarm_subject(1), message) == []
        assert webhooks.enqueue(session, "kuzet.camera.1.health", {"type": "x", "organisations": [org]}) == []
        webhooks.update_webhook(session, SYSTEM, inst.keys, session.get(Webhook, off), enabled=True)
        assert len(webhooks.enqueue(session, alarm_subject(1), message)) == 1
        # An alarm on a camera the organisation does not watch live, or on no camera, reaches no organisation hook.
        assert webhooks.enqueue(session, alarm_subject(2), {"type": "raised", "organisations": [org]}) == []
        webhooks.delete_webhook(session, SYSTEM, session.get(Webhook, off))
    assert _deliveries(inst, off) == []


# --- MQTT -------------------------------------------------------------------------------------------------------------


def _mqtt_inst(bus: Bus, url: str | None) -> Installation:
    settings = SimpleNamespace(mqtt_url=url, mqtt_organisation=None)
    return SimpleNamespace(settings=settings, running=Running(bus=bus))  # type: ignore[return-value]


@pytest.mark.parametrize("bus_url", BUSES)
def test_mqtt_bridge_publishes_frigate_style_events_a_subscriber_receives(bus_url: str) -> None:
    import aiomqtt

    camera = secrets.randbelow(10**6) + 10**6

    async def scenario() -> list[tuple[str, Any]]:
        bus = await _connect(bus_url)
        got: list[tuple[str, Any]] = []
        try:
            subscriber = aiomqtt.Client(MQTT_HOST, MQTT_PORT, timeout=5)
            await subscriber.__aenter__()
        except Exception as exc:  # noqa: BLE001
            await bus.close()
            _unavailable("Mosquitto", exc)
        try:
            for topic in (f"kuzet/{camera}/events", f"kuzet/{camera}/alarms", "kuzet/available"):
                await subscriber.subscribe(topic, qos=1)
            bridge = MqttBridge(_mqtt_inst(bus, f"mqtt://{MQTT_HOST}:{MQTT_PORT}"), min_backoff=0.1)
            await bridge.start()
            await asyncio.wait_for(bridge.connected.wait(), 10)
            event = {"id": 77, "camera_id": camera, "kind": "object", "label": "person", "score": 0.8,
                     "start_at": "2025-05-01T10:00:00Z", "end_at": None, "zone": "entrance"}
            await bus.publish(event_subject(camera), {"type": "new", "event": event, "organisations": [1]})
            await bus.publish(event_subject(camera), {"type": "update", "event": {**event, "score": 0.9},
                                                      "organisations": [1]})
            ended = {**event, "end_at": "2025-05-01T10:00:07Z"}
            await bus.publish(event_subject(camera), {"type": "end", "event": ended, "organisations": [1]})
            await bus.publish(alarm_subject(5), {"type": "raised", "alarm": {"id": 5, "camera_id": camera},
                                                 "organisations": [1]})

            async def collect() -> None:
                async for message in subscriber.messages:
                    payload = message.payload.decode()
                    got.append((str(message.topic), payload if str(message.topic) == "kuzet/available"
                                else json.loads(payload)))
                    if got[-1] == ("kuzet/available", "offline") and len(got) > 5:
                        return

            collector = asyncio.create_task(collect())
            await _until(lambda: len([g for g in got if g[0] != "kuzet/available"]) == 4, timeout=10,
                         what="MQTT messages")
            await bridge.stop()
            await asyncio.wait_for(collector, 10)
        finally:
            await subscriber.__aexit__(None, None, None)
            await bus.close()
        return got

    got = asyncio.run(scenario())
    events = [body for topic, body in got if topic == f"kuzet/{camera}/events"]
    assert [e["type"] for e in events] == ["new", "update", "end"]
    new, update, end = events
    assert new["after"]["camera"] == camera and new["after"]["label"] == "person"
    assert new["after"]["current_zones"] == ["entrance"] and new["after"]["start_time"] == 1746093600.0
    assert update["before"] == new["after"] and update["after"]["score"] == 0.9
    assert end["before"] == update["after"] and end["after"]["end_time"] == 1746093607.0
    [alarm] = [body for topic, body in got if topic == f"kuzet/{camera}/alarms"]
    assert alarm["type"] == "raised" and alarm["alarm"]["id"] == 5
    availability = [body for topic, body in got if topic == "kuzet/available"]
    assert "online" in availability and availability[-1] == "offline"


@pytest.mark.parametrize("bus_url", BUSES)
def test_mqtt_bridge_without_a_broker_keeps_trying_and_never_breaks_the_bus(
        bus_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def scenario() -> int:
        bus = await _connect(bus_url)
        bridge = MqttBridge(_mqtt_inst(bus, f"mqtt://user:hunter2-secret@127.0.0.1:{port}"), min_backoff=0.05,
                            max_backoff=0.1, queue_size=2)
        await bridge.start()
        for n in range(4):
            await bus.publish(event_subject(1), {"type": "new", "event": {"id": n}, "organisations": []})
        await asyncio.sleep(0.5)
        assert not bridge.connected.is_set()
        dropped = bridge.dropped
        await bridge.stop()
        await bus.close()
        return dropped

    assert asyncio.run(scenario()) == 2  # a queue of 2: the two oldest of 4 went
    assert "unavailable" in caplog.text and "hunter2" not in caplog.text
    off = MqttBridge(_mqtt_inst(None, None))  # type: ignore[arg-type]
    asyncio.run(off.start())  # no mqtt_url: nothing runs
    assert off.target is None
    assert "hunter2" not in repr(parse_mqtt_url("mqtts://u:hunter2@broker.example:8884"))
    assert parse_mqtt_url("mqtts://broker.example").port == 8883


# --- the API ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def people(inst: Installation) -> dict[str, Any]:
    with inst.db.session() as session:
        orgs = {key: create_organisation(session, SYSTEM, name, kind).id for key, name, kind in (
            ("a", "Школа A", "school"), ("b", "Школа B", "school"), ("t", "Telecom", "telecom_operator"),
            ("p", "Police", "police_duty_unit"))}
        for username, role, org in (("root", "platform_admin", None), ("adm_a", "organisation_admin", "a"),
                                    ("adm_b", "organisation_admin", "b"), ("telecom", "operator_admin", "t"),
                                    ("cop", "police_operator", "a")):
            accounts.create_user(session, SYSTEM, username, "pass-word-1", role,
                                 organisation=orgs[org] if org else None)
    return orgs


def test_webhooks_api_access_secret_and_delivery_log(inst: Installation, client: TestClient, people: dict[str, Any],
                                                     receiver: Receiver) -> None:
    h = {name: login(client, name, "pass-word-1") for name in ("root", "adm_a", "adm_b", "telecom", "cop")}
    api = "/api/v1/webhooks"

    platform = client.post(api, json={"name": "SIEM", "url": receiver.url("/siem"), "topics": ["*"]}, headers=h["root"])
    assert platform.status_code == 201, platform.text
    assert platform.json()["organisation_id"] is None and len(platform.json()["secret"]) >= 40
    own = client.post(api, json={"name": "School A", "url": receiver.url("/a"), "topics": "alarm.*,incident.closed"},
                      headers=h["adm_a"])
    assert own.status_code == 201 and own.json()["organisation_id"] == people["a"]
    secret_a, hook_a = own.json()["secret"], own.json()["id"]
    hook_b = client.post(api, json={"name": "B", "url": receiver.url("/b")}, headers=h["adm_b"]).json()["id"]
    telecom = client.post(api, json={"name": "T", "url": receiver.url("/t"), "organisation_id": people["t"]},
                          headers=h["root"])
    assert telecom.json()["organisation_id"] == people["t"]

    # Another organisation's, or platform-wide: not for organisation admins.
    assert client.post(api, json={"name": "x", "url": receiver.url("/x"), "organisation_id": people["b"]},
                       headers=h["adm_a"]).status_code == 404
    for path in (f"{api}/{hook_b}", f"{api}/{platform.json()['id']}", f"{api}/{hook_b}/deliveries", f"{api}/999999"):
        assert client.get(path, headers=h["adm_a"]).status_code == 404, path
    assert client.patch(f"{api}/{hook_b}", json={"enabled": False}, headers=h["adm_a"]).status_code == 404
    assert client.delete(f"{api}/{hook_b}", headers=h["adm_a"]).status_code == 404
    assert client.post(f"{api}/{hook_b}/test", headers=h["adm_a"]).status_code == 404
    assert [w["id"] for w in client.get(api, headers=h["adm_a"]).json()["items"]] == [hook_a]
    assert [w["id"] for w in client.get(api, headers=h["telecom"]).json()["items"]] == [telecom.json()["id"]]
    assert client.get(api, headers=h["root"]).json()["total"] == 4
    # A police operator of organisation A sees no webhooks at all, not even A's.
    for response in (client.get(api, headers=h["cop"]), client.get(f"{api}/{hook_a}", headers=h["cop"]),
                     client.post(api, json={"name": "x", "url": receiver.url("/x")}, headers=h["cop"]),
                     client.delete(f"{api}/{hook_a}", headers=h["cop"])):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

    # Validation.
    for bad in ({"url": "ftp://example.org/x"}, {"url": "http://u:p@example.org/x"}, {"topics": ["alarm.bogus"]},
                {"secret": "short"}):
        response = client.post(api, json={"name": "bad", "url": receiver.url("/x"), **bad}, headers=h["adm_a"])
        assert response.status_code == 422, bad
        assert set(response.json()["error"]) == {"code", "message", "key", "params"}

    # The secret is never returned again, nor anywhere else.
    assert "secret" not in client.get(f"{api}/{hook_a}", headers=h["adm_a"]).json()
    patched = client.patch(f"{api}/{hook_a}", json={"name": "School A alarms", "topics": ["alarm.*", "ping"]},
                           headers=h["adm_a"])
    assert patched.status_code == 422  # "ping" is not a topic to subscribe to
    patched = client.patch(f"{api}/{hook_a}", json={"name": "School A alarms"}, headers=h["adm_a"])
    assert patched.status_code == 200 and patched.json()["name"] == "School A alarms" and "secret" not in patched.json()

    # A test ping, delivered and verifiable with the secret from creation; then the log and a redelivery.
    ping = client.post(f"{api}/{hook_a}/test", headers=h["adm_a"])
    assert ping.status_code == 200, ping.text
    assert ping.json()["state"] == "delivered" and ping.json()["topic"] == "ping"
    [request] = receiver.got("/a")
    assert request["headers"]["X-Kuzet-Topic"] == "ping"
    assert webhooks.verify(secret_a, request["headers"]["X-Kuzet-Timestamp"], request["body"],
                           request["headers"]["X-Kuzet-Signature"], max_age=300)
    log = client.get(f"{api}/{hook_a}/deliveries", headers=h["adm_a"]).json()
    assert set(log) == {"items", "total", "limit", "offset"} and log["total"] == 1
    assert log["items"][0]["attempts"] == 1 and log["items"][0]["attempts_log"][0]["status"] == 200
    did = log["items"][0]["id"]
    assert client.post(f"{api}/{hook_b}/deliveries/{did}/redeliver", headers=h["adm_b"]).status_code == 404
    again = client.post(f"{api}/{hook_a}/deliveries/{did}/redeliver", headers=h["adm_a"])
    assert again.status_code == 202 and again.json()["state"] == "pending"
    assert again.json()["message_id"] == ping.json()["message_id"] and again.json()["id"] != did
    pending = client.get(f"{api}/{hook_a}/deliveries", params={"state": "pending"}, headers=h["adm_a"]).json()
    assert pending["total"] == 1 and pending["items"][0]["id"] == again.json()["id"]

    listed = client.get(api, headers=h["root"]).text + client.get(f"{api}/{hook_a}/deliveries", headers=h["root"]).text
    assert secret_a not in listed and platform.json()["secret"] not in listed

    assert client.delete(f"{api}/{hook_a}", headers=h["adm_a"]).status_code == 204
    assert client.get(f"{api}/{hook_a}", headers=h["adm_a"]).status_code == 404

    with inst.db.session() as session:
        records = session.scalars(select(AuditRecord).where(AuditRecord.object_type == "webhook")).all()
        actions = [(r.action, r.actor_name) for r in records if r.object_id == str(hook_a)]
        assert actions == [(webhooks.WEBHOOK_CREATED, "adm_a"), (webhooks.WEBHOOK_CHANGED, "adm_a"),
                           (webhooks.WEBHOOK_REDELIVERED, "adm_a"), (webhooks.WEBHOOK_DELETED, "adm_a")]
        everything = json.dumps([r.details for r in records], ensure_ascii=False)
    assert secret_a not in everything and platform.json()["secret"] not in everything
    assert inst.verify_audit().ok
