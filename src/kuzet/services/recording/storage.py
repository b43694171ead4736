"""Where recorded bytes live, and the storage report.

Every read of a recorded file goes through :class:`ArchiveStore`: a file is read from the local disk while it is
there (being written, waiting for upload, or always with the local backend) and from the object store once it has
been uploaded and its local copy deleted. Routes and exports never learn which.

The report gives bytes per camera and archive depth against each camera's required depth.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kuzet.config import Settings
from kuzet.services.recording.objectstore import ObjectStore, ObjectStoreError, shared_object_store
from kuzet.store.db import utcnow
from kuzet.store.models import Camera
from kuzet.store.models.recording import EvidenceHold, Recording


def storage_report(session: Session, root: Path, camera_ids: list[int] | None = None) -> dict:
    now = utcnow()
    query = select(Recording.camera_id, func.sum(Recording.bytes), func.min(Recording.start_at),
                   func.count()).group_by(Recording.camera_id)
    stats = {row[0]: row[1:] for row in session.execute(query)}
    cameras = session.execute(select(Camera.id, Camera.name, Camera.retention_days).order_by(Camera.id)).all()
    holds = dict(session.execute(select(EvidenceHold.camera_id, func.count()).where(
        EvidenceHold.released_at.is_(None)).group_by(EvidenceHold.camera_id)).all())
    items = []
    for cam_id, name, days in cameras:
        if camera_ids is not None and cam_id not in camera_ids:
            continue
        size, oldest, files = stats.get(cam_id, (0, None, 0))
        depth = (now - oldest).total_seconds() / 86400 if oldest else 0.0
        items.append({"camera_id": cam_id, "name": name, "bytes": int(size or 0), "files": int(files or 0),
                      "oldest": oldest, "depth_days": round(depth, 3), "required_days": days,
                      "meets_requirement": depth >= days, "holds": holds.get(cam_id, 0)})
    usage = shutil.disk_usage(root) if root.exists() else None
    return {"cameras": items, "archive_bytes": sum(i["bytes"] for i in items),
            "volume": {"path": str(root), "total_bytes": usage.total if usage else None,
                       "free_bytes": usage.free if usage else None}}


class RecordingUnavailable(Exception):
    """A recorded file is neither on the local disk nor readable from the object store."""


@dataclass(frozen=True)
class RecordingSource:
    """One recorded file, wherever it is: ``read`` answers from the local copy if there is one, else from S3."""

    path: Path
    key: str | None
    objects: ObjectStore | None

    @property
    def local(self) -> bool:
        return self.path.exists()

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at the end of the file)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(offset)
                return fh.read(length)
        except FileNotFoundError:
            if self.objects is None or self.key is None:
                raise RecordingUnavailable(f"{self.path.name}: not on disk and no object store") from None
        try:
            return self.objects.get_range(self.key, offset, offset + length)
        except ObjectStoreError as exc:
            raise RecordingUnavailable(str(exc)) from None

    def size(self) -> int | None:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return self.objects.size(self.key) if self.objects is not None and self.key else None

    def iter_range(self, start: int, end: int, chunk: int = 1 << 20) -> Iterator[bytes]:
        """Bytes [start, end) in chunks (an HTTP body)."""
        while start < end:
            data = self.read(start, min(chunk, end - start))
            if not data:
                return
            start += len(data)
            yield data


class ArchiveStore:
    """The recordings directory, and the object store behind it when ``[storage] backend = "s3"``."""

    def __init__(self, root: Path, objects: ObjectStore | None = None) -> None:
        self.root = root
        self.objects = objects

    def source(self, path: str, object_key: str | None = None) -> RecordingSource:
        """The file indexed at ``path``; its object key is the indexed one, else where the uploader would put it (so
        a file uploaded since the row was read is still found)."""
        key = object_key or (self.objects.key_for(path) if self.objects is not None else None)
        return RecordingSource(self.root / path, key, self.objects)

    def source_for(self, row: Recording) -> RecordingSource:
        """The file of an indexed recording."""
        return self.source(row.path, row.object_key)

    def report(self, session: Session, camera_ids: list[int] | None = None) -> dict:
        """:func:`storage_report` of this archive's volume."""
        return storage_report(session, self.root, camera_ids)


def archive_store(settings: Settings) -> ArchiveStore:
    """The installation's archive store (its object store client shared in the process: ``shared_object_store``)."""
    storage = settings.storage
    if storage.backend != "s3":
        return ArchiveStore(settings.recordings_path)
    return ArchiveStore(settings.recordings_path, shared_object_store(storage.s3))


@dataclass(frozen=True)
class RangedBody:
    """An HTTP answer for a file read from the object store: status, headers and the body's chunks."""

    status: int
    headers: dict[str, str]
    body: Iterator[bytes]


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def ranged_body(source: RecordingSource, range_header: str | None) -> RangedBody:
    """Serve one file from the object store honouring a single ``Range: bytes=a-b`` (HLS byte ranges need it).

    Raises :class:`RecordingUnavailable` when the object is not there."""
    size = source.size()
    if size is None:
        raise RecordingUnavailable(f"{source.path.name}: not in the object store")
    headers = {"Accept-Ranges": "bytes", "Content-Type": "video/mp4"}
    match = _RANGE.match(range_header.strip()) if range_header else None
    if match is None or not (match.group(1) or match.group(2)):
        return RangedBody(200, {**headers, "Content-Length": str(size)}, source.iter_range(0, size))
    first, last = match.group(1), match.group(2)
    if first:
        start, end = int(first), min(int(last) + 1, size) if last else size
    else:  # a suffix: the last N bytes
        start, end = max(0, size - int(last)), size
    if start >= size or start >= end:
        return RangedBody(416, {**headers, "Content-Range": f"bytes */{size}"}, iter(()))
    return RangedBody(206, {**headers, "Content-Length": str(end - start),
                            "Content-Range": f"bytes {start}-{end - 1}/{size}"}, source.iter_range(start, end))


def serve_recording(source: RecordingSource, range_header: str | None) -> Path | RangedBody:
    """How to answer an HTTP request for one recorded file: with the local backend the file itself (the web server
    answers ranges and sends it without copying), with S3 a :class:`RangedBody` read from whichever of the local copy
    or the object holds the bytes when each chunk is read (the uploader may move it meanwhile).

    Raises :class:`RecordingUnavailable` when the file is gone."""
    if source.objects is None:
        if not source.local:
            raise RecordingUnavailable(f"{source.path.name}: deleted")
        return source.path
    return ranged_body(source, range_header)
