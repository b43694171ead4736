"""An object store that accepts connections and never answers must not cost a recorder node its cameras
(docs/scale.md, issue 14): the lease keeper renews on its own thread, the recorder keeps writing and indexing, and
the uploader fails fast and backs off instead of piling up requests — even while everything else the node hands to
the event loop's default executor (exports, archive reads from the store) hangs on the store for its whole timeout."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kuzet.config import S3Config
from kuzet.installation import Installation
from kuzet.services.recording import ffmpeg as ff
from kuzet.services.recording.objectstore import ObjectStore, ObjectStoreError
from kuzet.services.recording.runtime import RecorderService, RetentionService, UploaderService
from kuzet.store.db import EventLoopBlocked, serving_loop
from kuzet.store.models.recording import Gap, Recording
from tests.recording_support import ThreadedSim
from tests.test_recording_engine import _cameras, _installation, _wait_recording

pytestmark = pytest.mark.media
CAMERAS = 2
READERS = 40  # more than the default executor's threads (min(32, cores + 4))


class SilentStore:
    """A TCP server on loopback that accepts every connection, reads nothing and answers nothing: an S3 endpoint
    hung mid-restart or behind a dead proxy (the worst case: a refused connection at least fails at once)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the sender blocks soon
            self.accepted += 1
            self._held.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def silent_store() -> Iterator[SilentStore]:
    store = SilentStore()
    yield store
    store.close()


@pytest.fixture(scope="module")
def sim() -> Iterator[ThreadedSim]:
    server = ThreadedSim(CAMERAS)
    yield server
    server.close()


def _node(tmp_path: Path, backend: str, store: SilentStore) -> Installation:
    return _installation(
        tmp_path, backend, KUZET_STORAGE__BACKEND="s3", KUZET_STORAGE__S3__ENDPOINT=store.endpoint,
        KUZET_STORAGE__S3__BUCKET="kuzet-silent", KUZET_STORAGE__S3__ACCESS_KEY="kuzet",
        KUZET_STORAGE__S3__SECRET_KEY="not-a-real-secret", KUZET_STORAGE__S3__INTERVAL="0.5",
        KUZET_STORAGE__S3__TIMEOUT="2", KUZET_STORAGE__S3__CONNECT_TIMEOUT="1",
        KUZET_CLUSTER__ENABLED="true", KUZET_CLUSTER__NODE="rec-silent", KUZET_CLUSTER__LEASE_SECONDS="4",
        KUZET_CLUSTER__RENEW_SECONDS="0.5", KUZET_CLUSTER__MARGIN_SECONDS="1")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_silent_object_store_never_costs_the_node_its_leases(tmp_path: Path, sim: ThreadedSim, backend: str,
                                                               silent_store: SilentStore) -> None:
    silent_reads = SilentStore()
    inst = _node(tmp_path, backend, silent_store)
    cams = _cameras(inst, [sim.url(k) for k in range(1, CAMERAS + 1)])
    seen: dict = {}

    async def run() -> None:
        node = RecorderService(inst)
        uploader, retention = UploaderService(inst), RetentionService(inst, interval=1.0)
        keeper = node.keeper
        assert keeper is not None
        pass_threads: set[str] = set()
        run_pass = keeper.book.run_pass

        def traced(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            pass_threads.add(threading.current_thread().name)
            return run_pass(*args, **kwargs)

        keeper.book.run_pass = traced  # type: ignore[method-assign]
        upload_passes: list[str | None] = []
        run_once = uploader.uploader.run_once

        def counted():  # noqa: ANN202
            report = run_once()
            upload_passes.append(report.error)
            return report

        uploader.run_once = counted  # type: ignore[method-assign]
        uploader.uploader._bucket_ready = True  # the bucket was there before the store went silent
        await node.start()
        await uploader.start()
        await retention.start()
        # The readers' requests go to a second silent endpoint: the first counts the uploader's alone.
        store = ObjectStore(inst.settings.storage.s3.model_copy(update={"endpoint": silent_reads.endpoint}))
        stop = asyncio.Event()

        async def reader() -> None:  # a viewer playing minutes that live only in the store
            while not stop.is_set():
                with contextlib.suppress(ObjectStoreError):
                    await asyncio.to_thread(store.get_range, "recordings/1/gone.mp4", 0, 1 << 20)

        readers = [asyncio.create_task(reader()) for _ in range(READERS)]
        try:
            for cam in cams:
                await _wait_recording(node.recorder, cam, timeout=60)
            with inst.db.session() as s:
                closed_before = s.scalar(select(func.count()).select_from(Recording)
                                         .where(Recording.state == "closed"))
            # Several lease lengths while the store hangs every request and the default executor is full of them.
            await asyncio.sleep(4 * inst.settings.cluster.lease_seconds)
            seen["lost"], seen["failures"] = keeper.lost_total, keeper.failures
            seen["held"] = sorted(c for c in cams if keeper.holds(c))
            seen["health"] = [node.recorder.health(c)["state"] for c in cams]
            await node.recorder.index.flush()
            with inst.db.session() as s:
                seen["closed_more"] = s.scalar(select(func.count()).select_from(Recording)
                                               .where(Recording.state == "closed")) - closed_before
                seen["moved_gaps"] = s.scalar(select(func.count()).select_from(Gap)
                                              .where(Gap.reason == ff.RECORDER_MOVED))
            seen["upload_passes"] = list(upload_passes)
            seen["failing"] = uploader.uploader.failing_since is not None
        finally:
            stop.set()
            for task in readers:
                task.cancel()
            await retention.stop()
            await uploader.stop()
            await node.stop()
        seen["pass_threads"] = pass_threads
        seen["requests"] = silent_store.accepted

    try:
        asyncio.run(run())
    finally:
        inst.close()
        silent_reads.close()
    workers = inst.settings.storage.s3.upload_workers
    failed = [e for e in seen["upload_passes"] if e is not None]
    assert seen["failing"] and failed, seen  # every pass with a file to upload failed (passes with none ask nothing)
    # The leases never waited on the store's threads: renewed on the keeper's own, never lost.
    assert seen["pass_threads"] and all(t.startswith("kuzet-lease") for t in seen["pass_threads"]), seen
    assert seen["lost"] == 0 and seen["failures"] == 0 and seen["moved_gaps"] == 0, seen
    assert seen["held"] == sorted(cams) and seen["health"] == ["recording"] * CAMERAS, seen
    assert seen["closed_more"] >= CAMERAS, seen  # files went on closing and being indexed (waiting on the disk)
    # Failing fast: one attempt per request (no retries in the client), at most ``workers`` puts per failed pass
    # (one more pass may have been under way when the node stopped), and the passes back off.
    assert 0 < seen["requests"] <= (len(failed) + 1) * workers, seen


def test_no_object_store_request_on_the_servers_event_loop() -> None:
    """A request on the loop the server runs on is refused at once (it would hold the whole node for a timeout);
    the same request from a thread goes out."""
    store = ObjectStore(S3Config(endpoint="http://127.0.0.1:9", bucket="kuzet-loop", access_key="kuzet",
                                 secret_key="not-a-real-secret", timeout=1))  # nothing listens on port 9

    async def scenario() -> None:
        serving_loop(asyncio.get_running_loop())
        with pytest.raises(EventLoopBlocked):
            store.reachable()
        with pytest.raises(EventLoopBlocked):
            store.get("recordings/1/x.mp4")
        assert await asyncio.to_thread(store.reachable) is False  # asked from a thread: refused by the port

    asyncio.run(scenario())
