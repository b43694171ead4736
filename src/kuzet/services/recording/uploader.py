"""The uploader: every closed recording goes to the object store, then its local copy goes (docs/storage.md).

The recorder is unchanged: it writes files to the local disk and indexes them. The uploader finds closed files that
have no object key yet (an indexed query, oldest first), uploads each with its SHA-256 (the server checks it; a HEAD
afterwards must agree on size and checksum), writes the key into the index and only then deletes the local file. A
crash anywhere in between at worst uploads a file twice; a file is never deleted before its object is verified and
indexed.

The local disk is the buffer. While the store is away, closed files wait; their count, bytes and the age of the
oldest are Prometheus gauges. Past ``[storage.s3] buffer_max_bytes`` the uploader says so loudly (an error in the log
every minute, ``kuzet_upload_buffer_full 1``) and recording goes on: the newest video matters most, and the disk's
own floor (``[storage] min_free_bytes``) is guarded by retention, which then deletes the oldest files never
uploaded, logging each loss.

With several recorder nodes (``node`` given) the backlog counted is this node's (its rows, and rows written before
the cluster), the buffer on this node's disk; the passes still look at every waiting row, so that files of an earlier
run of this node under another name go up too, and skip those not on this disk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import and_, func, or_, select, update

from kuzet.config import Settings
from kuzet.services.recording.objectstore import ObjectStore, ObjectStoreError, file_sha256
from kuzet.store.db import Database, utcnow
from kuzet.store.models.recording import EvidenceHold, Recording

log = logging.getLogger("kuzet.recording.uploader")
BATCH = 64  # files looked at per query
ALARM_EVERY = 60.0  # seconds between "buffer full" errors
BACKOFF_MAX = 10.0  # seconds between attempts while the store is away
ELSEWHERE_MAX = 100_000  # rows of other nodes remembered, then forgotten (looked for once more)


@dataclass
class Backlog:
    files: int = 0
    bytes: int = 0
    oldest: datetime | None = None  # end of the oldest closed file not yet uploaded

    def oldest_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.oldest).total_seconds()) if self.oldest else 0.0


@dataclass
class UploadPass:
    uploaded: int = 0
    bytes: int = 0
    failed: int = 0
    error: str | None = None
    held: int = 0  # objects moved under the held prefix
    backlog: Backlog = field(default_factory=Backlog)


class Uploader:
    def __init__(self, settings: Settings, db: Database, store: ObjectStore | None = None,
                 node: str | None = None) -> None:
        self.settings = settings
        self.node = node
        self.db = db
        self.root: Path = settings.recordings_path
        self.store = store or ObjectStore(settings.storage.s3)
        self.buffer_max = settings.storage.s3.buffer_max_bytes
        self.workers = settings.storage.s3.upload_workers
        self.held_prefix = settings.storage.s3.held_prefix
        self.backlog = Backlog()
        self.uploaded_files = 0
        self.uploaded_bytes = 0
        self.failing_since: float | None = None  # monotonic time of the first failure of the current outage
        self.last_error: str | None = None
        self.buffer_full = False
        self._alarmed_at = 0.0
        self._bucket_ready = False
        self._pass = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None  # kept between passes: no threads started every second
        self._elsewhere: set[int] = set()  # with several nodes: rows whose file is on another node's disk

    # -- what waits --------------------------------------------------------------------------------------------------
    def measure(self) -> Backlog:
        """Closed files not yet in the object store (the local buffer), from the index."""
        query = (select(func.count(), func.coalesce(func.sum(Recording.bytes), 0), func.min(Recording.end_at))
                 .where(Recording.state == "closed", Recording.object_key.is_(None)))
        if self.node is not None:
            query = query.where(or_(Recording.node == self.node, Recording.node.is_(None)))
        with self.db.session() as session:
            files, size, oldest = session.execute(query).one()
        self.backlog = Backlog(int(files), int(size), oldest)
        full = self.backlog.bytes > self.buffer_max
        now = time.monotonic()
        if full and (not self.buffer_full or now - self._alarmed_at >= ALARM_EVERY):
            self._alarmed_at = now
            log.error("upload buffer full: %d files, %d bytes wait for the object store (limit %d bytes, oldest "
                      "%.0f s); recording goes on, the local disk holds them until the store takes them",
                      self.backlog.files, self.backlog.bytes, self.buffer_max, self.backlog.oldest_seconds(utcnow()))
        elif self.buffer_full and not full:
            log.warning("upload buffer back under its limit: %d bytes wait", self.backlog.bytes)
        self.buffer_full = full
        return self.backlog

    @property
    def failing_seconds(self) -> float:
        return time.monotonic() - self.failing_since if self.failing_since is not None else 0.0

    # -- one pass ----------------------------------------------------------------------------------------------------
    def run_once(self, on_uploaded: Callable[[int], None] | None = None) -> UploadPass:
        """Upload every closed file waiting (oldest first) until none is left or the store fails.
        ``on_uploaded(bytes)`` is called after each verified file (a progress bar)."""
        with self._pass:  # one pass at a time (a cancelled service's pass may still be finishing in its thread)
            return self._run_once(on_uploaded)

    def _run_once(self, on_uploaded: Callable[[int], None] | None) -> UploadPass:
        report = UploadPass()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="kuzet-upload")
        pool = self._pool
        try:
            if not self._bucket_ready:
                self.store.ensure_bucket()
                self._bucket_ready = True
            after = 0
            while True:
                with self.db.session() as session:
                    rows = session.execute(
                        select(Recording.id, Recording.path, Recording.bytes)
                        .where(Recording.state == "closed", Recording.object_key.is_(None), Recording.id > after)
                        .order_by(Recording.id).limit(BATCH)).all()
                if not rows:
                    break
                after = rows[-1].id
                rows = [r for r in rows if r.id not in self._elsewhere]
                tried = self._upload_batch(pool, rows)
                error = next((r for _row, r in tried if isinstance(r, ObjectStoreError)), None)
                for (row_id, _path, _size), result in tried:
                    if result is None and self.node is not None:
                        if len(self._elsewhere) >= ELSEWHERE_MAX:
                            self._elsewhere.clear()
                        self._elsewhere.add(row_id)  # another recorder's: not looked for again by this one
                    if result is None or isinstance(result, ObjectStoreError):
                        continue  # not on this node's disk (another recorder's, or already gone)
                    self._indexed(row_id, *result)
                    report.uploaded += 1
                    report.bytes += result[1]
                    if on_uploaded is not None:
                        on_uploaded(result[1])
                if error is not None:  # what did go up is indexed; the rest waits for the next pass
                    raise error
        except ObjectStoreError as exc:
            report.error = str(exc)
            if self.failing_since is None:
                self.failing_since = time.monotonic()
                log.error("object store unreachable (%s): closed files wait on the local disk", exc)
            self.last_error = str(exc)
        else:
            if self.failing_since is not None:
                log.warning("object store back after %.0f s", self.failing_seconds)
            self.failing_since, self.last_error = None, None
        self.uploaded_files += report.uploaded
        self.uploaded_bytes += report.bytes
        if report.error is None:
            try:
                report.held = self.move_held()
            except ObjectStoreError as exc:
                report.error = str(exc)
                log.error("moving held recordings to %s failed: %s", self.held_prefix, exc)
        report.backlog = self.measure()
        return report

    def _upload_batch(self, pool: ThreadPoolExecutor, rows: list) -> list[tuple[tuple[int, str, int], object]]:
        """Upload ``rows``, ``workers`` at a time, as (row, result) in the order they finished. After the first
        failure nothing more is started: a store that is away costs a pass at most ``workers`` failed requests, not
        one timeout per file of the batch."""
        done: list[tuple[tuple[int, str, int], object]] = []
        running: dict[Future, tuple[int, str, int]] = {}
        waiting = iter(rows)
        failed = False
        while True:
            while not failed and len(running) < self.workers and (row := next(waiting, None)) is not None:
                running[pool.submit(self._upload_one, row)] = row
            if not running:
                return done
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                result = future.result()
                done.append((running.pop(future), result))
                failed = failed or isinstance(result, ObjectStoreError)

    def close(self, wait: bool = True) -> None:
        """Stop the upload threads (after the last pass)."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait)
            self._pool = None

    def move_held(self) -> int:
        """Move the objects of files under an active evidence hold to the held prefix (server-side copy, verified,
        index updated, then the original deleted). Once moved they stay there; retention deletes them by their
        indexed key after the hold is released."""
        moved = 0
        while True:
            with self.db.session() as session:  # from the (few) active holds to their files, by camera and time
                rows = session.execute(
                    select(Recording.id, Recording.path, Recording.object_key, Recording.bytes).distinct()
                    .join(EvidenceHold, and_(EvidenceHold.camera_id == Recording.camera_id,
                                             EvidenceHold.start_at < Recording.end_at,
                                             EvidenceHold.end_at > Recording.start_at))
                    .where(EvidenceHold.released_at.is_(None), Recording.object_key.is_not(None),
                           ~Recording.object_key.startswith(self.held_prefix)).limit(BATCH)).all()
            if not rows:
                return moved
            for row_id, rel, key, size in rows:
                target = f"{self.held_prefix}{rel}"
                self.store.copy_verified(key, target, size)
                with self.db.session() as session:
                    session.execute(update(Recording).where(Recording.id == row_id).values(object_key=target))
                self.store.delete_many([key])
                moved += 1
            log.info("moved %d held recordings under %s", len(rows), self.held_prefix)

    def _upload_one(self, row: tuple[int, str, int]) -> tuple[str, int, str] | ObjectStoreError | None:
        _id, rel, _size = row
        path = self.root / rel
        try:
            digest = file_sha256(path)
            done = self.store.put_file(path, self.store.key_for(rel), digest)
        except FileNotFoundError:
            return None
        except ObjectStoreError as exc:
            return exc
        return done.key, done.size, done.sha256

    def _indexed(self, row_id: int, key: str, size: int, sha256: str) -> None:
        """Record the object in the index, then delete the local copy (never the other way round)."""
        with self.db.session() as session:
            rel = session.scalar(select(Recording.path).where(Recording.id == row_id))
            session.execute(update(Recording).where(Recording.id == row_id)
                            .values(object_key=key, sha256=sha256, bytes=size))
        if rel is not None:
            try:
                (self.root / rel).unlink()
            except FileNotFoundError:
                pass
