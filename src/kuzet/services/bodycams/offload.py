"""Offload: files arrive from a device (a resumable tus upload, or a docking station's watch folder) and are ingested.

Ingest keeps the original exactly as it arrived: the file is moved (never re-written) to
``<bodycams>/originals/YYYY/MM/<id>-<sha256 prefix><ext>`` and made read-only; its SHA-256 is computed in one
sequential read at ingest and kept with who offloaded it, when, from which device, and which officer had the device
(the shift covering the recording's time, corrected by the device's clock offset). The media are indexed (container,
codecs, duration) with PyAV. A browser-playable copy is made only when the original cannot play in a browser
(``make_playable``), hashed and linked to its original.

Layout of the bodycams directory: ``uploads/<upload id>.part`` (bytes of unfinished uploads), ``originals/``,
``playable/``.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import queue
import re
import shutil
import stat
import subprocess
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.domain.bodycams import Action, corrected
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.services.bodycams.devices import latest_shift
from kuzet.services.bodycams.units import manages_device
from kuzet.store.db import Database, utcnow
from kuzet.store.models import User
from kuzet.store.models.bodycams import BodycamDevice, BodycamRecording, BodycamShift, BodycamUpload

log = logging.getLogger("kuzet.bodycams")

# 8 MiB direct reads into three buffers: ≈ 5 % less CPU per MiB than 1 MiB × 8 (fewer reads and hand-overs), the
# CPU being what the hash is short of (docs/benchmarks.md, bodycam)
HASH_CHUNK = 8 << 20
HASH_BUFFERS = 3
MEDIA_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".ts", ".mts", ".m4v", ".3gp", ".webm", ".asf", ".wmv", ".h264"}
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class UploadError(ValueError):
    """The request is wrong (400/422): names the header or value."""


class UploadDenied(Exception):
    """Outside the caller's reach (404)."""


class UploadConflict(Exception):
    """The offset does not match, or another request is writing this upload (409)."""


# --- hashing and indexing --------------------------------------------------------------------------------------------

def _open_for_hashing(path: Path) -> tuple[int, bool]:
    """The file opened for one sequential pass: with O_DIRECT where the filesystem allows it (the disk writes straight
    into the reader's buffers: no copy out of the page cache and no cache to fill and evict, which on a shared machine
    is CPU the hash needs), else buffered with the kernel told to read ahead (POSIX_FADV_SEQUENTIAL)."""
    direct = getattr(os, "O_DIRECT", 0)
    if direct:
        try:
            return os.open(path, os.O_RDONLY | direct), True
        except OSError:
            pass  # tmpfs and a few others refuse O_DIRECT
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    return fd, False


def sha256_file(path: Path, chunk: int = HASH_CHUNK, buffers: int = HASH_BUFFERS) -> str:
    """SHA-256 of a file in one sequential pass (see ``hash_file``)."""
    return hash_file(path, chunk=chunk, buffers=buffers).hexdigest()


def hash_file(path: Path, length: int | None = None, chunk: int = HASH_CHUNK,
              buffers: int = HASH_BUFFERS) -> hashlib._Hash:
    """A running SHA-256 of the file's first ``length`` bytes (all of it by default), in one sequential pass: it can
    go on with the bytes that follow (a resumed upload). A reader thread fills the next of ``buffers`` reused,
    page-aligned buffers (anonymous mmaps, as O_DIRECT needs) while this thread hashes the last one (both release the
    GIL), so the pass runs at the slower of the disk and the hash, not at their sum, and allocates nothing per block.
    Measured in docs/benchmarks.md (``kuzet bench bodycam``)."""
    import mmap

    digest = hashlib.sha256()
    if length == 0:
        return digest
    fd, direct = _open_for_hashing(path)
    free: queue.Queue[mmap.mmap] = queue.Queue()
    full: queue.Queue[tuple[mmap.mmap, int] | BaseException] = queue.Queue()
    pool = [mmap.mmap(-1, chunk) for _ in range(buffers)]
    for buffer in pool:
        free.put(buffer)
    end = length if length is not None else 1 << 62

    def read() -> None:
        nonlocal direct
        offset = 0
        try:
            while True:
                buffer = free.get()
                if offset >= end:
                    full.put((buffer, 0))
                    return
                try:
                    size = os.preadv(fd, [buffer], offset)
                except OSError:
                    if not direct:
                        raise
                    # O_DIRECT refused at read time (an odd device block size): go on buffered from here
                    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
                    direct = False
                    size = os.preadv(fd, [buffer], offset)
                size = min(size, end - offset)  # direct reads come in whole blocks: past ``length`` is not ours
                offset += size
                full.put((buffer, size))
                if not size:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the hashing thread
            full.put(exc)

    reader = threading.Thread(target=read, name="kuzet-hash-reader", daemon=True)
    reader.start()
    hashed = 0
    try:
        while True:
            item = full.get()
            if isinstance(item, BaseException):
                raise item
            buffer, size = item
            if not size:
                break
            view = memoryview(buffer)
            digest.update(view[:size])
            view.release()
            hashed += size
            free.put(buffer)
        reader.join()
    finally:
        if reader.is_alive():  # an error on this side: let the reader finish its block before the fd goes
            free.put(pool[0])
            reader.join(5)
        os.close(fd)
        for buffer in pool:
            try:
                buffer.close()
            except BufferError:
                pass
    if length is not None and hashed != length:
        raise OSError(f"{path} holds {hashed} bytes, not the {length} expected")
    return digest


@dataclass
class MediaInfo:
    container: str | None = None
    video: str | None = None
    audio: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    duration: float | None = None
    creation_time: datetime | None = None
    text_tracks: int = 0  # subtitle/data tracks: dash cameras write GPS (NMEA) into one
    location: str | None = None  # ISO 6709, where the recording began
    error: str | None = None

    def as_dict(self) -> dict:
        return {"container": self.container, "video": self.video, "audio": self.audio, "width": self.width,
                "height": self.height, "fps": self.fps, "duration": self.duration, "error": self.error}

    @property
    def browser_playable(self) -> bool:
        """MP4/MOV with H.264 video and AAC/MP3 audio (or none) plays in every browser's <video>."""
        return (self.error is None and self.container is not None
                and any(c in self.container.split(",") for c in ("mov", "mp4"))
                and self.video == "h264" and self.audio in (None, "aac", "mp3"))


def probe(path: Path) -> MediaInfo:
    """Container, codecs, size, duration and the device's creation time, as PyAV reads them; never raises."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            info = MediaInfo(container=container.format.name)
            if container.duration:
                info.duration = container.duration / 1_000_000
            for stream in container.streams:
                if stream.type == "video" and info.video is None:
                    info.video = stream.codec_context.name
                    info.width, info.height = stream.codec_context.width, stream.codec_context.height
                    if stream.average_rate:
                        info.fps = float(stream.average_rate)
                elif stream.type == "audio" and info.audio is None:
                    info.audio = stream.codec_context.name
                elif stream.type in ("subtitle", "data"):
                    info.text_tracks += 1
            info.location = container.metadata.get("location") or container.metadata.get("location-eng")
            stamp = container.metadata.get("creation_time")
            if stamp:
                try:
                    info.creation_time = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
                except ValueError:
                    pass
            return info
    except Exception as exc:  # noqa: BLE001 - any file may arrive; it is kept all the same
        return MediaInfo(error=f"{type(exc).__name__}: {exc}"[:300])


# --- ingest ----------------------------------------------------------------------------------------------------------

def _shift_for(session: Session, device: BodycamDevice, device_time: datetime | None) -> BodycamShift | None:
    """The shift during which the device recorded at ``device_time`` (its own clock), else its latest shift."""
    if device_time is None:
        return latest_shift(session, device.id)
    shifts = session.scalars(select(BodycamShift).where(BodycamShift.device_id == device.id)
                             .order_by(BodycamShift.checked_out_at.desc()).limit(50))
    for shift in shifts:
        when = corrected(device_time, shift.clock_offset_ms)
        if shift.checked_out_at <= when and (shift.checked_in_at is None or when <= shift.checked_in_at):
            return shift
    return None


def hash_and_index(path: Path) -> tuple[str, MediaInfo]:
    """The file's SHA-256 in one sequential pass, while the index (PyAV) reads its header beside it (both let go of
    the GIL). Touches no database: several files may be read at once, one per thread."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="kuzet-probe") as pool:
        probing = pool.submit(probe, path)
        digest = sha256_file(path)
        return digest, probing.result()


def ingest_file(session: Session, root: Path, actor: Actor, *, device: BodycamDevice, source: Path, filename: str,
                via: str, ingested_by: int | None, device_started_at: datetime | None = None,
                sha256: str | None = None, info: MediaInfo | None = None) -> BodycamRecording:
    """Take ``source`` (moved, never re-written) as an original recording of ``device``. Audited with the hash.

    ``sha256`` is the hash taken as the bytes arrived (a tus upload, or the watch folder's reading threads, which pass
    the ``info`` read beside it): the file is then not read again (only its header, without ``info``). Otherwise the
    file is hashed here (``hash_and_index``). Should anything fail once the file is moved, it is moved back to
    ``source`` before the error goes on (the session's rows go with the error); ``put_back`` does the same for a
    commit that fails after this returns."""
    size = source.stat().st_size
    if sha256:
        digest = sha256
        info = info if info is not None else probe(source)
    else:
        digest, info = hash_and_index(source)
    device_time = device_started_at or info.creation_time
    shift = _shift_for(session, device, device_time)
    offset = shift.clock_offset_ms if shift else None
    now = utcnow()
    duration = timedelta(seconds=info.duration or 0)
    started = corrected(device_time, offset) if device_time else now - duration
    suffix = Path(filename).suffix.lower()
    suffix = suffix if suffix in MEDIA_SUFFIXES else ".bin"
    recording = BodycamRecording(
        device_id=device.id, officer_id=shift.officer_id if shift else None, shift_id=shift.id if shift else None,
        organisation_id=device.organisation_id, filename=filename[:255], path="", bytes=size, sha256=digest,
        media=info.as_dict(), started_at=started, ended_at=started + duration, device_started_at=device_time,
        ingested_at=now, ingested_by=ingested_by, via=via)
    session.add(recording)
    session.flush()
    relative = Path("originals") / f"{started:%Y}" / f"{started:%m}" / f"{recording.id}-{digest[:16]}{suffix}"
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(source.stat().st_mode)
    try:
        os.replace(source, target)
    except OSError:  # another filesystem: copy, then check the copy is the same bytes before the source goes
        shutil.copyfile(source, target)
        if sha256_file(target) != digest:
            target.unlink(missing_ok=True)
            raise OSError(f"the copy of {source} does not hash like the original; nothing was ingested") from None
        source.unlink()
    try:
        os.chmod(target, 0o400)
        recording.path = str(relative)
        gps = _embedded_gps(session, recording, target, info)
        audit.append(session, actor, Action.INGESTED, object_type="bodycam_recording", object_id=recording.id,
                     details={"sha256": digest, "bytes": size, "filename": recording.filename, "via": via,
                              "device_id": device.id, "serial": device.serial, "officer_id": recording.officer_id,
                              "shift_id": recording.shift_id, "clock_offset_ms": offset,
                              "device_started_at": device_time.isoformat() if device_time else None,
                              "started_at": started.isoformat(), **gps})
    except BaseException:
        _move_back(target, source, mode)
        raise
    return recording


def _move_back(target: Path, source: Path, mode: int) -> None:
    """An original whose ingest failed goes back where it came from, as it came (its mode too)."""
    if target.exists() and not source.exists():
        os.chmod(target, mode | stat.S_IRUSR)
        shutil.move(target, source)  # a rename, or a copy back if it had crossed filesystems


def put_back(root: Path, recording: BodycamRecording, source: Path, mode: int,
             side_files: list[tuple[Path, int]]) -> None:
    """Undo ``ingest_file``'s move (and ``attach_side_files``' moves) when the session that holds its rows could not
    commit: nothing is left half-ingested; the files are where they were, as they were, and can be taken again."""
    if not recording.path:
        return
    target = root / recording.path
    for side, side_mode in side_files:
        _move_back(target.with_name(f"{target.stem}-track{side.suffix.lower()}"), side, side_mode)
    _move_back(target, source, mode)


def _embedded_gps(session: Session, recording: BodycamRecording, path: Path, info: MediaInfo) -> dict:
    """The GPS track a dash camera wrote inside the file, kept as the recording's track (a side file, read after,
    replaces it). A bad track never stops the ingest: the original is kept and the problem said in the audit."""
    from kuzet.services.bodycams.tracks import TrackError, embedded_track, store_track

    quicktime = info.container is not None and any(c in info.container.split(",") for c in ("mov", "mp4"))
    if info.error is not None or not (info.text_tracks or info.location or quicktime):  # freeGPS: MP4/MOV atoms
        return {}
    try:
        source, points = embedded_track(path, recording.started_at)
    except TrackError as exc:
        log.warning("bodycam recording %s: its embedded GPS track is not read: %s", recording.id, exc)
        return {"gps_error": str(exc)}
    if not points:
        return {}
    store_track(session, recording, points)
    recording.media = {**(recording.media or {}), "gps": source}
    return {"gps": source, "gps_points": len(points)}


def needs_playable(media: dict | None) -> bool:
    """A video that was read (no probe error) and cannot play in a browser as it is."""
    info = media or {}
    if info.get("error") or not info.get("video"):
        return False
    return not MediaInfo(**{k: info.get(k) for k in ("container", "video", "audio")}).browser_playable


def make_playable(session: Session, root: Path, actor: Actor, recording: BodycamRecording,
                  ffmpeg: str | None = None) -> bool:
    """A browser-playable copy (H.264/AAC MP4) of an original that cannot play, hashed and linked to it. False when
    none is needed (or one exists already)."""
    from kuzet.services.recording.ffmpeg import ffmpeg_binary

    if recording.playable_path or recording.deleted_at is not None or not needs_playable(recording.media):
        return False
    relative = Path("playable") / f"{recording.id}-{recording.sha256[:16]}.mp4"
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_suffix(".part.mp4")
    command = [ffmpeg_binary(ffmpeg), "-nostdin", "-v", "error", "-y", "-i", str(root / recording.path),
               "-map", "0:v:0", "-map", "0:a:0?", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
               "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart", str(temp)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=6 * 3600)
    if result.returncode != 0:
        temp.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg could not make a playable copy: {result.stderr.strip()[-300:]}")
    os.replace(temp, target)
    os.chmod(target, 0o400)
    recording.playable_path = str(relative)
    recording.playable_sha256 = sha256_file(target)
    recording.playable_bytes = target.stat().st_size
    audit.append(session, actor, Action.PLAYABLE_MADE, object_type="bodycam_recording", object_id=recording.id,
                 details={"original_sha256": recording.sha256, "sha256": recording.playable_sha256,
                          "bytes": recording.playable_bytes, "codec": "h264/aac mp4"})
    return True


# --- tus uploads -----------------------------------------------------------------------------------------------------

def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (tus 1.0 creation)."""
    out: dict[str, str] = {}
    for pair in (header or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, value = pair.partition(" ")
        if not key or not key.isascii() or " " in key:
            raise UploadError(f"Upload-Metadata: {key!r} is not a key")
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8") if value.strip() else ""
        except (ValueError, UnicodeDecodeError):
            raise UploadError(f"Upload-Metadata: the value of {key!r} is not base64 of UTF-8 text") from None
    return out


def part_path(root: Path, upload_id: str) -> Path:
    return root / "uploads" / f"{upload_id}.part"


def stored_file(root: Path, relative: str) -> Path:
    """The file of the bodycams directory indexed at ``relative`` (an original, a playable or redacted copy, a
    disclosure package); FileNotFoundError when it is gone or the path would leave the directory."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise FileNotFoundError(relative)
    return path


def create_upload(session: Session, root: Path, actor: Actor, by: User, *, length: int, metadata: dict[str, str],
                  max_bytes: int, expiry_hours: int) -> BodycamUpload:
    serial = metadata.get("device", "").strip()
    if not serial:
        raise UploadError("Upload-Metadata: 'device' (the device's serial number) is required")
    device = session.scalar(select(BodycamDevice).where(BodycamDevice.serial == serial))
    if device is None or not manages_device(session, by, device) and not _officer_of(session, by, device):
        raise UploadDenied("device not found")
    if length < 0:
        raise UploadError("Upload-Length must not be negative")
    if length > max_bytes:
        raise UploadError(f"Upload-Length {length} is larger than the {max_bytes} bytes this server accepts")
    filename = SAFE_NAME.sub("_", Path(metadata.get("filename", "") or "recording.mp4").name)[:200] or "recording"
    started = None
    if metadata.get("recorded_at"):
        try:
            started = datetime.fromisoformat(metadata["recorded_at"].replace("Z", "+00:00"))
        except ValueError:
            raise UploadError("Upload-Metadata: 'recorded_at' is not an ISO 8601 time") from None
        if started.tzinfo is None:
            raise UploadError("Upload-Metadata: 'recorded_at' needs a time zone")
    upload = BodycamUpload(id=uuid.uuid4().hex, device_id=device.id, created_by=by.id, length=length, offset=0,
                           filename=filename, device_started_at=started,
                           expires_at=utcnow() + timedelta(hours=expiry_hours))
    session.add(upload)
    part = part_path(root, upload.id)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.touch(mode=0o600)
    audit.append(session, actor, Action.UPLOAD_STARTED, object_type="bodycam_upload", object_id=upload.id,
                 details={"device_id": device.id, "serial": device.serial, "length": length, "filename": filename})
    return upload


def _officer_of(session: Session, user: User, device: BodycamDevice) -> bool:
    """The officer who has (or last had) the device may offload it themselves."""
    shift = latest_shift(session, device.id)
    return shift is not None and shift.officer_id == user.id and user.is_active


def upload_for(session: Session, user: User, upload_id: str) -> BodycamUpload:
    """The upload if the caller made it or manages its device; 404 otherwise (and for finished or expired ones)."""
    upload = session.get(BodycamUpload, upload_id) if re.fullmatch(r"[0-9a-f]{32}", upload_id or "") else None
    if upload is None or upload.recording_id is not None or upload.expires_at <= utcnow():
        raise UploadDenied("upload not found")
    device = session.get(BodycamDevice, upload.device_id)
    if upload.created_by != user.id and not manages_device(session, user, device):
        raise UploadDenied("upload not found")
    return upload


@dataclass
class _RunningHash:
    """The SHA-256 of an upload's part as this process left it: good while the part is exactly as it was then."""

    digest: hashlib._Hash
    offset: int
    stamp: tuple[int, int, int, int]  # the part's inode, size, mtime and ctime (ns) when this process let go of it


_RUNNING: dict[str, _RunningHash] = {}
_RUNNING_LOCK = threading.Lock()
_RUNNING_MAX = 10_000  # unfinished uploads this process remembers; the oldest are hashed again from the part if needed


def _stamp(fd: int) -> tuple[int, int, int, int]:
    st = os.fstat(fd)
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def forget_running_hash(upload_id: str) -> None:
    """Drop what this process remembers of an upload's hash (finished, cancelled, expired; or a restart in tests)."""
    with _RUNNING_LOCK:
        _RUNNING.pop(upload_id, None)


class PartWriter:
    """Appends to an upload's part file under an exclusive lock (one writer per upload, across processes), and hashes
    the bytes as they are written, so that the last byte's arrival leaves nothing to read again.

    The SHA-256 is carried from one PATCH to the next in this process's memory (a hash object cannot be pickled or
    stored): it is taken up only when the part is exactly as this process left it (same offset, inode, size, mtime
    and ctime, checked under the lock). Otherwise (the first PATCH went to another worker, the server restarted, a
    write went wrong) the stored part up to the recorded offset is hashed once here, in one sequential pass."""

    def __init__(self, path: Path, offset: int, upload_id: str | None = None) -> None:
        self.upload_id = upload_id
        self.file = open(path, "r+b")  # noqa: SIM115 - closed by close()
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            raise UploadConflict("another request is writing this upload; ask its offset (HEAD) and resume") from None
        try:
            stamp = _stamp(self.file.fileno())
            if stamp[1] < offset:
                raise UploadConflict("the stored part is shorter than the recorded offset")
            with _RUNNING_LOCK:
                running = _RUNNING.pop(upload_id, None) if upload_id else None
            self.file.truncate(offset)  # bytes past the recorded offset were never confirmed: drop them
            self.file.seek(offset)
            self.resumed_from_memory = running is not None and running.offset == offset and running.stamp == stamp
            if self.resumed_from_memory:
                self.digest = running.digest
            else:
                self.file.flush()
                self.digest = hash_file(path, offset) if offset else hashlib.sha256()
        except BaseException:
            self.file.close()
            raise
        self.offset = offset
        self.written = 0
        self.lock = threading.Lock()  # a write still running in a worker thread finishes before close() lets go

    def write(self, data: bytes) -> None:
        with self.lock:
            self.file.write(data)
            self.digest.update(data)  # only once written: a failed write leaves the hash at the bytes that are there
            self.written += len(data)

    def close(self) -> None:
        """Flush to the disk and let go; this process remembers the hash at the new offset for the next PATCH."""
        with self.lock:
            try:
                self.file.flush()
                os.fsync(self.file.fileno())
                stamp = _stamp(self.file.fileno())
            finally:
                self.file.close()  # the flock goes with it
        if self.upload_id and stamp[1] == self.offset + self.written:
            with _RUNNING_LOCK:
                while len(_RUNNING) >= _RUNNING_MAX:
                    _RUNNING.pop(next(iter(_RUNNING)))
                _RUNNING[self.upload_id] = _RunningHash(self.digest.copy(), self.offset + self.written, stamp)

    def sha256(self) -> str:
        """The SHA-256 of the part as written so far (from its first byte)."""
        return self.digest.hexdigest()


def cancel_upload(session: Session, root: Path, actor: Actor, upload: BodycamUpload) -> None:
    forget_running_hash(upload.id)
    part_path(root, upload.id).unlink(missing_ok=True)
    audit.append(session, actor, Action.UPLOAD_CANCELLED, object_type="bodycam_upload", object_id=upload.id,
                 details={"offset": upload.offset, "length": upload.length})
    session.delete(upload)


def finish_upload(db: Database, root: Path, actor: Actor, upload_id: str, sha256: str | None = None) -> int:
    """Ingest a complete upload's part (``sha256``: hashed as it arrived, so only its header is read; ``None``: hashed
    here) and link the upload to its recording; the recording's id. Should the rows not commit, the part goes back
    where it was (``put_back``): the upload stays complete and unfinished, and an empty PATCH at its end or the next
    housekeeping pass (``finish_complete_uploads``) finishes it. Nothing is left half ingested, nothing lost."""
    part = part_path(root, upload_id)
    mode = stat.S_IMODE(part.stat().st_mode)
    recording: BodycamRecording | None = None
    try:
        with db.session() as session:
            upload = session.get(BodycamUpload, upload_id)
            device = session.get(BodycamDevice, upload.device_id)
            recording = ingest_file(session, root, actor, device=device, source=part, filename=upload.filename,
                                    via="upload", ingested_by=upload.created_by,
                                    device_started_at=upload.device_started_at, sha256=sha256)
            upload.recording_id = recording.id
            recording_id = recording.id
    except BaseException:
        if recording is not None:
            put_back(root, recording, part, mode, [])
        raise
    forget_running_hash(upload_id)
    return recording_id


def finish_complete_uploads(db: Database, root: Path, idle_seconds: float = 60) -> list[int]:
    """Uploads whose every byte arrived but whose ingest did not commit (a database fault at the last PATCH), their
    part untouched for ``idle_seconds`` and not being written: ingested now, by the system for the officer who
    uploaded. A tus client that saw its offset reach the length never sends again, so nothing else would."""
    with db.session() as session:
        complete = session.scalars(select(BodycamUpload.id).where(BodycamUpload.recording_id.is_(None),
                                                                  BodycamUpload.offset == BodycamUpload.length)).all()
    done: list[int] = []
    for upload_id in complete:
        part = part_path(root, upload_id)
        try:
            if part.stat().st_mtime > utcnow().timestamp() - idle_seconds:
                continue
            with open(part, "rb") as held:
                try:
                    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a PATCH writing it holds this lock
                except BlockingIOError:
                    continue
                fcntl.flock(held, fcntl.LOCK_UN)
            done.append(finish_upload(db, root, audit.SYSTEM, upload_id))
        except FileNotFoundError:
            continue  # finished meanwhile by its own PATCH
        except Exception:
            log.exception("the complete upload %s is not ingested yet", upload_id)
    return done


def drop_expired_uploads(session: Session, root: Path) -> int:
    """Unfinished uploads past their expiry go with their bytes; a complete one never does (it is evidence waiting for
    ``finish_complete_uploads``)."""
    expired = session.scalars(select(BodycamUpload).where(BodycamUpload.recording_id.is_(None),
                                                          BodycamUpload.offset < BodycamUpload.length,
                                                          BodycamUpload.expires_at <= utcnow())).all()
    for upload in expired:
        forget_running_hash(upload.id)
        part_path(root, upload.id).unlink(missing_ok=True)
        session.delete(upload)
    return len(expired)


# --- the watch folder ------------------------------------------------------------------------------------------------

class StillArriving(Exception):
    """The file changed while it was read: the dock is still writing it. Left for a later pass."""


@dataclass
class Arrival:
    """A watched file read once (hash and index) in a reading thread, before any database row is written."""

    path: Path
    device_id: int
    sha256: str
    info: MediaInfo
    mode: int
    stamp: tuple[int, int, int, int]  # device, inode, size, mtime (ns) as read


@dataclass
class WatchPass:
    """What one look at the watch folder did: the new recordings, the files that failed (left in place, with why) and
    the files not yet settled (the dock is still copying them)."""

    ingested: list[int]
    failed: dict[str, str]
    waiting: list[str]


def _arrival_stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def read_arrival(path: Path, device_id: int) -> Arrival:
    """Hash and index a settled file (one sequential pass, see ``hash_and_index``); StillArriving when its size,
    mtime or inode moved while it was read (a dock writing again into a file that looked settled), so that no hash of
    half a file is ever kept."""
    before = os.stat(path)
    digest, info = hash_and_index(path)
    stamp = _arrival_stamp(before)
    if _arrival_stamp(os.stat(path)) != stamp:
        raise StillArriving(f"{path} changed while it was read")
    return Arrival(path, device_id, digest, info, stat.S_IMODE(before.st_mode), stamp)


def ingest_workers(configured: int = 0) -> int:
    """Files read at once: ``configured``, else two per core this process may run on. Each file has one 8 MiB read
    in flight at a time, so one file per core left the cores waiting on the disk part of the time: on 2 cores, 4
    files at once ingested a dock's 2 GiB at 1,156 MiB/s against 814–882 with 2 (docs/benchmarks.md)."""
    if configured > 0:
        return configured
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, 2 * cores)


def _ingest_arrival(inst, root: Path, arrival: Arrival) -> int:  # noqa: ANN001
    """The rows and the audit record of one read file, in a session of its own (in the caller's thread: one writer);
    if anything fails, even the commit, the file and its side files go back where they were."""
    from kuzet.services.bodycams.tracks import attach_side_files

    path = arrival.path
    if _arrival_stamp(os.stat(path)) != arrival.stamp:  # written to again since it was read
        raise StillArriving(f"{path} changed after it was read")
    side_files = [p for p in (path.with_suffix(s) for s in (".gpx", ".nmea", ".GPX", ".NMEA")) if p.exists()]
    side_modes = [(p, stat.S_IMODE(p.stat().st_mode)) for p in side_files]
    recording: BodycamRecording | None = None
    try:
        with inst.db.session() as session:
            device = session.get(BodycamDevice, arrival.device_id)
            recording = ingest_file(session, root, audit.SYSTEM, device=device, source=path, filename=path.name,
                                    via="watch", ingested_by=None, sha256=arrival.sha256, info=arrival.info)
            attach_side_files(session, recording, side_files, root)
            session.flush()
            recording_id = recording.id
    except BaseException:
        if recording is not None:
            put_back(root, recording, path, arrival.mode, side_modes)
        raise
    return recording_id


def scan_watch_folder(inst, settle_seconds: float | None = None, workers: int | None = None) -> WatchPass:  # noqa: ANN001
    """Ingest every settled media file under ``<watch_dir>/<serial>/``.

    A docking station offloads several devices at once, so the settled files are read together, ``workers`` at a time
    (``[bodycams] ingest_workers``, default two per core): each reading thread hashes its file in one sequential pass
    with the index beside it (hashlib and PyAV let go of the GIL); no thread touches the database. As each file is
    read, this thread writes its rows and audit record in a session of its own (one writer, as SQLite needs). A file
    is taken once unchanged for ``settle_seconds`` and only if it did not change while it was read. A file of an
    unknown serial is left where it is and logged; a file that fails is logged, left where it was (never half
    ingested) and named in ``failed``; the others go on."""
    import time
    from concurrent.futures import ThreadPoolExecutor, as_completed

    settings = inst.settings.bodycams
    done = WatchPass([], {}, [])
    watch = settings.watch_dir
    if watch is None or not Path(watch).is_dir():
        return done
    settle = settings.settle_seconds if settle_seconds is None else settle_seconds
    root = inst.settings.bodycams_path
    folders = sorted(p for p in Path(watch).iterdir() if p.is_dir())
    if not folders:
        return done
    with inst.db.session(readonly=True) as session:
        devices = dict(session.execute(select(BodycamDevice.serial, BodycamDevice.id).where(
            BodycamDevice.serial.in_([f.name for f in folders]))).all())
    settled: list[tuple[Path, int]] = []
    for folder in folders:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
        if files and folder.name not in devices:
            log.warning("watch folder: no device with serial %r; %d file(s) left in place", folder.name, len(files))
            continue
        for path in files:
            try:
                fresh = time.time() - path.stat().st_mtime < settle
            except FileNotFoundError:
                continue
            if fresh:
                done.waiting.append(str(path))
            else:
                settled.append((path, devices[folder.name]))
    if not settled:
        return done
    count = workers or ingest_workers(settings.ingest_workers)
    with ThreadPoolExecutor(min(count, len(settled)), thread_name_prefix="kuzet-watch") as pool:
        reading = {pool.submit(read_arrival, path, device_id): path for path, device_id in settled}
        for future in as_completed(reading):
            path = reading[future]
            try:
                done.ingested.append(_ingest_arrival(inst, root, future.result()))
            except StillArriving:
                log.info("watch folder: %s changed while it was read; taken once it settles", path)
                done.waiting.append(str(path))
            except Exception as exc:
                log.exception("watch folder: %s could not be ingested; it stays where it is", path)
                done.failed[str(path)] = f"{type(exc).__name__}: {exc}"[:300]
    return done
