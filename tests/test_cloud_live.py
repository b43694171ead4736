"""The subscription against a real recorder and real RTSP cameras: a subscriber suspended for non-payment loses live
and archive within a minute (by the service's own periodic check) while the recording goes on; a payment import
reactivates them; every change is in the audit log and in the resident's own view. Downloads keep to the plan's
allowance; a shared link plays the clip and each opening shows in the residents' access log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.websockets import WebSocketDisconnect

from kuzet.installation import Installation
from kuzet.store.models.recording import Recording
from tests.conftest import login
from tests.recording_support import ThreadedSim
from tests.watching_support import streaming_demo

pytestmark = pytest.mark.media


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Installation, TestClient]]:
    from kuzet.api.app import create_app

    sim = ThreadedSim(2)
    inst = streaming_demo(tmp_path_factory.mktemp("cloud") / "data", sim, live=("b1e1", "b1yard"))
    inst.settings.cloud.check_seconds = 2  # the periodic check, every minute in production
    with TestClient(create_app(inst, run_services=True)) as client:
        recorder = inst.running.recorder
        cams = [inst.city.cameras[s] for s in ("b1e1", "b1yard")]
        deadline = time.time() + 60
        while time.time() < deadline and not all((recorder.health(c) or {}).get("state") == "recording"
                                                 for c in cams):
            time.sleep(0.3)
        time.sleep(8)
        yield inst, client
    inst.close()
    sim.close()


def _recordings(inst: Installation, camera: int, since: datetime) -> int:
    with inst.db.session() as session:
        return session.scalar(select(func.count()).select_from(Recording).where(
            Recording.camera_id == camera, Recording.start_at >= since)) or 0


def _live_until_closed(client: TestClient, url: str, on_init) -> tuple[int | None, list[dict]]:  # noqa: ANN001
    texts: list[dict] = []
    acted = False
    try:
        with client.websocket_connect(url) as ws:
            while True:
                message = ws.receive()
                if message["type"] == "websocket.close":
                    return message.get("code"), texts
                if message.get("text"):
                    texts.append(json.loads(message["text"]))
                    if texts[-1]["type"] == "init" and not acted:
                        acted = True
                        on_init()
    except WebSocketDisconnect as exc:
        return exc.code, texts


def _window(seconds: int = 6) -> dict:
    end = datetime.now(UTC) - timedelta(seconds=2)
    return {"start": (end - timedelta(seconds=seconds)).isoformat(), "end": end.isoformat()}


def test_unpaid_subscribers_lose_live_and_archive_while_recording_goes_on_and_payment_restores(served) -> None:  # noqa: ANN001
    inst, client = served
    camera = inst.city.cameras["b1e1"]
    operator, resident = login(client, "operator"), login(client, "resident1")
    token = resident["Authorization"].split()[1]
    assert client.get(f"/api/v1/cameras/{camera}/timeline", headers=resident).status_code == 200
    account = client.get("/api/v1/my/subscriptions", headers=resident).json()[0]["account"]
    today = datetime.now(UTC).date()
    last_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    suspended_at: list[datetime] = []

    def invoice_overdue() -> None:
        # Last month's invoice, due yesterday and unpaid: the service's own check suspends the flat.
        run = client.post("/api/v1/cloud/invoices/run", headers=operator, json={
            "period": last_month, "due_on": (today - timedelta(days=1)).isoformat()})
        assert run.status_code == 200 and run.json()["invoices"] >= 1, run.text
        suspended_at.append(datetime.now(UTC))

    started = time.monotonic()
    code, texts = _live_until_closed(client, f"/api/v1/cameras/{camera}/live?token={token}", invoice_overdue)
    assert code == 4403 and texts[-1]["code"] == "access_ended", texts[-3:]
    assert time.monotonic() - started < 120  # generous: the goal is a minute, the check runs every 2 s here
    # Archive gone too, exactly like a camera they never had.
    for path in (f"/api/v1/cameras/{camera}/timeline", f"/api/v1/cameras/{camera}/clip.mp4"):
        response = client.get(path, headers=resident, params=_window())
        assert response.status_code == 404, (path, response.text)
    # The recording goes on: new files keep arriving for the camera.
    deadline = time.time() + 60
    while time.time() < deadline and _recordings(inst, camera, suspended_at[0]) < 2:
        time.sleep(1)
    assert _recordings(inst, camera, suspended_at[0]) >= 2
    # On record, and in the resident's own view.
    mine = client.get("/api/v1/my/subscriptions", headers=resident).json()[0]
    assert mine["state"] == "suspended" and mine["state_reason"] == "unpaid" and not mine["watching"]
    assert mine["history"][0]["to_state"] == "suspended" and mine["balance_tiyn"] > 0
    assert any(r["action"] == "cloud.subscription_changed" and r["details"]["to"] == "suspended"
               for r in mine["audit"])
    audit = client.get("/api/v1/audit", headers=login(client, "auditor"),
                       params={"action": "cloud.subscription_changed"}).json()["items"]
    assert audit[0]["details"]["to"] == "suspended" and audit[0]["actor_name"] == "system"
    # The bank's register arrives: the payment reactivates the flat at once.
    amount = mine["balance_tiyn"]
    register = (f"лицевой счёт;сумма;дата;номер платежа\n{account};{amount // 100},{amount % 100:02d};"
                f"{today.strftime('%d.%m.%Y')};BANK-{time.time_ns()}\n").encode()
    imported = client.post("/api/v1/cloud/payments/import", headers=operator,
                           files={"file": ("register.csv", register, "text/csv")})
    assert imported.status_code == 200 and imported.json()["reactivated"] >= 1, imported.text
    mine = client.get("/api/v1/my/subscriptions", headers=resident).json()[0]
    assert mine["state"] == "active" and mine["state_reason"] == "paid" and mine["balance_tiyn"] == 0
    assert mine["payments"][0]["amount_tiyn"] == amount
    assert client.get(f"/api/v1/cameras/{camera}/timeline", headers=resident).status_code == 200
    with client.websocket_connect(f"/api/v1/cameras/{camera}/live?token={token}") as ws:
        assert json.loads(ws.receive_text())["type"] == "init"


def test_downloads_keep_to_the_allowance_and_shared_links_are_audited(served) -> None:  # noqa: ANN001
    inst, client = served
    camera = inst.city.cameras["b1yard"]
    resident, operator = login(client, "resident1"), login(client, "operator")
    plans = client.get("/api/v1/cloud/plans", headers=operator).json()
    standard = next(p for p in plans if p["name"].startswith("Стандарт"))
    # Two clips a month on this plan for this test.
    assert client.put(f"/api/v1/cloud/plans/{standard['id']}", headers=operator,
                      json={**{k: standard[k] for k in ("name", "archive_days", "price_tiyn")},
                            "clip_downloads_per_month": 2}).status_code == 200
    left = client.get("/api/v1/my/subscriptions", headers=resident).json()[0]["downloads_left"]
    assert left == 2 - client.get("/api/v1/my/subscriptions", headers=resident).json()[0]["downloads_used"]
    got = client.get(f"/api/v1/my/cameras/{camera}/download.mp4", headers=resident, params=_window())
    assert got.status_code == 200 and got.content[4:8] == b"ftyp", got.text[:200]
    assert "attachment" in got.headers["content-disposition"]
    share = client.post("/api/v1/my/shares", headers=resident, json={**_window(), "camera_id": camera, "hours": 2,
                                                                      "note": "для участкового"})
    assert share.status_code == 201, share.text
    over = client.get(f"/api/v1/my/cameras/{camera}/download.mp4", headers=resident, params=_window())
    assert over.status_code == 409 and "2 clips a month" in over.json()["error"]["message"]
    # Whoever holds the link plays it without an account, and each opening is on the camera's record.
    path = "/api/v1/shared/" + share.json()["url"].rsplit("/", 1)[1] + ".mp4"
    for _ in range(2):
        opened = client.get(path)
        assert opened.status_code == 200 and opened.content[4:8] == b"ftyp"
    assert client.get("/api/v1/shared/not-a-token.mp4").status_code == 404
    log = client.get("/api/v1/my/access-log", headers=resident, params={"limit": 200}).json()
    openings = [i for i in log["items"] if i["action"] == "video.share_opened"]
    assert len(openings) == 2 and openings[0]["actor_name"] == "link" and not openings[0]["own"]
    # My own views are hidden unless asked for, and the log pages.
    assert all(not i["own"] for i in log["items"])
    everything = client.get("/api/v1/my/access-log", headers=resident,
                            params={"include_own": "true", "limit": 1}).json()
    assert everything["total"] > log["total"] and len(everything["items"]) == 1
    # Revoked, the link opens nothing.
    assert client.delete(f"/api/v1/my/shares/{share.json()['id']}", headers=resident).status_code == 200
    assert client.get(path).status_code == 404
