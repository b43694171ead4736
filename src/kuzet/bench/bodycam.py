"""``kuzet bench bodycam``: offload against the disk it reads from, and a resumable upload cut at 50 %.

In a scratch installation (SQLite, a temporary directory on the data disk): a file of ``size_mb`` MiB is written and
flushed (a real 2 s H.264 MP4 made by FFmpeg, ``moov`` first, then a ``free`` box of random bytes to the size, so the
index reads a camera's header, not garbage); its pages are dropped from the page cache (``posix_fadvise DONTNEED``)
before every timed read, so reads come from the disk. The ceiling is a bare sequential read of the file (8 MiB
blocks); ingest is ``ingest_file`` (SHA-256, PyAV index, move to the originals, the database row and its audit record)
on the same cold file. The upload goes
through a real HTTP server (uvicorn on a free loopback port) with the tus client ``tuspy``: one PATCH streams from
offset 0 and the connection is cut once 50 % has been sent; a new client asks the server's offset (HEAD) and sends the
rest but its last MiB, which goes in a PATCH of its own: that request's round trip is what the officer waits once the
last byte is sent (the server hashes the bytes as they arrive, so its ingest reads only the header and renames the
part), set against the same cold sequential read. The stored file's SHA-256 must equal the original's.

A dock's batch (``dock_files`` files, the same total size): a docking station offloads several devices at once, so
the watch folder receives many files together. They are put in a real watch folder as settled (copied a minute ago)
and ingested by ``scan_watch_folder`` itself (the settle rule, the reading threads, the rows and audit records); the
ceiling is the fastest of reading the same files cold one after another and all at once (``workers`` at a time),
each buffered and ``O_DIRECT``, before the pass, and (``O_DIRECT`` both ways) the originals again after it: all are
reported. Its CPU time is the whole process's during the pass.

Both sides of each ratio are cold (the page cache dropped before each): the bare read and the watch-folder ingest
read the same file from the disk; the upload's ratio sets the wait after the last byte against that read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

BLOCK = 8 << 20
TAIL = 1 << 20  # the upload's last PATCH


def _drop_cache(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
        os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def _sequential_read(path: Path) -> float:
    """Seconds to read the file once, cold, in 8 MiB blocks (the ceiling): the faster of a buffered read and a direct
    one (``O_DIRECT`` into one reused buffer, as the ingest reads), so the ceiling is the disk's best, not a slow way
    of reading it."""
    import mmap

    _drop_cache(path)
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as fh:
        while fh.read(BLOCK):
            pass
    buffered = time.perf_counter() - started
    if not getattr(os, "O_DIRECT", 0):
        return buffered
    _drop_cache(path)
    buffer = mmap.mmap(-1, BLOCK)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError:
        return buffered
    try:
        started = time.perf_counter()
        offset = 0
        while size := os.preadv(fd, [buffer], offset):
            offset += size
        direct = time.perf_counter() - started
    finally:
        os.close(fd)
        buffer.close()
    return min(buffered, direct)


def _read_files_cold(paths: list[Path], direct: bool, workers: int) -> float:
    """Seconds to read every file once from the disk (pages dropped first), ``workers`` files at a time, each in 8 MiB
    blocks, buffered or ``O_DIRECT`` into a reused page-aligned buffer: the ceiling of a dock's batch."""
    import mmap
    from concurrent.futures import ThreadPoolExecutor

    for path in paths:
        _drop_cache(path)

    def read(path: Path) -> None:
        if not direct:
            with open(path, "rb", buffering=0) as fh:
                while fh.read(BLOCK):
                    pass
            return
        buffer = mmap.mmap(-1, BLOCK)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        try:
            offset = 0
            while size := os.preadv(fd, [buffer], offset):
                offset += size
        finally:
            os.close(fd)
            buffer.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(read, paths))
    return time.perf_counter() - started


def _dock_ceiling(paths: list[Path], workers: int, buffered: bool = True) -> dict[str, float]:
    """The batch read cold one file after another and ``workers`` at a time, each way buffered and ``O_DIRECT``
    (where the filesystem takes it): seconds of each."""
    out = {}
    modes = [False] if buffered else []
    if getattr(os, "O_DIRECT", 0):
        try:
            os.close(os.open(paths[0], os.O_RDONLY | os.O_DIRECT))
            modes.append(True)
        except OSError:
            pass
    for together in (1, workers):
        for direct in modes:
            out[f"{'together' if together > 1 else 'serial'}_{'direct' if direct else 'buffered'}"] = \
                _read_files_cold(paths, direct, together)
    return out


def _media_head(work: Path) -> bytes:
    """A real 2 s H.264 MP4 with its ``moov`` first (``+faststart``), made by FFmpeg: the file starts as a camera's."""
    import subprocess

    from kuzet.services.recording.ffmpeg import ffmpeg_binary

    clip = work / "head.mp4"
    subprocess.run([ffmpeg_binary(), "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=320x240:rate=25:duration=2", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(clip)], check=True, timeout=120)
    head = clip.read_bytes()
    clip.unlink()
    return head


def _write_file(path: Path, size: int, progress: Callable[[str, int, int], None], head: bytes = b"") -> str:
    """``head`` (a small MP4), then a ``free`` box filling the file to ``size`` with random bytes: a valid MP4 of that
    size whose index reads like a camera's (header and ``moov``), with nothing below that can compress the rest."""
    block = os.urandom(BLOCK)
    digest = hashlib.sha256()
    prefix = head + ((1).to_bytes(4, "big") + b"free" + (size - len(head)).to_bytes(8, "big") if head else b"")
    if len(prefix) > size:
        raise ValueError("the file is smaller than its MP4 header")
    written = 0
    with open(path, "wb") as fh:
        fh.write(prefix)
        digest.update(prefix)
        written = len(prefix)
        while written < size:
            # every block differs (a counter in front), so nothing below can deduplicate or compress it away
            piece = (written.to_bytes(8, "little") + block[8:])[: size - written]
            fh.write(piece)
            digest.update(piece)
            written += len(piece)
            progress("writing the test file", written, size)
        fh.flush()
        os.fsync(fh.fileno())
    return digest.hexdigest()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_offload_benchmark(size_mb: int = 2048, work_dir: Path | None = None,
                          progress: Callable[[str, int, int], None] | None = None, dock_files: int = 4) -> dict:
    import httpx
    import uvicorn
    from sqlalchemy import select

    from kuzet.api.app import create_app
    from kuzet.config import load_settings
    from kuzet.installation import Installation
    from kuzet.services import accounts
    from kuzet.services.audit import SYSTEM, Actor
    from kuzet.services.bodycams import devices, offload, units
    from kuzet.services.places import create_organisation
    from kuzet.store.models.bodycams import BodycamRecording

    progress = progress or (lambda *_: None)
    size = size_mb << 20
    scratch = Path(tempfile.mkdtemp(prefix="kuzet-bench-bodycam-", dir=work_dir))
    try:
        inst = Installation.open(settings=load_settings(environ={"KUZET_DATA_DIR": str(scratch / "data")}))
        inst.init()
        password = "bench-password-1"
        with inst.db.session() as session:
            org = create_organisation(session, SYSTEM, "bench unit", "police_duty_unit")
            admin = accounts.create_user(session, SYSTEM, "bench-admin", password, "platform_admin")
            officer = accounts.create_user(session, SYSTEM, "bench-officer", password, "responder",
                                           organisation=org.id)
            units.assign_duty(session, SYSTEM, admin, user_id=officer.id, duty="officer", legal_basis="bench")
            device = devices.register_device(session, SYSTEM, admin, serial="BENCH-1", kind="body",
                                             organisation_id=org.id)
            devices.check_out(session, SYSTEM, admin, device, officer.id)
            devices.check_in(session, SYSTEM, admin, device)
            device_id = device.id
        source = scratch / "source.mp4"
        original = _write_file(source, size, progress, _media_head(scratch))
        progress("reading the disk", 0, 1)
        read_seconds = _sequential_read(source)

        # --- the resumable upload, cut at 50 % ---------------------------------------------------------------------
        import av  # noqa: F401 - loaded as in a server that has ingested before (the first import takes ≈ 0.3 s)
        from tusclient import client as tus

        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(inst), host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}/api/v1/bodycams/uploads"
        try:
            auth = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/token",
                              data={"username": "bench-officer", "password": password}).json()["access_token"]
            headers = {"Authorization": f"Bearer {auth}"}
            uploader = tus.TusClient(base, headers=headers).uploader(
                str(source), chunk_size=64 << 20, metadata={"device": "BENCH-1", "filename": "bench.mp4"},
                retries=10, retry_delay=0.5)
            uploader.set_url(uploader.create_url())
            half = size // 2
            sent_first = 0

            def first_half():  # noqa: ANN202
                nonlocal sent_first
                with open(source, "rb") as fh:
                    while sent_first < half:
                        block = fh.read(min(1 << 20, half - sent_first))
                        sent_first += len(block)
                        progress("uploading (until the cut at 50 %)", sent_first, size)
                        yield block
                raise ConnectionResetError("the connection is cut at 50 %")

            started = time.perf_counter()
            try:
                httpx.patch(uploader.url, content=first_half(), timeout=None, headers={
                    **headers, "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream", "Content-Length": str(size)})
            except (httpx.HTTPError, ConnectionResetError):
                pass
            # The cut request finishes on the server in its own time; its bytes count once it has let go.
            offset_after_cut = -1
            for _ in range(200):
                response = httpx.head(uploader.url, headers={**headers, "Tus-Resumable": "1.0.0"})
                current = int(response.headers["Upload-Offset"])
                if current == offset_after_cut:
                    break
                offset_after_cut = current
                time.sleep(0.25)
            resumed = tus.TusClient(base, headers=headers).uploader(str(source), url=uploader.url,
                                                                    chunk_size=64 << 20, retries=10, retry_delay=0.5)
            resumed_from = resumed.offset
            last = size - min(TAIL, size - resumed_from)  # the last MiB goes alone: its round trip is the wait
            while resumed.offset < last:
                resumed.chunk_size = min(64 << 20, last - resumed.offset)
                resumed.upload_chunk()
                progress("uploading (resumed)", resumed.offset, size)
            with open(source, "rb") as fh:
                fh.seek(last)
                tail = fh.read()
            finish_started = time.perf_counter()
            finished = httpx.patch(uploader.url, content=tail, timeout=None, headers={
                **headers, "Tus-Resumable": "1.0.0", "Upload-Offset": str(last),
                "Content-Type": "application/offset+octet-stream"})
            finish_seconds = time.perf_counter() - finish_started
            upload_seconds = time.perf_counter() - started
            if finished.status_code != 204 or "X-Kuzet-Recording" not in finished.headers:
                raise RuntimeError(f"the last PATCH was not taken: {finished.status_code} {finished.text[:200]}")
        finally:
            server.should_exit = True
            thread.join(30)
        with inst.db.session() as session:
            uploaded = session.scalar(select(BodycamRecording).where(BodycamRecording.via == "upload"))
            uploaded_hash, uploaded_bytes = uploaded.sha256, uploaded.bytes
            stored_ok = hashlib.sha256((inst.settings.bodycams_path / uploaded.path).read_bytes()).hexdigest() \
                == original if size <= (256 << 20) else None

        # --- ingest of the same file, cold, against the bare read --------------------------------------------------
        progress("ingesting", 0, 1)
        copy = scratch / "ingest.mp4"
        shutil.copyfile(source, copy)
        _drop_cache(copy)
        read_seconds_2 = _sequential_read(copy)
        _drop_cache(copy)
        started = time.perf_counter()
        cpu_started = time.thread_time()  # the hash runs on this thread: its CPU time, whatever the load
        with inst.db.session() as session:
            from kuzet.store.models.bodycams import BodycamDevice

            device = session.get(BodycamDevice, device_id)
            recording = offload.ingest_file(session, inst.settings.bodycams_path, Actor(None, "bench"),
                                            device=device, source=copy, filename="ingest.mp4", via="watch",
                                            ingested_by=None)
            ingest_hash = recording.sha256
            ingest_media = f"{(recording.media or {}).get('container')} {(recording.media or {}).get('video')}"
        ingest_seconds = time.perf_counter() - started
        ingest_cpu = time.thread_time() - cpu_started
        source.unlink()  # the dock's files take its place on the disk
        dock = _dock_batch(inst, scratch, size, dock_files, progress) if dock_files > 0 else None
        inst.close()
        ceiling = min(read_seconds, read_seconds_2)
        mib = size / (1 << 20)
        return {
            "benchmark": "bodycam-offload", "size_mib": size_mb,
            "disk_read_mib_s": round(mib / ceiling, 1),
            "ingest_mib_s": round(mib / ingest_seconds, 1),
            "ingest_vs_disk": round(ceiling / ingest_seconds, 3),
            "goal_ingest_vs_disk": 0.9,
            "ingest_cpu_seconds": round(ingest_cpu, 2),
            # what one core does when it has the core to itself: MiB hashed and indexed per CPU second of the hashing
            # thread, against the same disk (on a shared machine the wall clock shows the share of a core it got)
            "ingest_mib_per_cpu_second": round(mib / ingest_cpu, 1) if ingest_cpu else None,
            "ingest_vs_disk_per_cpu_second": round(ceiling / ingest_cpu, 3) if ingest_cpu else None,
            "load_average": os.getloadavg()[0],
            "ingest_hash_matches": ingest_hash == original,
            "indexed_as": ingest_media,
            "dock": dock,
            "upload": {
                "cut_at_bytes": sent_first, "offset_after_cut": offset_after_cut, "resumed_from": resumed_from,
                "bytes_sent_after_resume": size - resumed_from,
                "re_sent_bytes": max(0, offset_after_cut - resumed_from),  # bytes the server had, sent again
                "lost_in_transit_bytes": sent_first - offset_after_cut,
                "stored_sha256_matches": uploaded_hash == original and uploaded_bytes == size,
                "stored_file_rehashed_matches": stored_ok,
                "seconds": round(upload_seconds, 2),
                "mib_s": round(mib / upload_seconds, 1),
                # the officer's wait once the last byte is sent: the last PATCH (1 MiB, written, fsynced, then the
                # ingest: hashed as it arrived, so only the header is read and the part renamed) against a cold read
                # of the whole file from the disk
                "last_patch_seconds": round(finish_seconds, 3),
                "ingest_after_last_byte_vs_disk": round(ceiling / finish_seconds, 2),
            },
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _dock_batch(inst, scratch: Path, size: int, files: int,  # noqa: ANN001
                progress: Callable[[str, int, int], None]) -> dict:
    """A dock's offload: ``files`` files of ``size / files`` bytes (each a real MP4 head padded with random bytes) put
    in the watch folder a minute ago (settled), their pages dropped, then ingested by the real watch-folder path
    (``scan_watch_folder`` with the installation's settle rule and workers). The ceiling is the faster of reading the
    same files cold one after another and all at once (buffered and ``O_DIRECT`` each, the faster way)."""
    from kuzet.services.bodycams import offload

    folder = scratch / "dock" / "BENCH-1"
    folder.mkdir(parents=True)
    head = _media_head(scratch)
    each = size // files
    paths, hashes = [], {}
    for n in range(files):
        path = folder / f"dock-{n + 1}.mp4"
        hashes[path.name] = _write_file(path, each, lambda what, done, total, n=n: progress(
            f"writing the dock's file {n + 1}/{files}", done, total), head)
        paths.append(path)
    workers = offload.ingest_workers(inst.settings.bodycams.ingest_workers)
    progress("reading the dock's files", 0, 1)
    reads = _dock_ceiling(paths, min(workers, files))
    ceiling = min(reads.values())
    past = time.time() - 60
    for path in paths:
        os.utime(path, (past, past))  # copied a minute ago: past the settle time
        _drop_cache(path)
    inst.settings.bodycams.watch_dir = scratch / "dock"
    progress("ingesting the dock's files", 0, 1)
    started, cpu_started = time.perf_counter(), time.process_time()
    watched = offload.scan_watch_folder(inst)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    from sqlalchemy import select

    from kuzet.store.models.bodycams import BodycamRecording

    with inst.db.session() as session:
        rows = session.scalars(select(BodycamRecording).where(BodycamRecording.id.in_(watched.ingested))).all()
        matches = sorted(r.filename for r in rows if r.sha256 == hashes.get(r.filename)) == sorted(hashes)
        originals = [inst.settings.bodycams_path / r.path for r in rows]
    # The disk's speed wanders (a shared virtual disk): the same bytes read again after the pass, in the originals,
    # and the ceiling is the fastest read of the batch before or after
    if len(originals) == files:
        progress("reading the dock's files again", 0, 1)
        reads.update({f"{k}_after": v for k, v in _dock_ceiling(originals, min(workers, files), False).items()})
        ceiling = min(reads.values())
    mib = each * files / (1 << 20)
    return {
        "files": files, "file_mib": round(each / (1 << 20), 1), "workers": min(workers, files),
        "disk_read_mib_s": {k: round(mib / v, 1) for k, v in reads.items()},
        "ceiling": min(reads, key=reads.get), "ceiling_mib_s": round(mib / ceiling, 1),
        "ingest_mib_s": round(mib / seconds, 1),
        "dock_ingest_vs_disk": round(ceiling / seconds, 3),
        "goal_dock_ingest_vs_disk": 0.9,
        # every thread of the process (the readers, the hashes, the index, the rows) during the pass
        "ingest_cpu_seconds": round(cpu, 2),
        "ingest_mib_per_cpu_second": round(mib / cpu, 1) if cpu else None,
        # the ratio were each reading thread given a core of its own: the pass's CPU shared over the workers
        "dock_ingest_vs_disk_per_cpu_second": round(ceiling / (cpu / min(workers, files)), 3) if cpu else None,
        "ingested": len(watched.ingested), "failed": len(watched.failed), "hashes_match": matches,
        "load_average": os.getloadavg()[0],
    }
