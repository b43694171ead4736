"""Event pictures (the snapshot at a detection's best moment, the plate crop) behind one small interface, so the node
that analysed a camera and the node that serves the console need not be the same machine.

A picture's key is its path relative to the events directory, ``<camera>/<YYYY-MM-DD>/<name>`` — what the ``events``
rows have always held, so rows written before object storage was configured keep working.

- :class:`LocalPictures` (a single box, ``[storage] backend = "local"``): files in the events directory, written
  atomically; exactly today's paths.
- :class:`SharedPictures` (``backend = "s3"``): each picture is put straight into the recordings' bucket under
  ``[storage.s3] events_prefix`` (``events/`` + key). A put that fails leaves the picture in the local events
  directory and in a retry queue, and puts are skipped for ``BACKOFF`` seconds so an outage does not hold every
  detection for a request timeout; :meth:`SharedPictures.retry` (the analysis service calls it every
  ``RETRY_SECONDS``) uploads what waits and removes each local copy once stored. Its first pass also picks up the
  pictures left in the events directory by an earlier run (or a box that kept them locally before S3 was
  configured). Reading takes the local file when there is one, else the object; deleting removes both (objects in
  DeleteObjects batches).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kuzet.services.recording.objectstore import ObjectStore, ObjectStoreError, shared_object_store

if TYPE_CHECKING:
    from kuzet.config import Settings

log = logging.getLogger("kuzet.operations.pictures")

BACKOFF = 30.0  # seconds without puts after one failed (pictures go to the local directory meanwhile)
RETRY_SECONDS = 15.0  # how often the analysis service uploads pictures that wait
RETRY_BATCH = 500  # pictures uploaded by one retry pass at most


class PicturesUnavailable(Exception):
    """The object store holding the picture could not be read (not: the picture does not exist)."""


class EventPictures(Protocol):
    def save(self, camera_id: int, at: datetime, name: str, data: bytes) -> str:
        """Store one JPEG; return its key (kept in the event's row)."""
        ...

    def open(self, key: str | None) -> bytes | None:
        """The picture's bytes, or None if there is none. Raises :class:`PicturesUnavailable` when it may exist but
        cannot be read now."""
        ...

    def delete(self, keys: Iterable[str | None]) -> int:
        """Delete pictures (missing ones are fine); returns how many keys were asked for."""
        ...


def picture_key(camera_id: int, at: datetime, name: str) -> str:
    return f"{camera_id}/{at.strftime('%Y-%m-%d')}/{name}"


class LocalPictures:
    """Pictures as files under the events directory (a single box)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str | None) -> Path | None:
        """The file of ``key`` if it exists (None too when the key would leave the events directory)."""
        if not key:
            return None
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents or not path.is_file():
            return None
        return path

    def save(self, camera_id: int, at: datetime, name: str, data: bytes) -> str:
        key = picture_key(camera_id, at, name)
        self._write(key, data)
        return key

    def _write(self, key: str, data: bytes) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def open(self, key: str | None) -> bytes | None:
        path = self.path(key)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, keys: Iterable[str | None]) -> int:
        wanted = [k for k in keys if k]
        for key in wanted:
            path = self.path(key)
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()
        return len(wanted)


class SharedPictures(LocalPictures):
    """Pictures in the object store every node reads; the events directory only keeps what waits for upload."""

    def __init__(self, root: Path, objects: ObjectStore, prefix: str) -> None:
        super().__init__(root)
        self.objects = objects
        self.prefix = prefix
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._scanned = False  # the events directory is looked through once, at the first retry
        self._bucket_checked = False
        self._down_until = 0.0
        self.uploaded = 0  # pictures stored in the object store since start (directly or by a retry)
        self.failed_puts = 0

    def __repr__(self) -> str:
        return f"SharedPictures({self.objects!r}, prefix={self.prefix!r})"

    def object_key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def _put(self, key: str, data: bytes) -> None:
        if not self._bucket_checked:
            self.objects.ensure_bucket()
            self._bucket_checked = True
        self.objects.put_bytes(self.object_key(key), data, "image/jpeg")

    def save(self, camera_id: int, at: datetime, name: str, data: bytes) -> str:
        key = picture_key(camera_id, at, name)
        if time.monotonic() >= self._down_until:
            try:
                self._put(key, data)
            except ObjectStoreError as exc:
                self.failed_puts += 1
                self._down_until = time.monotonic() + BACKOFF
                log.warning("event picture %s kept locally until the object store answers: %s", key, exc)
            else:
                self.uploaded += 1
                with self._lock:  # a newer picture of the same key replaces one that waited
                    self._pending.discard(key)
                stale = self.path(key)
                if stale is not None:
                    with contextlib.suppress(OSError):
                        stale.unlink()
                return key
        self._write(key, data)
        with self._lock:
            self._pending.add(key)
        return key

    def open(self, key: str | None) -> bytes | None:
        local = super().open(key)
        if local is not None or not key:
            return local
        try:
            return self.objects.get(self.object_key(key))
        except ObjectStoreError as exc:
            raise PicturesUnavailable(str(exc)) from None

    def delete(self, keys: Iterable[str | None]) -> int:
        wanted = [k for k in keys if k]
        super().delete(wanted)
        with self._lock:
            self._pending.difference_update(wanted)
        if wanted:
            try:
                failed = self.objects.delete_many([self.object_key(k) for k in wanted])
            except ObjectStoreError as exc:
                failed = wanted
                log.warning("could not delete %d event pictures from the object store: %s", len(wanted), exc)
            if failed:
                log.warning("%d event pictures left in the object store (a lifecycle rule on %r removes them)",
                            len(failed), self.prefix)
        return len(wanted)

    def _scan(self) -> None:
        """Pictures already in the events directory wait for upload too (an earlier run's, or kept locally)."""
        if not self.root.is_dir():
            return
        found = {p.relative_to(self.root).as_posix() for p in self.root.rglob("*.jpg") if p.is_file()}
        with self._lock:
            self._pending |= found

    def retry(self, limit: int = RETRY_BATCH) -> int:
        """Upload pictures that wait (at most ``limit``); each local copy goes once stored. Returns how many were
        uploaded; stops at the first failure (the store is still away)."""
        if not self._scanned:
            self._scan()
            self._scanned = True
        with self._lock:
            batch = sorted(self._pending)[:limit]
        done = 0
        for key in batch:
            path = self.path(key)
            if path is None:
                with self._lock:
                    self._pending.discard(key)
                continue
            try:
                self._put(key, path.read_bytes())
            except ObjectStoreError as exc:
                self._down_until = time.monotonic() + BACKOFF
                log.warning("event pictures still waiting for the object store (%d): %s", self.pending, exc)
                break
            except OSError:
                continue
            with self._lock:
                self._pending.discard(key)
            with contextlib.suppress(OSError):
                path.unlink()
            done += 1
            self.uploaded += 1
        if done:
            self._down_until = 0.0
            log.info("uploaded %d event pictures that waited", done)
        return done


_shared: dict[tuple[str, str, int], SharedPictures] = {}


def event_pictures(settings: Settings) -> EventPictures:
    """The installation's picture store: local files, or the object store when recordings go there (one per
    configuration and process, so the retry queue is the process's own)."""
    storage = settings.storage
    if storage.backend != "s3":
        return LocalPictures(settings.events_path)
    objects = shared_object_store(storage.s3)
    ident = (str(settings.events_path), storage.s3.events_prefix, id(objects))
    store = _shared.get(ident)
    if store is None:
        store = _shared[ident] = SharedPictures(settings.events_path, objects, storage.s3.events_prefix)
    return store
