"""Analysis on worker nodes (docs/scale.md, "Analysis on workers"): one recorder node (`kuzet serve --role
api,recorder`) and two worker nodes (`kuzet serve --role worker`) on one PostgreSQL database and one NATS server, with
simulated cameras whose picture moves every five seconds (`kuzet sim`, the ``bursts`` scene). The workers share the
cameras' analysis through analysis leases and read each camera's live stream from the recorder node with the shared
``[cluster] secret``: every camera's motion events appear, each named by the worker holding the camera's analysis
lease. After `kill -9` of one worker, the other takes its cameras' analysis and their events go on."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from kuzet.services.simulator.clips import ensure_clip
from kuzet.store.db import Database, utcnow
from kuzet.store.models.cluster import AnalysisLease
from kuzet.store.models.operations import Event
from tests.faults_support import Serve, Simulator, free_port, wait_until
from tests.test_cluster_failover import ClusterSite, _holders, _kill, cluster_site  # noqa: F401 - the fixture
from tests.test_faults import FLAP_CLIP, PASSWORD, USER, _site

pytestmark = pytest.mark.media

CAMERAS = 3
SETTLE_SECONDS = 5  # after the spread is seen: a worker that gave a camera back has finished its fragments in hand
SECRET = "workers-test-cluster-secret-0123456789"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(CAMERAS, ensure_clip(FLAP_CLIP), scenes={i: "bursts" for i in range(1, CAMERAS + 1)})
    yield simulator
    simulator.close()


def _analysers(db: Database) -> dict[int, str]:
    with db.session() as s:
        now = utcnow()
        return {c: n for c, n in s.execute(select(AnalysisLease.camera_id, AnalysisLease.node)
                                           .where(AnalysisLease.expires_at > now))}


def _events(db: Database, since) -> list[tuple[int, str | None]]:  # noqa: ANN001
    """(camera, the node that analysed it) of the motion events that started after ``since``."""
    with db.session() as s:
        rows = s.scalars(select(Event).where(Event.kind == "motion", Event.start_at > since))
        return [(e.camera_id, (e.details or {}).get("node")) for e in rows]


def test_workers_share_analysis_and_take_over_a_killed_one(tmp_path: Path, sim: Simulator,
                                                           cluster: ClusterSite) -> None:
    schema, env, nodes, db = cluster.schema, cluster.env, cluster.nodes, cluster.db
    ids = _site(tmp_path / "rec", schema.url,
                {f"cam{i}": (sim.url(i), sim.url(i, "sub")) for i in range(1, CAMERAS + 1)}, alarms=True)
    for name in ("w1", "w2"):  # the same keys and audit anchor on every node
        shutil.copytree(tmp_path / "rec" / "keys", tmp_path / name / "keys")
        shutil.copy(tmp_path / "rec" / "audit.anchor", tmp_path / name / "audit.anchor")
    port = free_port()
    nodes["rec"] = Serve(tmp_path / "rec", {**env, "KUZET_CLUSTER__NODE": "rec", "KUZET_CLUSTER__SECRET": SECRET,
                                            "KUZET_CLUSTER__ADVERTISE_URL": f"http://127.0.0.1:{port}"},
                         USER, PASSWORD, port=port, args=["--role", "api,recorder"])
    for name in ("w1", "w2"):
        nodes[name] = Serve(tmp_path / name, {**env, "KUZET_CLUSTER__NODE": f"work-{name[1]}",
                                              "KUZET_CLUSTER__SECRET": SECRET, "KUZET_OPERATIONS__ENABLED": "true",
                                              "KUZET_OPERATIONS__WORKERS": "1"},
                            USER, PASSWORD, args=["--role", "worker"])

    # Spread: both workers analyse part of the cameras; the recorder node records them all and analyses none.
    wait_until(lambda: set(_analysers(db)) == set(ids.values())
               and set(_analysers(db).values()) == {"work-1", "work-2"}, 90, "analysis spread over both workers")
    wait_until(lambda: set(_holders(db)) == set(ids.values()), 60, "every camera recorded")
    assert set(_holders(db).values()) == {"rec"}
    analysers = _analysers(db)
    # The first worker up may have held every camera until the second joined and it gave some back (and finished
    # the fragments in hand): only events starting after the spread settled belong to the lease now held.
    settled = utcnow() + timedelta(seconds=SETTLE_SECONDS)

    # Every camera's motion events appear, written by the worker holding its analysis lease.
    def every_camera_analysed() -> bool:
        return {c for c, _n in _events(db, settled)} == set(ids.values())

    wait_until(every_camera_analysed, 120, "motion events of every camera")
    now_held = _analysers(db)  # a lease late to renew on a loaded machine may have moved since: either holder
    for camera_id, node in _events(db, settled):
        assert node in {analysers[camera_id], now_held.get(camera_id)}, (camera_id, node, analysers, now_held)

    # kill -9 of a worker: the other takes its cameras' analysis, and their events go on from it.
    victim = "w1" if list(analysers.values()).count("work-1") else "w2"
    survivor = "work-2" if victim == "w1" else "work-1"
    moved = sorted(c for c, n in analysers.items() if n == f"work-{victim[1]}")
    killed_at = utcnow()
    _kill(nodes[victim])
    wait_until(lambda: _analysers(db) == {c: survivor for c in ids.values()}, 60, "the survivor analysing all")
    taken_at = utcnow()

    def moved_analysed() -> bool:
        return all(any(c == m and n == survivor for c, n in _events(db, killed_at)) for m in moved)

    wait_until(moved_analysed, 90, "events of the moved cameras from the survivor")
    print(f"\nANALYSIS TAKEOVER after kill -9 of {victim} (cameras {moved}): analysis leases all on {survivor} "
          f"{(taken_at - killed_at).total_seconds():.1f} s after the kill, events of every moved camera from it "
          f"{(utcnow() - killed_at).total_seconds():.1f} s after the kill (as observed by the test)")
    assert nodes["rec"].alive() and nodes[{"work-1": "w1", "work-2": "w2"}[survivor]].alive()
