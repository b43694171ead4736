"""Analysis leases beside recording leases (docs/scale.md, "Analysis on workers"), on both backends: a camera's
recording lease and its analysis lease are independent (separate tables, separate fair shares, a take of one never
touches the other nor closes recordings), `kuzet cluster status` shows both; and the node credential that lets an
analysing worker read a camera's live fMP4 from the node recording it: refused without the shared secret, with a
forged or stale signature, or on any other route; streamed, unaudited, with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import func, select
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from kuzet.config import ClusterConfig
from kuzet.domain.audit import Action
from kuzet.installation import Installation
from kuzet.services.cluster import node_auth
from kuzet.services.cluster.keeper import LeaseKeeper
from kuzet.services.cluster.leases import ANALYSE, RECORD
from kuzet.services.cluster.status import cluster_status
from kuzet.services.recording.hub import Fragment, Hub
from kuzet.store.db import utcnow
from kuzet.store.models.cluster import AnalysisLease, CameraLease
from kuzet.store.models.core import AuditRecord
from kuzet.store.models.recording import Recording
from tests.test_cluster_leases import LEASE, _cameras

SECRET = SecretStr("a-shared-cluster-secret-0123456789")


def _keeper(inst: Installation, node: str, purpose=RECORD) -> LeaseKeeper:  # noqa: ANN001
    keeper = LeaseKeeper(inst.db, LEASE.model_copy(update={"node": node}), purpose=purpose)
    keeper.recording = lambda: set(keeper.tokens) - keeper.releasing
    return keeper


def _rows(inst: Installation, table) -> dict[int, tuple[str | None, int]]:  # noqa: ANN001
    with inst.db.session() as s:
        return {r.camera_id: (r.node, r.token) for r in s.scalars(select(table))}


def test_recording_and_analysis_leases_are_independent(inst: Installation) -> None:
    cameras = _cameras(inst, 4)
    recorder = _keeper(inst, "rec-1")
    assert sorted(recorder.pass_once().held) == cameras  # the only recorder: every camera
    with inst.db.session() as s:  # a file the recorder is writing
        s.add(Recording(camera_id=cameras[0], path="open.mp4", start_at=utcnow() - timedelta(seconds=5),
                        end_at=utcnow(), state="open", node="rec-1", lease_token=recorder.token(cameras[0])))
    recorded = _rows(inst, CameraLease)

    # Analysis nodes count only among themselves: the recorder node is not one of them.
    w1, w2 = _keeper(inst, "work-1", ANALYSE), _keeper(inst, "work-2", ANALYSE)
    first = w1.pass_once()
    assert sorted(first.held) == cameras and first.live_nodes == 1
    assert w2.pass_once().held == {}
    w1.pass_once()  # two analysis nodes now: w1 gives two back once its loops stopped
    w1.pass_once()
    w2.pass_once()
    assert len(w1.tokens) == 2 and len(w2.tokens) == 2 and not set(w1.tokens) & set(w2.tokens)
    analysed = _rows(inst, AnalysisLease)
    assert {node for node, _ in analysed.values()} == {"work-1", "work-2"}
    assert {c for c, (node, _) in analysed.items() if node == "work-2"} == set(w2.tokens)

    # Nothing of the above touched the recording leases, nor closed the open file.
    assert _rows(inst, CameraLease) == recorded and all(n == "rec-1" for n, _ in recorded.values())
    assert recorder.pass_once().held == {c: 1 for c in cameras} and not recorder.releasing
    with inst.db.session() as s:
        assert s.scalar(select(Recording.state).where(Recording.path == "open.mp4")) == "open"

    # A recorder giving a camera back leaves its analysis lease alone, and the other way round.
    recorder.book.leave(set(recorder.tokens))
    assert _rows(inst, AnalysisLease) == analysed
    w1.book.leave(set(w1.tokens))
    w2.pass_once()
    assert sorted(w2.tokens) == cameras  # the analysis of w1's cameras moved to w2...
    assert all(node is None or node == "rec-1" for node, _ in _rows(inst, CameraLease).values())  # ...only that

    status = cluster_status(inst.db, LEASE.lease_seconds)
    assert [n.node for n in status.nodes] == [] and status.cameras_unheld == 4  # the recorder left
    assert [(n.node, n.cameras, n.camera_ids) for n in status.analysis_nodes] == [("work-2", 4, cameras)]
    assert status.cameras_unanalysed == 0


def test_cluster_status_command_shows_analysis_leases(inst: Installation) -> None:
    from typer.testing import CliRunner

    from kuzet.cli.main import app

    cameras = _cameras(inst, 4)
    _keeper(inst, "rec-1").pass_once()
    w1, w2 = _keeper(inst, "work-1", ANALYSE), _keeper(inst, "work-2", ANALYSE)
    w1.pass_once(), w2.pass_once(), w1.pass_once(), w1.pass_once(), w2.pass_once()
    env = {"KUZET_DATABASE_URL": inst.settings.database_url} if inst.settings.database_url else {}
    runner = CliRunner()
    result = runner.invoke(app, ["cluster", "status", "--json", "--data", str(inst.settings.data_dir)], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [(n["node"], n["cameras"]) for n in report["nodes"]] == [("rec-1", 4)]
    assert [(n["node"], n["cameras"]) for n in report["analysis_nodes"]] == [("work-1", 2), ("work-2", 2)]
    assert sorted(report["analysis_nodes"][0]["camera_ids"] + report["analysis_nodes"][1]["camera_ids"]) == cameras
    assert report["cameras_unanalysed"] == 0
    table = runner.invoke(app, ["cluster", "status", "--data", str(inst.settings.data_dir)], env=env)
    assert table.exit_code == 0 and "work-1" in table.output and "analysis" in table.output


def test_the_cluster_secret_is_checked_and_hidden() -> None:
    with pytest.raises(ValidationError, match="16 characters"):
        ClusterConfig(enabled=True, secret="short")
    config = ClusterConfig(enabled=True, secret=SECRET.get_secret_value())
    assert SECRET.get_secret_value() not in repr(config) and SECRET.get_secret_value() not in str(config.model_dump())
    now = 1_800_000_000
    value = node_auth.sign_live(SECRET, "work-1", 7, "sub", now)
    assert node_auth.verify_live(SECRET, value, 7, "sub", now + 5) == "work-1"
    assert node_auth.verify_live(SECRET, value, 8, "sub", now) is None  # another camera
    assert node_auth.verify_live(SECRET, value, 7, "main", now) is None  # another stream
    assert node_auth.verify_live(SECRET, value, 7, "sub", now + 120) is None  # stale
    assert node_auth.verify_live(None, value, 7, "sub", now) is None  # no secret here: nothing is accepted
    assert node_auth.verify_live(SecretStr("another-secret-0123456789"), value, 7, "sub", now) is None
    assert node_auth.verify_live(SECRET, value.replace("work-1", "work-2"), 7, "sub", now) is None


class _Recorder:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def has_sub_stream(self, camera_id: int) -> bool:
        return True


class _Holding:
    """A recording lease keeper that holds the camera for ``times`` questions, then lets it go."""

    def __init__(self, times: int) -> None:
        self.left = times

    def holds(self, camera_id: int) -> bool:
        self.left -= 1
        return self.left >= 0


def _refused_code(client: TestClient, path: str, headers: dict[str, str]) -> int:
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(path, headers=headers) as ws:
        ws.receive()
    return refused.value.code


def test_node_credential_on_the_live_stream(inst: Installation, client: TestClient) -> None:
    camera = _cameras(inst, 1)[0]
    hub = Hub()
    channel = hub.channel(camera, "sub")
    channel.set_init(b"\x00\x00\x00\x08ftyp")
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    channel.publish(Fragment(b"\x00\x00\x00\x08moof-1", True, start, 1.0, 25))
    channel.publish(Fragment(b"\x00\x00\x00\x08moof-2", False, start + timedelta(seconds=1), 1.0, 25))
    inst.running.recorder = _Recorder(hub)  # type: ignore[assignment]
    path = f"/api/v1/cameras/{camera}/live?stream=sub"
    good = {node_auth.HEADER: node_auth.sign_live(SECRET, "work-1", camera, "sub")}

    # No secret configured on this node: even a well-signed request is refused.
    assert _refused_code(client, path, good) == 4401
    inst.settings.cluster = inst.settings.cluster.model_copy(update={"secret": SECRET})
    assert _refused_code(client, path, {}) == 4401  # neither a node signature nor a user token
    forged = {node_auth.HEADER: node_auth.sign_live(SecretStr("not-the-cluster-secret-0000"), "work-1", camera,
                                                      "sub")}
    assert _refused_code(client, path, forged) == 4401
    other_camera = {node_auth.HEADER: node_auth.sign_live(SECRET, "work-1", camera + 1, "sub")}
    assert _refused_code(client, path, other_camera) == 4401
    stale = {node_auth.HEADER: node_auth.sign_live(SECRET, "work-1", camera, "sub", utcnow().timestamp() - 600)}
    assert _refused_code(client, path, stale) == 4401
    assert _refused_code(client, path, {node_auth.HEADER: "work-1 1 00"}) == 4401
    # Only the live WebSocket accepts it: the other live routes want a user.
    for other in ("snapshot.jpg", "live.m3u8", "health"):
        response = client.get(f"/api/v1/cameras/{camera}/{other}?stream=sub", headers=good)
        assert response.status_code in (401, 404), (other, response.status_code)

    # The right secret streams: the init segment, then each fragment after its wall-clock start and keyframe flag.
    inst.running.lease_keeper = _Holding(1)  # type: ignore[assignment] - asked before and after one fragment
    with client.websocket_connect(path, headers=good) as ws:
        header = ws.receive_json()
        assert header == {"type": "init", "stream": "sub", "node": True}
        assert ws.receive_bytes()[4:8] == b"ftyp"
        meta = ws.receive_json()
        assert meta["type"] == "fragment" and meta["keyframe"] is True
        assert datetime.fromisoformat(meta["start"]) == start and meta["samples"] == 25
        assert ws.receive_bytes().endswith(b"moof-1")
        with pytest.raises(WebSocketDisconnect):  # the camera moved: the holder ends the stream
            ws.receive_bytes()
    # A node that does not record the camera says so at once.
    inst.running.lease_keeper = SimpleNamespace(holds=lambda camera_id: False)  # type: ignore[assignment]
    with client.websocket_connect(path, headers=good) as ws:
        assert ws.receive_json()["code"] == "not_holder"
    with inst.db.session() as s:  # a node reading is no person viewing
        assert not s.scalar(select(func.count()).select_from(AuditRecord)
                            .where(AuditRecord.action == Action.LIVE_VIEWED))
