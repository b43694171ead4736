"""The lease keeper of one recorder node: answers the recorder's "which cameras should I record now" and "may I still
write this camera", and keeps the leases behind both answers (docs/scale.md).

Every ``renew_seconds`` a pass (one transaction, ``LeaseBook.run_pass``) renews this node's leases and takes free
ones up to its fair share. A lease renewed by a pass that *started* at monotonic time ``t0`` lasts in the database
until at least ``t0 + lease_seconds`` (the database stamps it later than ``t0``), so this node stops writing a camera
at ``t0 + lease_seconds - margin_seconds`` unless a later pass renewed it: by the time another node may take the
camera, this one has stopped, whatever happened to the database or the network in between.

Passes run on the keeper's own thread, never on the event loop's default executor: that pool is shared with whatever
else the node hands to threads (index writes, exports and archive reads that may wait on an object store for their
whole timeout), and a pass queued behind them would let the leases run out while the database answers at once. A pass
that takes longer than ``renew_seconds`` is logged with how long it waited for its thread and how long it ran.

With ``purpose=ANALYSE`` the same keeper serves the analysis service of a worker node: ``holds`` answers "which
cameras should I analyse now", and ``recording`` is set to what it analyses now.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from kuzet.config import ClusterConfig
from kuzet.services.cluster.leases import RECORD, LeaseBook, LeasePass, LeasePurpose, default_node
from kuzet.store.db import Database

log = logging.getLogger("kuzet.cluster")


class LeaseKeeper:
    def __init__(self, db: Database, config: ClusterConfig, *,
                 backlog: Callable[[], tuple[int, int]] | None = None, purpose: LeasePurpose = RECORD) -> None:
        self.config = config
        self.purpose = purpose
        self.node = config.node or default_node()
        self.book = LeaseBook(db, self.node, config.lease_seconds, advertise_url=config.advertise_url,
                              purpose=purpose)
        self.tokens: dict[int, int] = {}  # camera → fencing token of the lease this node holds
        self.previous: dict[int, str | None] = {}  # camera → the node that held it before this node took it
        self.valid_until: dict[int, float] = {}  # camera → monotonic time its lease surely lasts until
        self.releasing: set[int] = set()  # to give back once the recorder has stopped them
        self.recording: Callable[[], set[int]] = set  # what the recorder records now (set by the recorder)
        self.on_change: Callable[[], None] = lambda: None
        self.backlog = backlog or (lambda: (0, 0))
        self.last_pass: LeasePass | None = None
        self.last_success: float | None = None  # monotonic
        self.failures = 0
        self.moves_in = 0
        self.lost_total = 0
        self.slow_passes = 0  # passes that took longer than renew_seconds (waiting for the thread included)
        self._task: asyncio.Task | None = None
        self._first = asyncio.Event()
        self._thread: ThreadPoolExecutor | None = None  # the keeper's own: nothing else queues on it

    # -- what the recorder asks ---------------------------------------------------------------------------------------
    def holds(self, camera_id: int) -> bool:
        return camera_id in self.tokens and camera_id not in self.releasing and self.may_write(camera_id)

    def may_write(self, camera_id: int) -> bool:
        until = self.valid_until.get(camera_id)
        return until is not None and time.monotonic() < until - self.config.margin_seconds

    def token(self, camera_id: int) -> int | None:
        return self.tokens.get(camera_id)

    def moved_from(self, camera_id: int) -> str | None:
        """The other node that recorded the camera before this one took it, if any."""
        previous = self.previous.get(camera_id)
        return previous if previous not in (None, self.node) else None

    def lease_age(self) -> float:
        """Seconds since the leases were last renewed (0 when this node holds none)."""
        if not self.tokens or self.last_success is None:
            return 0.0
        return time.monotonic() - self.last_success

    # -- the loop -----------------------------------------------------------------------------------------------------
    def _run(self, fn: Callable, /, *args: object, **kwargs: object) -> asyncio.Future:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"kuzet-lease-{self.purpose.name}")
        return asyncio.get_running_loop().run_in_executor(self._thread, functools.partial(fn, *args, **kwargs))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"lease-keeper-{self.purpose.name}")
        with contextlib.suppress(TimeoutError):  # the first pass decides what to record; a dead database waits
            await asyncio.wait_for(self._first.wait(), self.config.lease_seconds)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def close(self) -> None:
        """Let the keeper's thread go (after ``stop`` and ``leave``)."""
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None

    async def leave(self) -> None:
        """After the recorder stopped: give every lease back so that the others take the cameras at once."""
        try:
            await self._run(self.book.leave, set(self.tokens))
        except Exception as exc:  # the leases simply run out
            log.warning("could not give the leases back (%s); they expire in %.0f s", exc, self.config.lease_seconds)
        self.tokens.clear()
        self.valid_until.clear()
        self.close()

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            held, give_back = self._plan()
            ran: list[float] = []  # when the pass got its thread
            take, backlog = not self.releasing, self.backlog()

            def run_pass(held: dict[int, int] = held, give_back: set[int] = give_back, take: bool = take,
                         backlog: tuple[int, int] = backlog, ran: list[float] = ran) -> LeasePass:
                ran.append(time.monotonic())
                return self.book.run_pass(held, give_back, take=take, backlog=backlog)

            work = self._run(run_pass)
            while not work.done():  # a pass stuck on the database must not keep a lease past its end
                await asyncio.wait({work}, timeout=self.config.renew_seconds)
                self._expire()
            try:
                self._apply(work.result(), started, give_back)
            except Exception as exc:
                self.failures += 1
                log.error("lease renewal failed (%s); cameras stop %.0f s after the last renewal unless it works",
                          exc, self.config.lease_seconds - self.config.margin_seconds)
            self._first.set()
            took = time.monotonic() - started
            if took > self.config.renew_seconds:
                self.slow_passes += 1
                waited = (ran[0] - started) if ran else took
                log.warning("%s lease pass took %.1f s (%.1f s before it ran, %.1f s running and answered); "
                            "the leases end %.0f s after a pass starts", self.purpose.name, took, waited,
                            took - waited, self.config.lease_seconds)
            self._expire()
            await asyncio.sleep(max(0.0, self.config.renew_seconds - (time.monotonic() - started)))

    def pass_once(self) -> LeasePass:
        """One pass, synchronously (tests, tools)."""
        started = time.monotonic()
        held, give_back = self._plan()
        result = self.book.run_pass(held, give_back, take=not self.releasing, backlog=self.backlog())
        self._apply(result, started, give_back)
        return result

    def _plan(self) -> tuple[dict[int, int], set[int]]:
        """(leases to renew, leases to give back: those being released that the recorder no longer records)."""
        recording = self.recording()
        give_back = {c for c in self.releasing if c not in recording}
        return {c: t for c, t in self.tokens.items() if c not in give_back}, give_back

    def _apply(self, result: LeasePass, started: float, given_back: set[int]) -> None:
        changed = bool(result.taken or result.lost or given_back)
        for camera_id in given_back:
            self.releasing.discard(camera_id)
            self._forget(camera_id)
        for camera_id in result.lost:
            log.error("camera %s: %s lease lost (taken over or expired); this node stops it", camera_id,
                      self.purpose.name)
            self.lost_total += 1
            self._forget(camera_id)
        until = started + self.config.lease_seconds
        for camera_id in result.renewed:
            self.valid_until[camera_id] = until
        for taken in result.taken:
            self.tokens[taken.camera_id] = taken.token
            self.previous[taken.camera_id] = taken.previous_node
            self.valid_until[taken.camera_id] = until
            if taken.previous_node not in (None, self.node):
                self.moves_in += 1
                log.info("camera %s: %s lease taken over from %s (token %d)", taken.camera_id, self.purpose.name,
                         taken.previous_node, taken.token)
        if result.not_enabled:
            self.releasing.update(result.not_enabled)
            changed = True
        # More than the fair share (a node joined): give back the excess, once the recorder has stopped it.
        excess = len(self.tokens) - len(self.releasing) - result.share
        if excess > 0 and not result.taken:
            chosen = sorted(c for c in self.tokens if c not in self.releasing)[-excess:]
            log.info("%d live %s nodes, %d cameras: giving back %s", result.live_nodes, self.purpose.name,
                     result.cameras, chosen)
            self.releasing.update(chosen)
            changed = True
        self.last_pass = result
        self.last_success = started
        if changed:
            self.on_change()

    def _forget(self, camera_id: int) -> None:
        self.tokens.pop(camera_id, None)
        self.valid_until.pop(camera_id, None)

    def _expire(self) -> None:
        """Cameras whose lease may run out before the next renewal: stop recording them now."""
        ended = [c for c in self.tokens if not self.may_write(c)]
        if ended:
            log.error("cameras %s: %s leases not renewed in time; this node stops them", ended, self.purpose.name)
            for camera_id in ended:
                self.lost_total += 1
                self._forget(camera_id)
            self.on_change()
