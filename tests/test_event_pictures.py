"""Event pictures shared by the nodes of a cluster (docs/storage.md, "Event pictures"), on both backends with a real
SeaweedFS S3 server: a detection stored by a worker (its own data directory, S3 configured) goes straight to the
object store and is served byte-identical by another node (another data directory, the same database); retention
deletes the objects; a put that fails keeps the picture locally until a retry stores it. And the analysis leases'
metrics of a node (``kuzet_cluster_analysis_*``)."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from kuzet.api.app import create_app
from kuzet.config import S3Config, load_settings
from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.audit import SYSTEM
from kuzet.services.cluster.keeper import LeaseKeeper
from kuzet.services.cluster.leases import ANALYSE
from kuzet.services.operations.analysis import AnalysisService, EventRetentionService
from kuzet.services.operations.observations import Observation
from kuzet.services.operations.pictures import LocalPictures, SharedPictures, event_pictures
from kuzet.services.recording.metrics import render
from kuzet.services.recording.objectstore import ObjectStore
from kuzet.services.recording.seaweed import SeaweedServer
from kuzet.store.db import utcnow
from kuzet.store.models.operations import Event
from tests.conftest import login, make_installation
from tests.storage_support import s3_env, seaweed  # noqa: F401 (the fixture)
from tests.test_cluster_leases import LEASE, _cameras

PASSWORD = "a-long-enough-password"


def _jpeg(size: int) -> bytes:
    """Bytes that only a byte-for-byte copy reproduces (a JPEG's markers around random data)."""
    return b"\xff\xd8\xff\xe0" + os.urandom(size) + b"\xff\xd9"


@dataclass
class Site:
    worker: Installation
    api: Installation
    bucket: str


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path, seaweed: SeaweedServer) -> Iterator[Site]:  # noqa: F811
    """A worker and an API node: separate data directories, one database, one bucket."""
    worker, schema = make_installation(request.param, tmp_path / "worker")
    bucket = f"kz-{uuid.uuid4().hex[:16]}"
    shared = {**s3_env(seaweed, bucket), "KUZET_DATABASE_URL": worker.settings.db_url,
              "KUZET_KEYS_DIR": str(worker.settings.keys_path)}
    worker.settings = load_settings(environ={"KUZET_DATA_DIR": str(tmp_path / "worker"), **shared})
    api = Installation.open(settings=load_settings(environ={"KUZET_DATA_DIR": str(tmp_path / "api"), **shared}))
    try:
        yield Site(worker, api, bucket)
    finally:
        api.close()
        worker.close()
        if schema:
            schema.drop()


def _objects(inst: Installation) -> dict[str, int]:
    s3 = inst.settings.storage.s3
    return ObjectStore(s3.model_copy(update={"prefix": s3.events_prefix})).list_sizes()


def test_a_workers_pictures_are_served_by_another_node_and_pruned_from_s3(site: Site) -> None:
    camera = _cameras(site.worker, 1)[0]
    snapshot, crop = _jpeg(180_000), _jpeg(6_000)
    old = utcnow() - timedelta(days=400)
    analysis = AnalysisService(site.worker)  # the worker's own code path (EventStore.apply through _persist)
    assert isinstance(analysis.pictures, SharedPictures)
    analysis._persist(Observation(camera, "plate", "start", "p1", old, plate="123ABC02", label="plate",
                                  snapshot=snapshot, crop=crop))
    analysis._persist(Observation(camera, "plate", "end", "p1", old, end=old + timedelta(seconds=2),
                                  plate="123ABC02", label="plate"))
    with site.worker.db.session() as s:
        event = s.query(Event).filter(Event.camera_id == camera).one()
        event_id, keys = event.id, (event.snapshot, event.crop)
    prefix = site.worker.settings.storage.s3.events_prefix
    assert _objects(site.worker) == {f"{prefix}{keys[0]}": len(snapshot), f"{prefix}{keys[1]}": len(crop)}
    assert not list(site.worker.settings.events_path.rglob("*.jpg"))  # straight to S3, nothing kept locally
    assert not site.api.settings.events_path.exists() or not list(site.api.settings.events_path.rglob("*.jpg"))

    with site.api.db.session() as s:
        accounts.create_user(s, SYSTEM, "chief", PASSWORD, "platform_admin")
    with TestClient(create_app(site.api)) as client:
        headers = login(client, "chief", PASSWORD)
        for which, body in (("snapshot", snapshot), ("crop", crop)):
            r = client.get(f"/api/v1/events/{event_id}/{which}.jpg", headers=headers)
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
            assert r.content == body  # byte-identical, read from the object store by the other node

        # Retention, run by the API node, deletes the rows and the objects (DeleteObjects).
        assert EventRetentionService(site.api).run_once() == 1
        assert _objects(site.worker) == {}
        assert client.get(f"/api/v1/events/{event_id}/snapshot.jpg", headers=headers).status_code == 404


def test_a_failed_put_keeps_the_picture_locally_until_a_retry_stores_it(tmp_path: Path,
                                                                        seaweed: SeaweedServer) -> None:  # noqa: F811
    config = S3Config(endpoint=seaweed.endpoint, bucket=f"kz-{uuid.uuid4().hex[:16]}",
                      access_key=seaweed.access_key, secret_key=seaweed.secret_key, timeout=2)
    away = config.model_copy(update={"endpoint": "http://127.0.0.1:9"})  # nothing listens there
    worker = SharedPictures(tmp_path / "worker", ObjectStore(away), config.events_prefix)
    data = _jpeg(20_000)
    at = utcnow()
    key = worker.save(7, at, "1.jpg", data)
    assert key == f"7/{at:%Y-%m-%d}/1.jpg" and worker.pending == 1 and worker.failed_puts == 1
    assert (tmp_path / "worker" / key).read_bytes() == data and worker.open(key) == data  # served from the disk
    second = worker.save(7, at, "2.jpg", data)  # the store was away a moment ago: no put tried, kept locally
    assert worker.failed_puts == 1 and worker.pending == 2

    reader = SharedPictures(tmp_path / "api", ObjectStore(config), config.events_prefix)
    assert reader.open(key) is None  # not in the store yet
    worker.objects = ObjectStore(config)  # the store answers again
    assert worker.retry() == 2 and worker.pending == 0
    assert not list((tmp_path / "worker").rglob("*.jpg"))  # local copies go once stored
    assert reader.open(key) == data and reader.open(second) == data
    reader.delete([key, second, None])
    assert reader.open(key) is None and reader.open(second) is None


def test_pictures_kept_locally_are_uploaded_after_a_restart(tmp_path: Path,
                                                            seaweed: SeaweedServer) -> None:  # noqa: F811
    """The retry queue lives in memory; what survives a restart is the events directory: the next process's first
    retry finds the pictures waiting there and stores them (a picture half-written by a crash is not taken)."""
    config = S3Config(endpoint=seaweed.endpoint, bucket=f"kz-{uuid.uuid4().hex[:16]}",
                      access_key=seaweed.access_key, secret_key=seaweed.secret_key, timeout=2)
    away = config.model_copy(update={"endpoint": "http://127.0.0.1:9"})  # nothing listens there
    before = SharedPictures(tmp_path / "worker", ObjectStore(away), config.events_prefix)
    at = utcnow()
    pictures = {before.save(3, at, f"{k}.jpg", data): data for k, data in enumerate([_jpeg(5_000), _jpeg(7_000)])}
    assert before.pending == 2 and before.retry() == 0  # the store is still away: both wait on the disk
    (tmp_path / "worker" / f"3/{at:%Y-%m-%d}/9.tmp").write_bytes(b"half")  # a crash in the middle of a write

    after = SharedPictures(tmp_path / "worker", ObjectStore(config), config.events_prefix)  # the next process
    assert after.pending == 0  # nothing known before its first retry looked through the events directory
    assert after.retry() == 2 and after.pending == 0 and after.uploaded == 2
    assert not list((tmp_path / "worker").rglob("*.jpg"))  # each local copy went once stored
    reader = SharedPictures(tmp_path / "api", ObjectStore(config), config.events_prefix)
    assert {key: reader.open(key) for key in pictures} == pictures  # byte for byte, from the store


def test_local_pictures_stay_files_in_the_events_directory(inst: Installation) -> None:
    pictures = event_pictures(inst.settings)
    assert isinstance(pictures, LocalPictures) and not isinstance(pictures, SharedPictures)
    at = utcnow()
    key = pictures.save(3, at, "5.jpg", b"\xff\xd8x\xff\xd9")
    assert (inst.settings.events_path / "3" / f"{at:%Y-%m-%d}" / "5.jpg").read_bytes() == b"\xff\xd8x\xff\xd9"
    assert pictures.open(key) == b"\xff\xd8x\xff\xd9" and pictures.open("../../kuzet.db") is None
    pictures.delete([key])
    assert pictures.open(key) is None


def test_analysis_lease_metrics_of_a_node(inst: Installation) -> None:
    cameras = _cameras(inst, 4)
    inst.settings.cluster = LEASE.model_copy(update={"node": "work-1"})
    inst.settings.operations.enabled = True
    analysis = AnalysisService(inst)
    assert analysis.keeper is not None
    inst.running.analysis = analysis
    keeper: LeaseKeeper = analysis.keeper
    assert keeper.purpose == ANALYSE
    keeper.recording = lambda: set(keeper.tokens)
    keeper.pass_once()
    analysis.loops = {c: (None, None) for c in cameras[:3]}  # three loops running (the fourth not yet started)
    text = render(inst).decode()

    def value(name: str) -> float:
        match = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
        assert match, name
        return float(match.group(1))

    assert value("kuzet_cluster_analysis_cameras_held") == 4
    assert value("kuzet_cluster_analysis_cameras_analysed") == 3
    assert value("kuzet_cluster_analysis_lease_age_seconds") >= 0
    assert value("kuzet_cluster_analysis_live_nodes") == 1 and value("kuzet_cluster_analysis_fair_share") == 4
    assert value("kuzet_cluster_analysis_lease_failures") == 0
    assert 'kuzet_cluster_analysis_node_info{node="work-1"} 1.0' in text
    assert "kuzet_cluster_cameras_held" not in text  # this node records nothing: no recording lease metrics
    analysis.loops = {}
