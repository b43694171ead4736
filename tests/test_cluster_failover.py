"""Two recorder nodes (`kuzet serve` processes with ``[cluster] enabled``) on one PostgreSQL database and one NATS
server, recording simulated cameras (`kuzet sim`): the cameras spread over both; after `kill -9` of one, its cameras
resume on the other with one gap each (reason "recorder moved", shorter than 30 s), and no camera's files of the two
nodes overlap in time. Each node has its own data directory (its local disk); they share the keys."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from kuzet.services.recording.ffmpeg import RECORDER_MOVED
from kuzet.services.simulator.clips import ensure_clip
from kuzet.store.db import Database, utcnow
from kuzet.store.models.cluster import CameraLease
from kuzet.store.models.recording import Gap, Recording
from tests.conftest import NATS_URL, PostgresSchema, _unavailable
from tests.faults_support import Serve, Simulator, wait_until
from tests.test_faults import FLAP_CLIP, PASSWORD, USER, _site

pytestmark = pytest.mark.media

CAMERAS = 4
NODE_ENV = {"KUZET_RECORDER__FILE_SECONDS": "5", "KUZET_STORAGE__MIN_FREE_BYTES": "0",
            "KUZET_OPERATIONS__ENABLED": "false", "KUZET_CLUSTER__ENABLED": "true"}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(CAMERAS, ensure_clip(FLAP_CLIP))
    yield simulator
    simulator.close()


@dataclass
class ClusterSite:
    """One PostgreSQL schema and the NATS server that the nodes of a test share, and the nodes it started."""

    schema: PostgresSchema
    env: dict[str, str]
    db: Database
    nodes: dict[str, Serve] = field(default_factory=dict)


@pytest.fixture(name="cluster")
def cluster_site() -> Iterator[ClusterSite]:
    try:
        schema = PostgresSchema()
    except Exception as exc:  # noqa: BLE001
        _unavailable("PostgreSQL", exc)
    if not NATS_URL:
        _unavailable("NATS", RuntimeError("KUZET_TEST_NATS_URL is not set"))
    site = ClusterSite(schema, {**NODE_ENV, "KUZET_DATABASE_URL": schema.url, "KUZET_EVENTS_URL": NATS_URL},
                       Database(schema.url))
    try:
        yield site
    finally:
        for serve in site.nodes.values():
            serve.close()
        site.db.engine.dispose()
        schema.drop()


def _holders(db: Database) -> dict[int, str]:
    with db.session() as s:
        now = utcnow()
        return {c: n for c, n in s.execute(select(CameraLease.camera_id, CameraLease.node)
                                           .where(CameraLease.expires_at > now))}


def _rows(db: Database) -> list[Recording]:
    with db.session() as s:
        return list(s.scalars(select(Recording).order_by(Recording.camera_id, Recording.start_at)))


def _kill(serve: Serve) -> None:
    """kill -9 of the node and of its ffmpeg children, as a machine that dies."""
    children = serve.children()
    os.killpg(serve.pid, signal.SIGKILL)
    for pid in children:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    assert serve.proc is not None
    serve.proc.wait(10)
    serve.proc = None


def test_two_recorders_share_cameras_and_take_over_a_killed_one(tmp_path: Path, sim: Simulator,
                                                                cluster: ClusterSite) -> None:
    schema, env, nodes, db = cluster.schema, cluster.env, cluster.nodes, cluster.db
    ids = _site(tmp_path / "a", schema.url, {f"cam{i}": (sim.url(i), None) for i in range(1, CAMERAS + 1)})
    shutil.copytree(tmp_path / "a" / "keys", tmp_path / "b" / "keys")  # the same keys on every node
    shutil.copy(tmp_path / "a" / "audit.anchor", tmp_path / "b" / "audit.anchor")  # and the same audit anchor
    for name in ("a", "b"):
        nodes[name] = Serve(tmp_path / name, {**env, "KUZET_CLUSTER__NODE": f"node-{name}"}, USER, PASSWORD)

    # Spread: two cameras each, every camera recording on the node that holds it.
    wait_until(lambda: sorted(_holders(db).values()) == ["node-a"] * 2 + ["node-b"] * 2, 90, "an even spread")
    held = _holders(db)
    for camera_id, node in held.items():
        nodes[node[-1]].wait_recording(camera_id, timeout=60)
    assert set(held) == set(ids.values())

    victim = "a"
    moved = sorted(c for c, n in held.items() if n == "node-a")
    kept = sorted(c for c, n in held.items() if n == "node-b")
    killed_at = utcnow()
    _kill(nodes[victim])

    def resumed() -> bool:
        rows = _rows(db)
        return all(any(r.camera_id == c and r.node == "node-b" and r.start_at > killed_at for r in rows)
                   for c in moved)

    wait_until(resumed, 60, "the killed node's cameras recording on the other")
    for camera_id in moved:
        nodes["b"].wait_recording(camera_id, timeout=30)
    assert _holders(db) == {c: "node-b" for c in ids.values()}

    rows = _rows(db)
    with db.session() as s:
        gaps = list(s.scalars(select(Gap).where(Gap.start_at > killed_at - timedelta(seconds=30))))
    figures = {}
    for camera_id in moved:
        last_a = max(r.end_at for r in rows if r.camera_id == camera_id and r.node == "node-a")
        first_b = min(r.start_at for r in rows if r.camera_id == camera_id and r.node == "node-b"
                      and r.start_at > killed_at)
        figures[camera_id] = round((first_b - last_a).total_seconds(), 1)
        assert figures[camera_id] < 30, (camera_id, last_a, first_b)
        mine = [g for g in gaps if g.camera_id == camera_id and g.start_at >= last_a - timedelta(seconds=1)]
        assert len(mine) == 1 and mine[0].reason == RECORDER_MOVED, [(g.start_at, g.reason) for g in mine]
        assert mine[0].message == "recorder moved from node-a"
    print(f"\nFAILOVER recorded gap per moved camera, seconds: {figures}")
    assert not [g for g in gaps if g.camera_id in kept and g.start_at > killed_at]  # b's own cameras went on
    # Never two writers: per camera, the files of the two nodes do not overlap; the fencing token grew.
    for camera_id in ids.values():
        a_rows = [r for r in rows if r.camera_id == camera_id and r.node == "node-a"]
        b_rows = [r for r in rows if r.camera_id == camera_id and r.node == "node-b"]
        for x in a_rows:
            for y in b_rows:
                assert x.end_at <= y.start_at or y.end_at <= x.start_at, (camera_id, x.path, y.path)
                if y.start_at > x.start_at:
                    assert y.lease_token > x.lease_token
    assert all(r.node in ("node-a", "node-b") and r.lease_token for r in rows)
    assert nodes["b"].stopped_cleanly()

