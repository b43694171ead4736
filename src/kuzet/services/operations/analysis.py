"""The analysis service: every analysed camera's stream → its pipeline → events → alarms → the event bus.

One loop per camera subscribes to the recorder's hub (the camera's single upstream; the sub stream unless plates
need the main one), hands each fragment to the camera's ``CameraPipeline`` on a small thread pool (PyAV and OpenCV
release the GIL while they work, so decoding runs beside the recorder's event loop without slowing it), and never
processes two fragments of one camera at once. A camera whose analysis falls behind is skipped ahead by the hub
(its queue is bounded), never slowing the recorder or live viewers.

With ``[cluster] enabled`` the cameras are spread over the nodes running this service by analysis leases
(services/cluster, purpose ``ANALYSE``, independent of the recording leases): a node analyses only the cameras it
holds. A camera recorded in this process is read from the local hub; one recorded on another node is read from that
node's live WebSocket, signed with the shared ``[cluster] secret`` (``RemoteStream``), and found again when it moves.

Observations come back from the worker threads into one consumer task, which stores them (``events.EventStore``),
raises alarms or counts their repeats (``alarms.alarms_for_event``) and publishes ``kuzet.event.*`` and
``kuzet.alarm.*`` messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from kuzet.domain.access import Right
from kuzet.installation import Installation
from kuzet.services import access
from kuzet.services.lifecycle import PeriodicService
from kuzet.services.operations import events as event_store
from kuzet.services.operations.alarms import alarm_out, alarms_for_event
from kuzet.services.operations.messages import alarm_subject, event_subject
from kuzet.services.operations.observations import Observation
from kuzet.services.operations.pictures import RETRY_SECONDS as PICTURE_RETRY_SECONDS
from kuzet.services.operations.pictures import SharedPictures, event_pictures
from kuzet.services.operations.rules import enabled_rules
from kuzet.services.watching.streams import Purpose, resolve_stream
from kuzet.store.db import unavailable, utcnow
from kuzet.store.models import Camera
from kuzet.store.models.operations import CameraAnalysis

log = logging.getLogger("kuzet.operations")

PLATE_KINDS = frozenset({"road", "gate"})
RELOAD_SECONDS = 15.0
ORGS_TTL = 5.0  # a revoked grant stops the camera's events reaching integrations within this
RULES_TTL = 5.0
WAITING_MAX = 5000  # observations held while the database is away (the oldest waiting are dropped beyond it)
RETRY_START, RETRY_MAX = 0.5, 5.0  # back-off while the database is away
IDLE_SECONDS = 15.0  # in a cluster: no fragment this long, and the camera's source is looked up again
WATCH_BACKOFF_MAX = 10.0  # a camera's source gone (moved, node down): tried again at most this far apart


@dataclass(frozen=True)
class CameraPlan:
    """What to run on one camera; a change restarts its loop."""

    camera_id: int
    stream: str  # main | sub
    settings: tuple  # the CameraAnalysis values (hashable), or () for defaults
    anpr: bool


def default_anpr(camera: Camera) -> bool:
    """Plates are read on road and gate cameras unless the camera's settings say otherwise."""
    return camera.kind in PLATE_KINDS


def plan_for(camera: Camera, row: CameraAnalysis | None, has_sub: bool) -> CameraPlan | None:
    """None when nothing is to be analysed on the camera."""
    motion = row.motion if row else True
    objects = row.objects if row else False
    anpr = row.anpr if row else default_anpr(camera)
    if not (motion or objects or anpr):
        return None
    wanted = resolve_stream(has_sub, row.stream if row else "auto", Purpose.PLATES if anpr else Purpose.ANALYSIS)
    values = () if row is None else (row.motion, row.fps, row.sensitivity, row.min_area, repr(row.zones),
                                     row.objects, row.detector, row.anpr, row.stream)
    return CameraPlan(camera.id, wanted, values, anpr)


class _LockedReader:
    """One plate reader (its OCR models are large) shared by every camera, one call at a time."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._lock = threading.Lock()

    def read(self, image: Any) -> list:
        with self._lock:
            return self._reader.read(image)


class _Serial:
    """A camera's pipeline whose process() and close() never overlap (close may come from a cancelled loop while a
    worker thread still processes its last fragment)."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self._lock = threading.Lock()

    def process(self, init: bytes, fragment: Any) -> None:
        with self._lock:
            self.pipeline.process(init, fragment)

    def close(self, at: Any) -> None:
        with self._lock:
            self.pipeline.close(at)


class SourceUnavailable(Exception):
    """The camera's stream cannot be read here now (no recorder holds it, or the holder refused or went away)."""


class RemoteStream:
    """A camera's live fMP4 read from the node that records it, for analysis on another node.

    The holder is looked up in the recording leases; the request carries the node credential (``X-Kuzet-Node``,
    services/cluster/node_auth.py) and ``X-Kuzet-Forwarded`` so that a node that no longer holds the camera answers
    itself instead of passing it on. Yields ``(init, fragment)``; ends (raises ``SourceUnavailable``) when the holder
    says it does not hold the camera, closes, or stays silent ``IDLE_SECONDS``: the caller then looks again."""

    def __init__(self, inst: Installation, node: str, camera_id: int, stream: str) -> None:
        self.inst, self.node, self.camera_id, self.stream = inst, node, camera_id, stream
        self.holder: str | None = None

    async def fragments(self) -> AsyncIterator[tuple[bytes, Any]]:
        from websockets.exceptions import InvalidStatus, WebSocketException

        from kuzet.services.cluster import node_auth
        from kuzet.services.cluster.leases import holder_url

        secret = self.inst.settings.cluster.secret
        if secret is None:
            raise SourceUnavailable("[cluster] secret is not set: cameras recorded on other nodes cannot be read")
        holder, url = await asyncio.to_thread(holder_url, self.inst.db, self.camera_id)
        if holder is None or not url:
            raise SourceUnavailable(f"no recorder node holds camera {self.camera_id}" if holder is None else
                                    f"{holder} advertises no URL ([cluster] advertise_url)")
        self.holder = holder
        ws_url = url.replace("http", "ws", 1) + f"/api/v1/cameras/{self.camera_id}/live?stream={self.stream}"
        headers = {node_auth.HEADER: node_auth.sign_live(secret, self.node, self.camera_id, self.stream),
                   node_auth.FORWARDED: self.node}
        try:
            async with contextlib.aclosing(self._read(ws_url, headers, holder)) as reader:
                async for item in reader:
                    yield item
        except InvalidStatus as exc:  # refused before the stream: the secrets differ, most likely
            raise SourceUnavailable(f"{holder} refused the node credential (HTTP {exc.response.status_code}): "
                                    f"is [cluster] secret the same on every node?") from exc
        except WebSocketException as exc:  # closed, reset: the holder stopped or went away
            raise SourceUnavailable(f"{holder}: {exc}") from exc

    async def _read(self, ws_url: str, headers: dict[str, str], holder: str) -> AsyncIterator[tuple[bytes, Any]]:
        from websockets.asyncio.client import connect

        from kuzet.services.recording.hub import Fragment

        async with connect(ws_url, additional_headers=headers, max_size=None, open_timeout=10,
                           close_timeout=2) as ws:
            init: bytes | None = None
            pending: dict | None = None
            expect = "init"
            while True:
                try:
                    message = await asyncio.wait_for(ws.recv(), IDLE_SECONDS)
                except TimeoutError as exc:
                    raise SourceUnavailable(f"{holder} sent nothing for {IDLE_SECONDS:.0f} s") from exc
                if isinstance(message, str):
                    meta = json.loads(message)
                    if meta.get("type") == "error":
                        raise SourceUnavailable(f"{holder}: {meta.get('code')}: {meta.get('message')}")
                    expect, pending = meta.get("type", ""), meta
                    continue
                if expect == "init":
                    init = bytes(message)
                elif expect == "fragment" and init is not None and pending is not None:
                    yield init, Fragment(bytes(message), bool(pending["keyframe"]),
                                         datetime.fromisoformat(pending["start"]), float(pending["duration"]),
                                         int(pending["samples"]))
                expect, pending = "", None


class AnalysisService:
    name = "analysis"

    def __init__(self, inst: Installation) -> None:
        self.inst = inst
        self.settings = inst.settings
        self.pictures = event_pictures(inst.settings)
        self.store = event_store.EventStore(self.pictures)
        self.loops: dict[int, tuple[CameraPlan, asyncio.Task]] = {}
        self.pipelines: dict[int, Any] = {}
        self.queue: asyncio.Queue[Observation] = asyncio.Queue()
        self.pool: ThreadPoolExecutor | None = None
        self._tasks: list[asyncio.Task] = []
        self._orgs: dict[int, tuple[float, list[int]]] = {}
        self._rule_cache: tuple[float, list] | None = None
        self._plate_reader: Any = None
        self._detectors: dict[str, Any] = {}
        self.stats = {"fragments": 0, "observations": 0, "alarms": 0, "skipped": 0, "dropped": 0}
        self._waiting_since: float | None = None
        self._wake = asyncio.Event()
        self.keeper = None  # analysis leases, with [cluster] enabled
        if inst.settings.cluster.enabled and inst.settings.operations.enabled:
            from kuzet.services.cluster.keeper import LeaseKeeper
            from kuzet.services.cluster.leases import ANALYSE

            self.keeper = LeaseKeeper(inst.db, inst.settings.cluster, purpose=ANALYSE)
            self.keeper.recording = lambda: set(self.loops)  # a lease is given back once its loop stopped
            self.keeper.on_change = self._wake.set

    # --- lifecycle --------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.inst.running.analysis = self
        if not self.settings.operations.enabled:
            log.info("video analysis is off (operations.enabled = false)")
            return
        self.settings.events_path.mkdir(parents=True, exist_ok=True)
        import cv2

        # Our pool already keeps every core busy with whole pictures; OpenCV splitting each small picture across
        # threads of its own only adds ~15 % CPU (measured by `kuzet bench motion --opencv-threads`).
        cv2.setNumThreads(1)
        if self.keeper is None:  # in a cluster, a camera's open events are closed when its lease is taken
            closed = await asyncio.to_thread(self._close_dangling, None)
            if closed:
                log.info("closed %d events left open by the last run", closed)
        self.pool = ThreadPoolExecutor(self.settings.operations.workers, thread_name_prefix="kuzet-analysis")
        if self.keeper is not None:
            await self.keeper.start()
        self._tasks = [asyncio.create_task(self._consume()), asyncio.create_task(self._reload_loop())]
        if isinstance(self.pictures, SharedPictures):
            self._tasks.append(asyncio.create_task(self._picture_retry_loop(self.pictures)))

    async def _picture_retry_loop(self, pictures: SharedPictures) -> None:
        """Pictures kept locally while the object store was away go up once it answers (pictures.py)."""
        while True:
            try:
                await asyncio.to_thread(pictures.retry)
            except Exception:
                log.exception("event picture upload failed")
            await asyncio.sleep(PICTURE_RETRY_SECONDS)

    def _close_dangling(self, camera_ids: list[int] | None) -> int:
        with self.inst.db.session() as session:
            return event_store.close_dangling(session, camera_ids)

    async def stop(self) -> None:
        if self.keeper is not None:
            await self.keeper.stop()
        tasks = [t for _p, t in self.loops.values()] + self._tasks
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.loops.clear()
        # Whatever is still queued is stored, so an interval that ended just before the stop is not lost.
        while not self.queue.empty():
            try:
                await self._handle(self.queue.get_nowait())
            except Exception as exc:
                if not unavailable(exc):
                    raise
                log.error("stopping with %d observations not stored: the database is away",
                          self.queue.qsize() + 1)
                break
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        if self.keeper is not None:
            await self.keeper.leave()

    async def reload(self) -> None:
        """Start, restart and stop camera loops to match the database (and, in a cluster, the analysis leases)."""
        if self.keeper is None and (self.inst.running.recorder is None or self.inst.running.hub is None):
            return
        wanted = await asyncio.to_thread(self._plans)
        if self.keeper is not None:
            wanted = {c: plan for c, plan in wanted.items() if self.keeper.holds(c)}
            taken = [c for c in wanted if c not in self.loops]
            if taken:  # events a previous holder left open (it died) end where they were last seen
                await asyncio.to_thread(self._close_dangling, taken)
        for camera_id in list(self.loops):
            plan, task = self.loops[camera_id]
            if wanted.get(camera_id) != plan or task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                del self.loops[camera_id]
        for camera_id, plan in wanted.items():
            if camera_id not in self.loops:
                self.loops[camera_id] = (plan, asyncio.create_task(self._watch(plan)))

    def _plans(self) -> dict[int, CameraPlan]:
        with self.inst.db.session() as session:
            rows = {r.camera_id: r for r in session.scalars(select(CameraAnalysis))}
            out = {}
            for camera in session.scalars(select(Camera).where(Camera.enabled.is_(True))):
                plan = plan_for(camera, rows.get(camera.id), bool(camera.sub_url))
                if plan is not None:
                    out[camera.id] = plan
            return out

    async def _reload_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.reload()
            except Exception:
                log.exception("analysis reload failed")
            with contextlib.suppress(TimeoutError):  # the lease keeper wakes it when the leases change
                await asyncio.wait_for(self._wake.wait(), RELOAD_SECONDS)

    # --- one camera -------------------------------------------------------------------------------------------------

    def _pipeline(self, plan: CameraPlan, loop: asyncio.AbstractEventLoop) -> Any:
        from kuzet.services.operations.pipeline import AnalysisConfig, CameraPipeline

        with self.inst.db.session() as session:
            row = session.get(CameraAnalysis, plan.camera_id)
        config = AnalysisConfig.from_settings(row, self.settings.operations)
        if row is None:
            config.anpr = plan.anpr
        detector = self._detector(config.detector) if config.objects else None
        reader = self._reader() if config.anpr else None

        def sink(obs: Observation) -> None:
            if loop.is_closed():  # the server is stopping: a frame still being analysed has nowhere to go
                return
            try:
                loop.call_soon_threadsafe(self.queue.put_nowait, obs)
            except RuntimeError:  # closed between the check and the call
                pass

        return CameraPipeline(plan.camera_id, config, sink, detector=detector, plate_reader=reader)

    def _detector(self, name: str) -> Any:
        from kuzet.services.operations.objects import make_detector

        if name == "onnx":  # one ONNX Runtime session serves every camera (its run() is thread-safe)
            if name not in self._detectors:
                self._detectors[name] = make_detector(name, self.settings.operations)
            return self._detectors[name]
        return make_detector(name, self.settings.operations)

    def _reader(self) -> Any:
        if self._plate_reader is None:
            from kuzet.services.operations import anpr

            if not anpr.available():
                log.warning("plate reading needs the anpr extra (pip install 'kuzet[anpr]'); plates are not read")
                return None
            self._plate_reader = _LockedReader(anpr.PlateReader())
        return self._plate_reader

    def _local(self, camera_id: int) -> bool:
        """The camera is recorded in this process: its fragments come from the local hub."""
        if self.inst.running.recorder is None or self.inst.running.hub is None:
            return False
        if self.keeper is None:  # a single box
            return True
        recording = self.inst.running.lease_keeper  # None: this node records nothing ([recorder] enabled = false)
        return recording is not None and recording.holds(camera_id)

    async def _local_fragments(self, plan: CameraPlan) -> AsyncIterator[tuple[bytes, Any]]:
        hub = self.inst.running.hub
        async with hub.subscribe(plan.camera_id, plan.stream, maxsize=64, wait_init=15.0) as sub:
            try:
                iterator = aiter(sub)
                while True:
                    if self.keeper is None:  # a single box: the hub is the camera's only source
                        fragment = await anext(iterator)
                    else:  # in a cluster the recording may move away: a silent hub means looking again
                        try:
                            fragment = await asyncio.wait_for(anext(iterator), IDLE_SECONDS)
                        except TimeoutError as exc:
                            raise SourceUnavailable("the local recorder sends nothing") from exc
                    if sub.init is not None:
                        yield sub.init, fragment
            except StopAsyncIteration:
                pass
            finally:
                self.stats["skipped"] += sub.skipped

    async def _watch(self, plan: CameraPlan) -> None:
        loop = asyncio.get_running_loop()
        node = self.keeper.node if self.keeper is not None else ""
        backoff = 1.0
        while True:
            pipeline = None
            try:
                pipeline = _Serial(await asyncio.to_thread(self._pipeline, plan, loop))
                self.pipelines[plan.camera_id] = pipeline
                source = (self._local_fragments(plan) if self._local(plan.camera_id)
                          else RemoteStream(self.inst, node, plan.camera_id, plan.stream).fragments())
                async with contextlib.aclosing(source):
                    async for init, fragment in source:
                        backoff = 1.0
                        await loop.run_in_executor(self.pool, pipeline.process, init, fragment)
                        self.stats["fragments"] += 1
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                log.debug("camera %d gives no picture to analyse; retrying", plan.camera_id)
            except (SourceUnavailable, OSError) as exc:
                log.info("camera %d: no stream to analyse (%s); retrying in %.0f s", plan.camera_id, exc, backoff)
            except Exception:
                log.exception("analysis of camera %d failed; restarting it", plan.camera_id)
            finally:
                if pipeline is not None and self.pool is not None:
                    with contextlib.suppress(Exception):
                        self.pool.submit(pipeline.close, utcnow())
                self.pipelines.pop(plan.camera_id, None)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0 if self.keeper is None else WATCH_BACKOFF_MAX)

    # --- observations → events → alarms → bus -----------------------------------------------------------------------

    async def _consume(self) -> None:
        """Store observations in order. While the database is away (restarted, locked) the one in hand is tried
        again with back-off and the others wait in the queue (at most ``WAITING_MAX``; beyond that the oldest
        waiting are dropped and counted): events and alarms are raised late, not lost."""
        while True:
            obs = await self.queue.get()
            delay = RETRY_START
            while True:
                try:
                    await self._handle(obs)
                except Exception as exc:
                    if not unavailable(exc):
                        log.exception("storing an observation of camera %d failed", obs.camera_id)
                        break
                    if self._waiting_since is None:
                        self._waiting_since = time.monotonic()
                        log.error("database unavailable: observations wait to be stored (%s)",
                                  str(getattr(exc, "orig", exc)).strip().splitlines()[0])
                    self._shed()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
                    continue
                break
            if self._waiting_since is not None:
                log.warning("storing observations again after %.1f s (%d waiting)",
                            time.monotonic() - self._waiting_since, self.queue.qsize())
                self._waiting_since = None

    def _shed(self) -> None:
        while self.queue.qsize() > WAITING_MAX:
            self.queue.get_nowait()
            self.stats["dropped"] += 1
            if self.stats["dropped"] % 1000 == 1:
                log.error("%d observations dropped while the database was away", self.stats["dropped"])

    async def _handle(self, obs: Observation) -> None:
        if self.keeper is not None and obs.phase == "start":  # in a cluster, the event names the node analysing it
            obs.details.setdefault("node", self.keeper.node)
        opened = self.store.checkpoint()
        try:
            messages = await asyncio.to_thread(self._persist, obs)
        except Exception:
            self.store.rollback(opened)  # the transaction did not happen: neither did what it opened
            raise
        self.stats["observations"] += 1
        bus = self.inst.running.bus
        if bus is None:
            return
        for subject, payload in messages:
            try:
                await bus.publish(subject, payload)
            except Exception:
                log.exception("publishing %s failed", subject)

    def _organisations(self, session: Any, camera: Camera) -> list[int]:
        cached = self._orgs.get(camera.id)
        if cached and time.monotonic() - cached[0] < ORGS_TTL:
            return cached[1]
        # An event reaches whoever GET /events would show it to: holders of view_archive on the camera.
        ids = [o.id for o in access.organisations_seeing(session, camera, Right.VIEW_ARCHIVE)]
        self._orgs[camera.id] = (time.monotonic(), ids)
        return ids

    def _rules(self, session: Any) -> list:
        """The enabled alarm rules, read again at most every few seconds (a rule changed in the console applies
        within ``RULES_TTL``)."""
        if self._rule_cache is None or time.monotonic() - self._rule_cache[0] > RULES_TTL:
            rules = enabled_rules(session)
            for rule in rules:
                session.expunge(rule)
            self._rule_cache = (time.monotonic(), rules)
        return self._rule_cache[1]

    def _persist(self, obs: Observation) -> list[tuple[str, dict]]:
        with self.inst.db.session() as session:
            applied = self.store.apply(session, obs)
            if applied is None:
                return []
            camera = session.get(Camera, obs.camera_id)
            if camera is None:
                return []
            outcomes = alarms_for_event(session, applied.event, camera, applied.duration, self.settings.timezone,
                                        self._rules(session))
            messages = [(event_subject(camera.id), {
                "type": applied.type, "event": event_store.event_out(applied.event, camera),
                "organisations": self._organisations(session, camera)})]
            for outcome in outcomes:
                out = alarm_out(session, outcome.alarm)
                messages.append((alarm_subject(outcome.alarm.id), {"type": outcome.kind, "alarm": out,
                                                                   "organisations": out["organisations"]}))
            self.stats["alarms"] += sum(1 for o in outcomes if o.kind == "raised")
            return messages


class EventRetentionService(PeriodicService):
    """Deletes events (and their pictures) older than ``operations.events_retention_days``, once an hour."""

    name = "event-retention"

    def __init__(self, inst: Installation, interval: float = 3600.0) -> None:
        super().__init__(interval)
        self.inst = inst

    def run_once(self) -> int:
        cutoff = utcnow() - timedelta(days=self.inst.settings.operations.events_retention_days)
        pictures = event_pictures(self.inst.settings)
        total = 0
        while True:
            with self.inst.db.session() as session:
                n, keys = event_store.prune_rows(session, cutoff)
            pictures.delete(keys)  # after the commit: a failed one keeps rows and pictures together
            total += n
            if n == 0:
                if total:
                    log.info("event retention removed %d events", total)
                return total
