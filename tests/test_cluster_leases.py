"""Camera leases between recorder nodes (docs/scale.md), on both backends: fair shares, giving back when a node
joins, takeover of a silent node's cameras only after its leases ended, fencing tokens that only grow, and a node
that comes back after losing its leases stops writing."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from kuzet.config import ClusterConfig
from kuzet.installation import Installation
from kuzet.services.audit import SYSTEM
from kuzet.services.cameras import create_camera
from kuzet.services.cluster.keeper import LeaseKeeper
from kuzet.services.cluster.status import cluster_status
from kuzet.services.places import create_place
from kuzet.store.db import utcnow
from kuzet.store.models.cluster import CameraLease
from kuzet.store.models.recording import Recording

LEASE = ClusterConfig(enabled=True, lease_seconds=3, renew_seconds=0.5, margin_seconds=1)


def _cameras(inst: Installation, count: int) -> list[int]:
    with inst.db.session() as s:
        district = create_place(s, SYSTEM, "district", "lease district")
        return [create_camera(s, SYSTEM, inst.keys, name=f"lease cam {i}", place_id=district.id,
                              main_url=f"rtsp://127.0.0.1:9/cam{i}").id for i in range(4)]


def _keeper(inst: Installation, node: str) -> LeaseKeeper:
    keeper = LeaseKeeper(inst.db, LEASE.model_copy(update={"node": node}))
    keeper.recording = lambda: set(keeper.tokens) - keeper.releasing  # a recorder that stops at once
    return keeper


def _tokens(inst: Installation) -> dict[int, tuple[str | None, int]]:
    with inst.db.session() as s:
        return {r.camera_id: (r.node, r.token) for r in s.scalars(select(CameraLease))}


def test_leases_spread_move_and_fence(inst: Installation) -> None:
    cameras = _cameras(inst, 4)
    a, b = _keeper(inst, "node-a"), _keeper(inst, "node-b")
    first = a.pass_once()
    assert sorted(first.held) == cameras and first.share == 4  # alone: every camera
    assert all(a.may_write(c) and a.holds(c) for c in cameras)
    assert b.pass_once().held == {}  # b joins: nothing free yet
    a.pass_once()  # a sees two live nodes: gives back two, once its recorder stopped them
    assert len(a.releasing) == 2
    given = set(a.releasing)
    assert not any(a.holds(c) for c in given) and all(a.may_write(c) for c in given)  # still its until stopped
    a.pass_once()
    assert set(a.tokens) == set(cameras) - given and not a.releasing
    taken = b.pass_once()
    assert {t.camera_id for t in taken.taken} == given
    assert all(t.previous_node == "node-a" and t.token == 2 for t in taken.taken)  # the take raised the token
    assert b.moved_from(next(iter(given))) == "node-a"
    for _ in range(2):  # stable: nobody gives back or takes any more
        assert not a.pass_once().taken and not b.pass_once().taken
    assert not a.releasing and not b.releasing
    before = _tokens(inst)

    # a goes silent, leaving a file open. Its leases last; b takes nothing before they end.
    kept = sorted(a.tokens)
    with inst.db.session() as s:
        s.add(Recording(camera_id=kept[0], path="x.mp4", start_at=utcnow() - timedelta(seconds=5), end_at=utcnow(),
                        state="open", node="node-a", lease_token=a.token(kept[0])))
    assert not b.pass_once().taken
    deadline = time.monotonic() + 30
    while a.may_write(kept[0]):  # a stops writing before its lease could end...
        assert time.monotonic() < deadline
        assert not b.pass_once().taken  # ...and so before b may take the camera
        time.sleep(0.2)
    while len(b.tokens) < 4:  # once a's leases and heartbeat ended, b takes all four
        assert time.monotonic() < deadline
        b.pass_once()
        time.sleep(0.2)
    after = _tokens(inst)
    assert all(after[c] == ("node-b", before[c][1] + 1) for c in kept)  # fencing token: one higher than a's
    assert all(after[c] == before[c] for c in given)
    with inst.db.session() as s:  # a's open file was closed by the take (a writes nothing more)
        assert s.scalar(select(Recording.state).where(Recording.path == "x.mp4")) == "closed"

    # a wakes up: its renewal finds the leases gone and it stops recording them.
    back = a.pass_once()
    assert sorted(back.lost) == kept and not a.tokens and not any(a.may_write(c) for c in kept)
    assert not back.taken  # b holds its fair share (2 live nodes again: share 2, b has 4)
    b.pass_once()
    assert len(b.releasing) == 2  # b gives two back to the node that returned

    status = cluster_status(inst.db, LEASE.lease_seconds)
    assert {n.node for n in status.nodes} == {"node-a", "node-b"}
    assert sum(n.cameras for n in status.nodes) == 4


def test_clean_leave_frees_the_cameras_at_once(inst: Installation) -> None:
    cameras = _cameras(inst, 4)
    a, b = _keeper(inst, "node-a"), _keeper(inst, "node-b")
    a.pass_once()
    a.book.leave(set(a.tokens))
    taken = b.pass_once()
    assert sorted(taken.held) == cameras and {t.previous_node for t in taken.taken} == {"node-a"}


def test_cluster_status_command(inst: Installation) -> None:
    import json

    from typer.testing import CliRunner

    from kuzet.cli.main import app

    _cameras(inst, 4)
    _keeper(inst, "node-a").pass_once()
    env = {"KUZET_DATABASE_URL": inst.settings.database_url} if inst.settings.database_url else {}
    runner = CliRunner()
    result = runner.invoke(app, ["cluster", "status", "--json", "--data", str(inst.settings.data_dir)], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["cameras_enabled"] == 4 and report["cameras_unheld"] == 0
    assert [(n["node"], n["alive"], n["cameras"]) for n in report["nodes"]] == [("node-a", True, 4)]
    table = runner.invoke(app, ["cluster", "status", "--data", str(inst.settings.data_dir)], env=env)
    assert table.exit_code == 0 and "node-a" in table.output and "alive" in table.output


def test_ready_names_what_is_not_reachable(inst: Installation, client) -> None:  # noqa: ANN001
    import shutil

    response = client.get("/api/v1/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {"ready": True, "checks": {"database": "ok", "bus": "ok", "storage": "ok"},
                               "failed": []}
    path = inst.settings.recordings_path
    shutil.rmtree(path, ignore_errors=True)
    path.write_text("not a directory")  # the recordings volume is unusable
    try:
        response = client.get("/api/v1/ready")
        assert response.status_code == 503
        assert response.json()["failed"] == ["storage"]
        assert client.get("/api/v1/health").status_code == 200  # alive, just not ready
    finally:
        path.unlink()


def test_holder_url_names_the_node_and_the_url_it_advertises(inst: Installation) -> None:
    """What a node looks up before passing a live request on (api/cluster_routes.py)."""
    from kuzet.services.cluster.leases import holder_url

    cameras = _cameras(inst, 4)
    assert holder_url(inst.db, cameras[0]) == (None, None)  # nobody holds it yet
    a = LeaseKeeper(inst.db, LEASE.model_copy(update={"node": "node-a", "advertise_url": "http://10.0.0.3:8080/"}))
    a.recording = lambda: set(a.tokens) - a.releasing
    a.pass_once()
    assert holder_url(inst.db, cameras[0]) == ("node-a", "http://10.0.0.3:8080")  # kept without the trailing /
    assert cluster_status(inst.db, LEASE.lease_seconds).nodes[0].advertise_url == "http://10.0.0.3:8080"
    b = _keeper(inst, "node-b")  # advertises nothing
    b.pass_once()
    a.pass_once()
    a.pass_once()
    b.pass_once()
    by_b = [c for c in cameras if c in b.tokens]
    assert by_b and holder_url(inst.db, by_b[0]) == ("node-b", None)
    with pytest.raises(ValidationError, match="advertise_url"):
        ClusterConfig(enabled=True, advertise_url="10.0.0.3:8080")
