"""``kuzet bench scale``: several ``kuzet serve`` recorder nodes on one machine, on PostgreSQL and NATS (and SeaweedFS
when ``weed`` is installed), recording N simulated 1 Mbit/s cameras (``kuzet sim``).

Measured, in one run:

1. **single box** — one ``kuzet serve`` without leases records every camera: recorder CPU per stream (the process and
   its ffmpeg children, from /proc), the ceiling the cluster is compared with;
2. **cluster** — ``nodes`` recorder nodes with ``[cluster] enabled``: cameras per node, CPU per stream on each, the
   ratio to the single box;
3. **kill -9** of the node holding the most cameras (and of its ffmpeg children): seconds until each of its cameras
   records again on another node (from the kill to the new file's start) and the recorded gap (the old node's last
   indexed moment to the new node's first), gaps per moved camera with their reasons, and whether any camera's files
   of two nodes overlap in time (never two writers);
4. with S3: every uploaded file's object is in the bucket with its recorded size (bytes in S3 = bytes recorded for the
   uploaded files), and how many closed files still wait for upload.

Everything runs on loopback; every process it starts is stopped at the end, and the PostgreSQL schema is dropped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from kuzet.bench import create_scratch_schema, drop_scratch_schema
from kuzet.bench.recording import _cpu_seconds, _free_port, _tree, _wait_port

SCALE_CLIP_NAME = "scale-main"
Say = Callable[[str], None]


def _serve(data: Path, env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    with open(log, "wb") as fh:
        return subprocess.Popen([sys.executable, "-m", "kuzet.cli.main", "serve", "--port", str(port)],
                                env={**os.environ, "KUZET_DATA_DIR": str(data), **env}, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen | None, timeout: float = 60) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)


def _kill(proc: subprocess.Popen) -> None:
    """kill -9 of the process and of every process under it (its ffmpeg children run in sessions of their own)."""
    pids = _tree(proc.pid)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(30)


def _wait(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.5) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


def _cpu_per_stream(pid: int, cameras: int, seconds: float) -> tuple[float, float]:
    """(CPU % of one core per stream, wall seconds) of the process tree of ``pid`` over ``seconds``."""
    pids = _tree(pid)
    cpu0, t0 = _cpu_seconds(pids), time.monotonic()
    time.sleep(seconds)
    pids = _tree(pid)
    cpu1, t1 = _cpu_seconds(pids), time.monotonic()
    return 100 * (cpu1 - cpu0) / (t1 - t0) / max(cameras, 1), t1 - t0


def run_scale_benchmark(database_url: str, events_url: str, *, cameras: int = 30, nodes: int = 3,
                        seconds: float = 30.0, s3: bool | None = None, say: Say | None = None) -> dict:
    """See the module's docstring. ``s3``: None = when ``weed`` is installed."""
    from sqlalchemy import distinct, func, select

    from kuzet.config import load_settings
    from kuzet.installation import Installation
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cameras import create_camera
    from kuzet.services.cluster.leases import database_now
    from kuzet.services.places import create_place
    from kuzet.services.recording.seaweed import SeaweedServer, SeaweedUnavailable, weed_binary
    from kuzet.services.simulator.clips import ClipSpec, ensure_clip
    from kuzet.store.db import Database
    from kuzet.store.models.cluster import CameraLease
    from kuzet.store.models.recording import Gap, Recording

    say = say or (lambda text: None)
    if not database_url.startswith("postgresql"):
        raise RuntimeError("the scale benchmark needs PostgreSQL: --database postgresql+psycopg://…")
    if not events_url.startswith("nats"):
        raise RuntimeError("the scale benchmark needs NATS: --events nats://…")
    use_s3 = weed_binary() is not None if s3 is None else s3
    work = Path(tempfile.mkdtemp(prefix="kuzet-bench-scale-"))
    schema, url = create_scratch_schema(database_url, "kz_scale")
    procs: dict[str, subprocess.Popen] = {}
    sim: subprocess.Popen | None = None
    seaweed: SeaweedServer | None = None
    db = Database(url)
    result: dict = {"benchmark": "scale", "cameras": cameras, "nodes": nodes, "seconds": seconds,
                    "stream": "H.264 1280x720 25 fps 1 Mbit/s, RTSP/TCP", "database": "postgresql",
                    "events": "nats", "storage": "s3 (SeaweedFS)" if use_s3 else "local disk"}
    try:
        clip = ensure_clip(ClipSpec(SCALE_CLIP_NAME, 1280, 720, bitrate_kbps=1000, seconds=20, gop=25))
        sim_port = _free_port()
        sim = subprocess.Popen([sys.executable, "-m", "kuzet.cli.main", "sim", "--cameras", str(cameras), "--port",
                                str(sim_port), "--file", str(clip)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
        _wait_port(sim_port)
        env = {"KUZET_DATABASE_URL": url, "KUZET_EVENTS_URL": events_url, "KUZET_STORAGE__MIN_FREE_BYTES": "0",
               "KUZET_OPERATIONS__ENABLED": "false", "KUZET_RECORDER__FILE_SECONDS": "10"}
        if use_s3:
            say("starting SeaweedFS…")
            try:
                seaweed = SeaweedServer(work / "seaweed").start()
            except SeaweedUnavailable as exc:
                raise RuntimeError(f"SeaweedFS did not start: {exc}") from None
            env |= {"KUZET_STORAGE__BACKEND": "s3", "KUZET_STORAGE__S3__ENDPOINT": seaweed.endpoint,
                    "KUZET_STORAGE__S3__BUCKET": "kuzet-scale", "KUZET_STORAGE__S3__ACCESS_KEY": seaweed.access_key,
                    "KUZET_STORAGE__S3__SECRET_KEY": seaweed.secret_key, "KUZET_STORAGE__S3__INTERVAL": "1"}
        site = work / "site"
        inst = Installation.open(settings=load_settings(environ={"KUZET_DATA_DIR": str(site), **env}))
        inst.init()
        with inst.db.session() as s:
            place = create_place(s, SYSTEM, "district", "scale bench")
            ids = [create_camera(s, SYSTEM, inst.keys, name=f"scale {k}", place_id=place.id,
                                 main_url=f"rtsp://127.0.0.1:{sim_port}/cam{k}").id for k in range(1, cameras + 1)]
        inst.close()

        def node_dir(name: str) -> Path:
            path = work / name
            path.mkdir(exist_ok=True)
            shutil.copytree(site / "keys", path / "keys", dirs_exist_ok=True)  # the same keys on every node
            shutil.copy(site / "audit.anchor", path / "audit.anchor")
            return path

        def recording_since(since: datetime, node: str | None = None) -> set[int]:
            with db.session() as s:
                q = select(distinct(Recording.camera_id)).where(Recording.start_at >= since)
                if node is not None:
                    q = q.where(Recording.node == node)
                return set(s.scalars(q))

        def now() -> datetime:
            with db.session() as s:
                return database_now(s)

        # 1. The single box: every camera in one recorder, no leases.
        say(f"single box: {cameras} cameras…")
        started = now()
        single = procs["single"] = _serve(node_dir("single"), env, _free_port(), work / "single.log")
        _wait(lambda: len(recording_since(started)) >= cameras, 180, "every camera recording on the single box")
        time.sleep(8)  # warm-up: past the connections' first seconds
        cpu, wall = _cpu_per_stream(single.pid, cameras, seconds)
        result["single_box"] = {"cpu_percent_per_stream": round(cpu, 3), "wall_seconds": round(wall, 1)}
        _stop(single)
        procs.pop("single")

        # 2. The cluster: ``nodes`` recorder nodes sharing the cameras through leases.
        say(f"cluster: {nodes} recorder nodes…")
        names = [f"rec-{k}" for k in range(1, nodes + 1)]
        started = now()
        for name in names:
            port = _free_port()
            procs[name] = _serve(node_dir(name), {**env, "KUZET_CLUSTER__ENABLED": "true", "KUZET_CLUSTER__NODE": name,
                                                  "KUZET_CLUSTER__ADVERTISE_URL": f"http://127.0.0.1:{port}"},
                                 port, work / f"{name}.log")

        def holders() -> dict[int, str]:
            with db.session() as s:
                n = database_now(s)
                return dict(s.execute(select(CameraLease.camera_id, CameraLease.node)
                                      .where(CameraLease.expires_at > n)).all())

        share = -(-cameras // nodes)
        _wait(lambda: len(holders()) == cameras and max(_count(holders()).values()) <= share, 180,
              "every camera held, spread over the nodes")
        _wait(lambda: len(recording_since(started)) >= cameras, 180, "every camera recording in the cluster")
        time.sleep(8)
        held = holders()
        per_node = _count(held)
        t0 = {n: (_cpu_seconds(_tree(procs[n].pid)), time.monotonic()) for n in names}
        time.sleep(seconds)
        node_cpu = {}
        for n in names:
            cpu1, t1 = _cpu_seconds(_tree(procs[n].pid)), time.monotonic()
            node_cpu[n] = 100 * (cpu1 - t0[n][0]) / (t1 - t0[n][1])
        total_cpu = sum(node_cpu.values())
        per_stream = total_cpu / cameras
        result["cluster"] = {
            "cameras_per_node": {n: per_node.get(n, 0) for n in names},
            "cpu_percent_per_node": {n: round(v, 2) for n, v in node_cpu.items()},
            "cpu_percent_per_stream": round(per_stream, 3),
            "ratio_to_single_box": round(per_stream / result["single_box"]["cpu_percent_per_stream"], 3)
            if result["single_box"]["cpu_percent_per_stream"] else None,
        }

        # 3. kill -9 of the node holding the most cameras.
        victim = max(names, key=lambda n: (per_node.get(n, 0), n))
        moved = sorted(c for c, n in held.items() if n == victim)
        say(f"kill -9 of {victim} ({len(moved)} cameras)…")
        killed_at = now()
        kill_mono = time.monotonic()
        _kill(procs.pop(victim))

        def resumed() -> dict[int, datetime] | None:
            with db.session() as s:
                rows = s.execute(select(Recording.camera_id, func.min(Recording.start_at))
                                 .where(Recording.camera_id.in_(moved), Recording.node != victim,
                                        Recording.start_at > killed_at)
                                 .group_by(Recording.camera_id)).all()
            return dict(rows) if len(rows) == len(moved) else None

        first_new: dict[int, datetime] = _wait(resumed, 120, "the killed node's cameras recording elsewhere")  # type: ignore[assignment]
        all_back_seconds = time.monotonic() - kill_mono
        time.sleep(5)
        with db.session() as s:
            last_old = dict(s.execute(select(Recording.camera_id, func.max(Recording.end_at))
                                      .where(Recording.camera_id.in_(moved), Recording.node == victim)
                                      .group_by(Recording.camera_id)).all())
            gaps = list(s.scalars(select(Gap).where(Gap.start_at > killed_at - timedelta(seconds=30))))
            rows = list(s.execute(select(Recording.camera_id, Recording.node, Recording.start_at, Recording.end_at,
                                         Recording.bytes, Recording.object_key, Recording.state)).all())
        resume = {c: round((first_new[c] - killed_at).total_seconds(), 1) for c in moved}
        recorded_gap = {c: round((first_new[c] - last_old[c]).total_seconds(), 1) for c in moved if c in last_old}
        gaps_per_camera = {c: [g.reason for g in gaps if g.camera_id == c] for c in moved}
        kept_gaps = [g.camera_id for g in gaps if g.camera_id not in moved and g.start_at > killed_at]
        result["failover"] = {
            "killed": victim, "cameras_moved": len(moved),
            "seconds_until_recording_again": {"max": max(resume.values(), default=0),
                                              "min": min(resume.values(), default=0)},
            "all_moved_recording_after_seconds": round(all_back_seconds, 1),
            "recorded_gap_seconds": {"max": max(recorded_gap.values(), default=0),
                                     "min": min(recorded_gap.values(), default=0)},
            "gaps_per_moved_camera": sorted({len(v) for v in gaps_per_camera.values()}),
            "gap_reasons": sorted({r for v in gaps_per_camera.values() for r in v}),
            "gaps_on_cameras_not_moved": len(kept_gaps),
            "overlapping_files_of_two_nodes": _overlaps(rows),
            "goal_seconds": 30,
        }
        if seaweed is not None:
            say("S3: comparing the bucket with the index…")
            time.sleep(4)
            result["s3"] = _s3_check(seaweed, db, "kuzet-scale")
        result["ids"] = len(ids)
    finally:
        for proc in procs.values():
            _stop(proc)
        if sim is not None:
            _stop(sim, 10)
        if seaweed is not None:
            seaweed.stop()
        db.engine.dispose()
        drop_scratch_schema(database_url, schema)
        shutil.rmtree(work, ignore_errors=True)
    result.pop("ids", None)
    result["loadavg"] = Path("/proc/loadavg").read_text().strip()
    return result


def _count(held: dict[int, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for node in held.values():
        out[node] = out.get(node, 0) + 1
    return out


def _overlaps(rows: list) -> int:  # noqa: ANN001
    """Pairs of files of one camera written by two nodes whose times overlap (more than 0.5 s)."""
    by_camera: dict[int, list] = {}
    for r in rows:
        by_camera.setdefault(r.camera_id, []).append(r)
    count = 0
    for files in by_camera.values():
        files.sort(key=lambda r: r.start_at)
        for i, x in enumerate(files):
            for y in files[i + 1:]:
                if y.start_at >= x.end_at:
                    break
                if x.node != y.node and (min(x.end_at, y.end_at) - y.start_at).total_seconds() > 0.5:
                    count += 1
    return count


def _s3_check(server, db, bucket: str) -> dict:  # noqa: ANN001
    """Every uploaded file's object is in the bucket with the recorded size."""
    from sqlalchemy import select

    from kuzet.config import S3Config
    from kuzet.services.recording.objectstore import ObjectStore
    from kuzet.store.models.recording import Recording

    store = ObjectStore(S3Config(endpoint=server.endpoint, bucket=bucket, access_key=server.access_key,
                                 secret_key=server.secret_key))
    objects: dict[str, int] = {}
    token = None
    while True:
        kwargs = {"Bucket": bucket, **({"ContinuationToken": token} if token else {})}
        page = store.client.list_objects_v2(**kwargs)
        for item in page.get("Contents", []):
            objects[item["Key"]] = item["Size"]
        if not page.get("IsTruncated"):
            break
        token = page.get("NextContinuationToken")
    with db.session() as s:
        rows = s.execute(select(Recording.object_key, Recording.bytes, Recording.init_size, Recording.state)).all()
    uploaded = [r for r in rows if r.object_key]
    recorded = sum(r.bytes for r in uploaded)
    missing = [r.object_key for r in uploaded if r.object_key not in objects]
    wrong = [r.object_key for r in uploaded if r.object_key in objects and objects[r.object_key] != r.bytes]
    return {"files_uploaded": len(uploaded), "bytes_recorded_uploaded": recorded,
            "bytes_in_s3": sum(objects.get(r.object_key, 0) for r in uploaded),
            "objects_missing": len(missing), "objects_of_other_size": len(wrong),
            "closed_files_waiting": sum(1 for r in rows if not r.object_key and r.state == "closed"),
            "bytes_in_s3_equal_bytes_recorded": not missing and not wrong}
