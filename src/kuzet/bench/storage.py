"""``kuzet bench storage``: the uploader's throughput to a real S3 server against a bare boto3 put of the same files.

A SeaweedFS server (``weed server -filer -s3``) runs in a temporary directory. The files are camera-minutes of
incompressible bytes (a 1 Mbit/s minute is 7.5 MB). The ceiling is measured first in the same run: the same files put
with plain ``put_object`` by as many threads as the uploader uses, nothing else. Then the files are indexed as closed
recordings of a throw-away installation and one uploader pass takes them all: SHA-256 of each file, the put with its
checksum, the verifying HEAD, the index update and the local delete. Every object is then checked (size and count).
The bare put runs before and after the uploader and the faster run is the ceiling, so the server's warm-up (growing
its first volumes) counts against neither.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from rich.console import Console


def run_storage_benchmark(files: int, file_bytes: int, workers: int, progress: Console | None = None) -> dict:
    from sqlalchemy import func, select

    from kuzet.config import S3Config, load_settings
    from kuzet.installation import Installation
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cameras import create_camera
    from kuzet.services.places import create_place
    from kuzet.services.recording.objectstore import ObjectStore
    from kuzet.services.recording.seaweed import SeaweedServer
    from kuzet.services.recording.segments import relative_path
    from kuzet.services.recording.uploader import Uploader
    from kuzet.store.db import utcnow
    from kuzet.store.models.recording import Recording

    def say(text: str) -> None:
        if progress is not None:
            progress.print(text, highlight=False)

    with tempfile.TemporaryDirectory(prefix="kuzet-bench-storage-") as tmp:
        work = Path(tmp)
        say("starting SeaweedFS…")
        with SeaweedServer(work / "seaweed") as server:
            config = S3Config(endpoint=server.endpoint, bucket="bench-bare", access_key=server.access_key,
                              secret_key=server.secret_key, upload_workers=workers)
            say(f"writing {files} files of {file_bytes:,} bytes…")
            source = work / "source"
            source.mkdir()
            paths = []
            for i in range(files):
                path = source / f"{i:05d}.mp4"
                path.write_bytes(os.urandom(file_bytes))
                paths.append(path)
            total = files * file_bytes

            # 1. The ceiling: bare puts of the same files, same number of threads.
            bare = ObjectStore(config)
            bare.ensure_bucket()

            def bare_run(run: int) -> float:
                def put(path: Path) -> None:
                    with open(path, "rb") as fh:
                        bare.client.put_object(Bucket=bare.bucket, Key=f"bare{run}/{path.name}", Body=fh)

                say(f"bare boto3 put_object (run {run})…")
                t0 = time.perf_counter()
                with ThreadPoolExecutor(workers) as pool:
                    list(pool.map(put, paths))
                return time.perf_counter() - t0

            bare_times = [bare_run(1)]

            # 2. The uploader, from the index, with verification and the local delete.
            data = work / "kuzet"
            env = {"KUZET_DATA_DIR": str(data), "KUZET_STORAGE__BACKEND": "s3",
                   "KUZET_STORAGE__S3__ENDPOINT": server.endpoint, "KUZET_STORAGE__S3__BUCKET": "bench-kuzet",
                   "KUZET_STORAGE__S3__ACCESS_KEY": server.access_key,
                   "KUZET_STORAGE__S3__SECRET_KEY": server.secret_key,
                   "KUZET_STORAGE__S3__UPLOAD_WORKERS": str(workers)}
            inst = Installation.open(settings=load_settings(environ=env))
            inst.init()
            start = utcnow() - timedelta(minutes=files + 1)
            with inst.db.session() as session:
                place = create_place(session, SYSTEM, "district", "bench")
                camera = create_camera(session, SYSTEM, inst.keys, name="bench", place_id=place.id,
                                       main_url="rtsp://10.0.0.1/bench")
                for i, path in enumerate(paths):
                    t = start + timedelta(minutes=i)
                    rel = relative_path(camera.id, t)
                    target = inst.settings.recordings_path / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.link(path, target)  # the uploader deletes its copy; the bare run after it reads the source
                    session.add(Recording(camera_id=camera.id, path=rel, start_at=t, end_at=t + timedelta(minutes=1),
                                          bytes=file_bytes, state="closed", keyframes=b""))
            uploader = Uploader(inst.settings, inst.db)
            say("uploader pass…")
            t0 = time.perf_counter()
            report = uploader.run_once()
            up_seconds = time.perf_counter() - t0
            objects = uploader.store.list_sizes()
            with inst.db.session() as session:
                keyed = session.scalar(select(func.count()).where(Recording.object_key.is_not(None)))
            left_local = sum(1 for _ in inst.settings.recordings_path.rglob("*.mp4"))
            inst.close()
            bare_times.append(bare_run(2))  # before and after: the server's own warm-up counts against neither
            bare_seconds = min(bare_times)

    mbps = lambda seconds: round(total * 8 / seconds / 1e6, 1)  # noqa: E731
    return {
        "files": files, "file_bytes": file_bytes, "bytes": total, "workers": workers,
        "bare_put": {"seconds": round(bare_seconds, 3), "mbit_per_s": mbps(bare_seconds),
                     "runs_seconds": [round(t, 3) for t in bare_times]},
        "uploader": {"seconds": round(up_seconds, 3), "mbit_per_s": mbps(up_seconds),
                     "uploaded": report.uploaded, "error": report.error},
        "uploader_vs_bare": round(up_seconds / bare_seconds, 2),
        "camera_minutes_per_s": round(files / up_seconds, 1),
        "cameras_at_1mbit_sustained": int(total * 8 / up_seconds / 1e6),
        "verified": {"objects": len(objects), "bytes_in_s3": sum(objects.values()), "indexed_keys": keyed,
                     "local_files_left": left_local,
                     "ok": len(objects) == files and sum(objects.values()) == total and keyed == files
                     and left_local == 0},
    }
