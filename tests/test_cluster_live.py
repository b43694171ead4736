"""Live video across recorder nodes: two `kuzet serve` recorder processes on one PostgreSQL database and one NATS
server, each advertising its URL (``[cluster] advertise_url``), and an API node (``kuzet serve`` without a recorder).
A viewer connected to the API node or to either recorder node watches live video (fMP4 over WebSocket, live HLS,
snapshot) of a camera the other recorder holds: the node passes the request to the holder
(api/cluster_routes.py). A user without a grant gets 404 on every node, and nothing is passed on for them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from kuzet.config import load_settings
from kuzet.domain.audit import Action
from kuzet.installation import Installation
from kuzet.services.simulator.clips import ensure_clip
from kuzet.store.db import Database
from kuzet.store.models.core import AuditRecord
from tests.faults_support import Serve, Simulator, free_port, wait_until
from tests.test_cluster_failover import ClusterSite, _holders, cluster_site  # noqa: F401 - the fixture
from tests.test_faults import FLAP_CLIP, OPERATOR, PASSWORD, USER, _site

pytestmark = pytest.mark.media

CAMERAS = 2
STRANGER = "cluster-stranger"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(CAMERAS, ensure_clip(FLAP_CLIP))
    yield simulator
    simulator.close()


def _stranger(data_dir: Path, url: str) -> None:
    """An operator of an organisation that holds no grant: may see no camera."""
    from kuzet.services import accounts
    from kuzet.services.audit import SYSTEM
    from kuzet.services.places import create_organisation

    inst = Installation.open(settings=load_settings(environ={"KUZET_DATA_DIR": str(data_dir),
                                                            "KUZET_DATABASE_URL": url}))
    try:
        with inst.db.session() as s:
            other = create_organisation(s, SYSTEM, "another centre", "control_centre")
            accounts.create_user(s, SYSTEM, STRANGER, PASSWORD, "police_operator", organisation=other.id)
    finally:
        inst.close()


def _token(node: Serve, username: str) -> str:
    response = httpx.post(f"http://127.0.0.1:{node.port}/api/v1/auth/token",
                          data={"username": username, "password": PASSWORD}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _live_bytes(port: int, camera_id: int, token: str) -> tuple[dict, bytes, bytes]:
    """(the header, the init segment, the first fragment) of the live WebSocket on ``port``."""
    with connect(f"ws://127.0.0.1:{port}/api/v1/cameras/{camera_id}/live?token={token}", open_timeout=20,
                 close_timeout=5, max_size=None) as ws:
        header = json.loads(ws.recv(timeout=30))
        assert header["type"] == "init", header
        init = ws.recv(timeout=30)
        while True:
            data = ws.recv(timeout=30)
            if isinstance(data, bytes):
                return header, init, data


def _refused(port: int, camera_id: int, token: str) -> int | None:
    """The close code the live WebSocket ends with for ``token`` (None if it streamed)."""
    try:
        with connect(f"ws://127.0.0.1:{port}/api/v1/cameras/{camera_id}/live?token={token}", open_timeout=20,
                     close_timeout=5) as ws:
            ws.recv(timeout=30)
    except InvalidStatus as exc:
        return exc.response.status_code
    except Exception as exc:  # noqa: BLE001 - closed before accepting: the close code says why
        return getattr(getattr(exc, "rcvd", None), "code", None)
    return None


def _live_views(db: Database, camera_id: int) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.action == Action.LIVE_VIEWED, AuditRecord.camera_id == camera_id,
            AuditRecord.actor_name == OPERATOR)) or 0


def test_a_viewer_on_either_node_watches_cameras_the_other_holds(tmp_path: Path, sim: Simulator,
                                                                 cluster: ClusterSite) -> None:
    schema, env, nodes, db = cluster.schema, cluster.env, cluster.nodes, cluster.db
    ids = _site(tmp_path / "a", schema.url, {f"cam{i}": (sim.url(i), None) for i in range(1, CAMERAS + 1)},
                alarms=True)
    _stranger(tmp_path / "a", schema.url)
    shutil.copytree(tmp_path / "a" / "keys", tmp_path / "b" / "keys")
    shutil.copy(tmp_path / "a" / "audit.anchor", tmp_path / "b" / "audit.anchor")
    for name in ("a", "b"):
        port = free_port()
        nodes[name] = Serve(tmp_path / name, {**env, "KUZET_CLUSTER__NODE": f"node-{name}",
                                              "KUZET_CLUSTER__ADVERTISE_URL": f"http://127.0.0.1:{port}"},
                            USER, PASSWORD, port=port)
    # An API node: no recorder, no leases (as deploy/ runs it).
    shutil.copytree(tmp_path / "a" / "keys", tmp_path / "api" / "keys")
    shutil.copy(tmp_path / "a" / "audit.anchor", tmp_path / "api" / "audit.anchor")
    nodes["api"] = Serve(tmp_path / "api", {**env, "KUZET_RECORDER__ENABLED": "false"}, USER, PASSWORD)
    wait_until(lambda: sorted(_holders(db).values()) == ["node-a", "node-b"], 90, "one camera on each node")
    held = _holders(db)
    for camera_id, node in held.items():
        nodes[node[-1]].wait_recording(camera_id, timeout=60)
    assert set(held) == set(ids.values())

    views = [(camera_id, nodes[name]) for camera_id, holder in sorted(held.items())
             for name in ("b" if holder == "node-a" else "a", "api")]
    for camera_id, other in views:
        token = _token(other, OPERATOR)
        before = _live_views(db, camera_id)
        # fMP4 over WebSocket: the header, the init segment (ftyp) and a fragment (moof), through the other node.
        header, init, fragment = _live_bytes(other.port, camera_id, token)
        assert init[4:8] == b"ftyp" and fragment[4:8] in (b"moof", b"styp"), (init[:8], fragment[:8])
        assert header["width"] and header["codec"]
        # One audit record for the viewing (written by the holder), naming the operator.
        wait_until(lambda c=camera_id, b=before: _live_views(db, c) == b + 1, 10, "the viewing audited")
        assert _live_views(db, camera_id) == before + 1

        # Live HLS: the playlist, its init segment and a media segment, all through the other node.
        http = httpx.Client(base_url=f"http://127.0.0.1:{other.port}", timeout=30,
                            headers={"Authorization": f"Bearer {token}"})
        playlist = http.get(f"/api/v1/cameras/{camera_id}/live.m3u8")
        assert playlist.status_code == 200, playlist.text
        lines = playlist.text.splitlines()
        assert lines[0] == "#EXTM3U"
        segment = next(line for line in lines if line and not line.startswith("#"))
        init_mp4 = http.get(f"/api/v1/cameras/{camera_id}/live/init.mp4")
        assert init_mp4.status_code == 200 and init_mp4.content[4:8] == b"ftyp"
        media = http.get(segment if segment.startswith("/") else f"/api/v1/cameras/{camera_id}/live/{segment}")
        assert media.status_code == 200 and len(media.content) > 1000, media.status_code
        snapshot = http.get(f"/api/v1/cameras/{camera_id}/snapshot.jpg")
        assert snapshot.status_code == 200 and snapshot.content[:2] == b"\xff\xd8"
        health = http.get(f"/api/v1/cameras/{camera_id}/health")
        assert health.status_code == 200 and health.json()["state"] == "recording"
        http.close()

    # Without a grant: 404 on every node, for the camera each holds and the one the other holds.
    for name, node in nodes.items():
        token = _token(node, STRANGER)
        for camera_id in held:
            for path in ("live.m3u8", "live/init.mp4", "live/0.m4s", "snapshot.jpg", "health"):
                response = httpx.get(f"http://127.0.0.1:{node.port}/api/v1/cameras/{camera_id}/{path}",
                                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
                assert response.status_code == 404, (name, camera_id, path, response.status_code)
            assert _refused(node.port, camera_id, token) in (4404, 403), (name, camera_id)
            anonymous = httpx.get(f"http://127.0.0.1:{node.port}/api/v1/cameras/{camera_id}/live.m3u8",
                                  timeout=30)
            assert anonymous.status_code == 401
