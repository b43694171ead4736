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
4. **roles** — ``api_nodes`` ``kuzet serve --role api`` and ``workers`` ``--role worker`` processes beside the
   recorder nodes (``--role recorder``): each answers ``/api/v1/ready``, and each API node serves a snapshot and the
   live HLS playlist of a camera every recorder node holds (passed to the holder, docs/scale.md);
5. with S3, **an outage**: the SeaweedFS server is stopped for ``s3_outage`` seconds while recording goes on
   (``s3_outage_kind="freeze"``: SIGSTOP instead, so that connections are accepted and never answered); the
   local backlog (closed files without an object, per node, from the index) is sampled while it grows, then the
   seconds from the store's return until every file closed before it is in the bucket;
6. with S3, at the end: the stopped and killed nodes' disks are uploaded as they would be when the node comes back
   (``kuzet recording upload``), then every closed file's object must be in the bucket with its recorded size (bytes
   in S3 = bytes recorded) and no file is lost.

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
from datetime import datetime
from pathlib import Path

from kuzet.bench import create_scratch_schema, drop_scratch_schema
from kuzet.bench.recording import _cpu_seconds, _free_port, _tree, _wait_port

SCALE_CLIP_NAME = "scale-main"
BENCH_USER = "scale-bench"  # a platform admin of the scratch schema: watches live video through the API nodes
Say = Callable[[str], None]


def _serve(data: Path, env: dict[str, str], port: int, log: Path, role: str = "all") -> subprocess.Popen:
    with open(log, "wb") as fh:
        return subprocess.Popen([sys.executable, "-m", "kuzet.cli.main", "serve", "--port", str(port),
                                 "--role", role],
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


def _cpu_split(pid: int) -> tuple[float, float]:
    """(CPU seconds of the process itself, of its children: ffmpeg) from /proc. Children that ended count through
    the process's cutime/cstime (a restarted ffmpeg must not make the figure go down)."""
    own = _cpu_seconds([pid])
    reaped = 0.0
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return own, _cpu_seconds(_tree(pid)) - own + reaped


def _cpu_percent(pids: dict[str, int], seconds: float) -> dict[str, dict[str, float]]:
    """CPU % of one core over ``seconds`` of each named process: ``python`` (the process), ``ffmpeg`` (its children)
    and ``total``."""
    t0 = {name: (_cpu_split(pid), time.monotonic()) for name, pid in pids.items()}
    time.sleep(seconds)
    out = {}
    for name, pid in pids.items():
        (own0, kids0), m0 = t0[name]
        own1, kids1 = _cpu_split(pid)
        wall = time.monotonic() - m0
        own, kids = 100 * (own1 - own0) / wall, 100 * (kids1 - kids0) / wall
        out[name] = {"python": own, "ffmpeg": kids, "total": own + kids}
    return out


def run_scale_benchmark(database_url: str, events_url: str, *, cameras: int = 30, nodes: int = 3, api_nodes: int = 2,
                        workers: int = 1, seconds: float = 30.0, s3: bool | None = None,
                        s3_outage: float | None = None, s3_outage_kind: str = "stop", say: Say | None = None) -> dict:
    """See the module's docstring. ``s3``: None = when ``weed`` is installed. ``s3_outage``: seconds the store is
    away (None = 60 with S3, 0 = no outage)."""
    import secrets

    from sqlalchemy import distinct, func, select

    from kuzet.config import load_settings
    from kuzet.installation import Installation
    from kuzet.services import accounts
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cameras import create_camera
    from kuzet.services.cluster.leases import database_now
    from kuzet.services.places import create_place
    from kuzet.services.recording.seaweed import SeaweedServer, SeaweedUnavailable, weed_binary
    from kuzet.services.recording.uploader import Uploader
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
    outage = (60.0 if s3_outage is None else s3_outage) if use_s3 else 0.0
    work = Path(tempfile.mkdtemp(prefix="kuzet-bench-scale-"))
    schema, url = create_scratch_schema(database_url, "kz_scale")
    procs: dict[str, subprocess.Popen] = {}
    sim: subprocess.Popen | None = None
    seaweed: SeaweedServer | None = None
    db = Database(url)
    result: dict = {"benchmark": "scale", "cameras": cameras, "nodes": nodes, "api_nodes": api_nodes,
                    "workers": workers, "seconds": seconds,
                    "stream": "H.264 1280x720 25 fps 1 Mbit/s, RTSP/TCP", "database": "postgresql",
                    "events": "nats", "storage": "s3 (SeaweedFS)" if use_s3 else "local disk",
                    "loadavg_before": Path("/proc/loadavg").read_text().strip()}
    password = secrets.token_urlsafe(16)
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
            accounts.create_user(s, SYSTEM, BENCH_USER, password, "platform_admin")
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
        _wait(lambda: len(recording_since(started)) >= cameras, 300, "every camera recording on the single box")
        time.sleep(8)  # warm-up: past the connections' first seconds
        single_cpu = _cpu_percent({"single": single.pid}, seconds)["single"]
        result["single_box"] = {"cpu_percent_per_stream": round(single_cpu["total"] / cameras, 3),
                                "python_percent": round(single_cpu["python"], 2),
                                "ffmpeg_percent": round(single_cpu["ffmpeg"], 2)}
        _stop(single)
        procs.pop("single")

        # 2. The cluster: ``nodes`` recorder nodes sharing the cameras through leases, API nodes and workers.
        say(f"cluster: {nodes} recorder nodes, {api_nodes} API nodes, {workers} workers…")
        names = [f"rec-{k}" for k in range(1, nodes + 1)]
        others = {f"api-{k}": "api" for k in range(1, api_nodes + 1)} | {f"worker-{k}": "worker"
                                                                          for k in range(1, workers + 1)}
        ports: dict[str, int] = {}
        started = now()
        for name in [*names, *others]:
            ports[name] = port = _free_port()
            procs[name] = _serve(node_dir(name), {**env, "KUZET_CLUSTER__ENABLED": "true", "KUZET_CLUSTER__NODE": name,
                                                  "KUZET_CLUSTER__ADVERTISE_URL": f"http://127.0.0.1:{port}"},
                                 port, work / f"{name}.log", others.get(name, "recorder"))

        def holders() -> dict[int, str]:
            with db.session() as s:
                n = database_now(s)
                return dict(s.execute(select(CameraLease.camera_id, CameraLease.node)
                                      .where(CameraLease.expires_at > n)).all())

        share = -(-cameras // nodes)
        _wait(lambda: len(holders()) == cameras and max(_count(holders()).values()) <= share, 300,
              "every camera held, spread over the nodes")
        _wait(lambda: len(recording_since(started)) >= cameras, 300, "every camera recording in the cluster")
        time.sleep(8)
        held = holders()
        per_node = _count(held)
        cpu = _cpu_percent({n: procs[n].pid for n in [*names, *others]}, seconds)
        total_cpu = sum(cpu[n]["total"] for n in names)
        per_stream = total_cpu / cameras
        result["cluster"] = {
            "cameras_per_node": {n: per_node.get(n, 0) for n in names},
            "cpu_percent_per_node": {n: round(cpu[n]["total"], 2) for n in names},
            "python_percent_per_node": {n: round(cpu[n]["python"], 2) for n in names},
            "ffmpeg_percent_per_node": {n: round(cpu[n]["ffmpeg"], 2) for n in names},
            "cpu_percent_per_stream": round(per_stream, 3),
            "ratio_to_single_box": round(per_stream * cameras / single_cpu["total"], 3)
            if single_cpu["total"] else None,
            "cpu_percent_of_api_and_worker_nodes": {n: round(cpu[n]["total"], 2) for n in others},
        }

        # 3. The API and worker nodes: ready, and live video of a camera each recorder holds, through each API node.
        say("API nodes: ready, snapshots and live playlists of cameras the recorders hold…")
        result["roles"] = _check_roles(ports, others, held, names, password)

        # 4. S3 away for ``outage`` seconds while recording goes on.
        def backlog(closed_before: datetime | None = None) -> dict[str, tuple[int, int]]:
            """Closed files of the live recorder nodes not yet in the object store: node → (files, bytes)."""
            with db.session() as s:
                q = (select(Recording.node, func.count(), func.coalesce(func.sum(Recording.bytes), 0))
                     .where(Recording.state == "closed", Recording.object_key.is_(None),
                            Recording.node.in_([n for n in names if n in procs]))
                     .group_by(Recording.node))
                if closed_before is not None:
                    q = q.where(Recording.end_at <= closed_before)
                return {node: (int(files), int(size)) for node, files, size in s.execute(q).all()}

        if seaweed is not None and outage > 0:
            say(f"S3 outage: SeaweedFS stopped for {outage:g} s…")
            def covered(since: datetime, until: datetime) -> tuple[int, dict[str, int]]:
                with db.session() as s:
                    through = s.scalar(select(func.count(distinct(Recording.camera_id)))
                                       .where(Recording.end_at >= until))
                    opened = s.execute(select(Gap.reason, func.count()).where(Gap.start_at >= since,
                                                                              Gap.start_at <= until)
                                       .group_by(Gap.reason)).all()
                return int(through or 0), {reason: int(n) for reason, n in opened}

            result["s3_outage"] = _s3_outage(seaweed, outage, backlog, now, covered, s3_outage_kind)
            result["s3_outage"]["lease_trouble_in_node_logs"] = _lease_trouble(work, names)

        # 5. kill -9 of the node holding the most cameras.
        held = holders()
        per_node = _count(held)
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
        checked_at = now()
        with db.session() as s:
            last_old = dict(s.execute(select(Recording.camera_id, func.max(Recording.end_at))
                                      .where(Recording.camera_id.in_(moved), Recording.node == victim)
                                      .group_by(Recording.camera_id)).all())
            last_file = {c: (path, start) for c, path, start in s.execute(
                select(Recording.camera_id, Recording.path, Recording.start_at)
                .where(Recording.camera_id.in_(moved), Recording.node == victim)
                .order_by(Recording.start_at)).all()}
        resume = {c: round((first_new[c] - killed_at).total_seconds(), 1) for c in moved}
        recorded_gap = {c: round((first_new[c] - last_old[c]).total_seconds(), 1) for c in moved if c in last_old}
        result["failover"] = {
            "killed": victim, "cameras_moved": len(moved),
            "seconds_until_recording_again": {"max": max(resume.values(), default=0),
                                              "min": min(resume.values(), default=0)},
            "all_moved_recording_after_seconds": round(all_back_seconds, 1),
            "recorded_gap_seconds": {"max": max(recorded_gap.values(), default=0),
                                     "min": min(recorded_gap.values(), default=0)},
            "killed_nodes_last_files_past_the_new_first": _past_first(work / victim / "recordings", last_file,
                                                                      first_new),
            "goal_seconds": 30,
        }

        # 6. The end: the live nodes keep up, then every node stops; the disks of the stopped and killed nodes are
        # uploaded as when each comes back, and the bucket must hold every closed file with its size.
        if seaweed is not None:
            say("S3: the live nodes keep up; then every node's disk is uploaded and the bucket compared…")
            mark = now()
            keep_up = time.monotonic()
            _wait(lambda: not backlog(mark), 180, "the live nodes' uploads to catch up", interval=1)
            result.setdefault("s3", {})["live_nodes_caught_up_seconds"] = round(time.monotonic() - keep_up, 1)
        for proc in procs.values():
            _stop(proc)
        procs.clear()
        with db.session() as s:
            rows = list(s.execute(select(Recording.camera_id, Recording.node, Recording.start_at, Recording.end_at,
                                         Recording.bytes, Recording.object_key, Recording.state)).all())
        result["failover"]["overlapping_files_of_two_nodes"] = _overlaps(rows)
        with db.session() as s:  # every index row written now: the gaps that span each moved camera's move
            gaps = list(s.scalars(select(Gap).where(Gap.start_at <= checked_at,
                                                    (Gap.end_at.is_(None)) | (Gap.end_at >= killed_at))))
        spanning = {c: [g for g in gaps if g.camera_id == c and g.start_at <= first_new[c]
                        and (g.end_at is None or g.end_at >= last_old.get(c, killed_at))] for c in moved}
        gaps_per_camera = {c: [g.reason for g in v] for c, v in spanning.items()}
        result["failover"] |= {
            "gaps_per_moved_camera": sorted({len(v) for v in gaps_per_camera.values()}),
            "gap_reasons": sorted({r for v in gaps_per_camera.values() for r in v}),
            "gap_start_before_kill_seconds": {"max": round(max(((killed_at - g.start_at).total_seconds()
                                                                for v in spanning.values() for g in v), default=0), 1),
                                              "min": round(min(((killed_at - g.start_at).total_seconds()
                                                                for v in spanning.values() for g in v), default=0), 1)},
            "gaps_on_cameras_not_moved": sum(1 for g in gaps if g.camera_id not in moved and g.start_at > killed_at)}
        if seaweed is not None:
            after_stop: dict[str, int] = {}
            for name in ["single", *names]:
                settings = load_settings(environ={"KUZET_DATA_DIR": str(work / name), **env})
                uploader = Uploader(settings, db)
                after_stop[name] = uploader.run_once().uploaded
                uploader.close()
                uploader.store.client.close()
            result["s3"] |= {"uploaded_when_node_came_back": after_stop, **_s3_check(seaweed, db, "kuzet-scale")}
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


def _check_roles(ports: dict[str, int], others: dict[str, str], held: dict[int, str], recorders: list[str],
                 password: str) -> dict:
    """Every API and worker node answers ``/api/v1/ready``; every API node serves a snapshot and the live HLS
    playlist of one camera of every recorder node (it holds none: each is passed to the holder)."""
    import httpx

    out: dict[str, dict] = {}
    samples = {node: min(c for c, n in held.items() if n == node) for node in recorders if node in held.values()}
    token = None
    for name, role in others.items():
        base = f"http://127.0.0.1:{ports[name]}"
        _wait_port(ports[name], 120)
        ready = _wait(lambda b=base: _ready(b), 60, f"{name} ready", interval=1) is True
        entry: dict = {"role": role, "ready": ready}
        if role == "api":
            if token is None:
                token = httpx.post(f"{base}/api/v1/auth/token", data={"username": BENCH_USER, "password": password},
                                   timeout=30).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            served = {"snapshot.jpg": 0, "live.m3u8": 0}
            for camera_id in samples.values():
                for path, starts in (("snapshot.jpg", b"\xff\xd8"), ("live.m3u8", b"#EXTM3U")):
                    url = f"{base}/api/v1/cameras/{camera_id}/{path}"
                    with contextlib.suppress(RuntimeError):
                        _wait(lambda u=url, s=starts, h=headers: _fetch(u, h, s), 30, path, interval=1)
                        served[path] += 1
            snapshots, playlists = served["snapshot.jpg"], served["live.m3u8"]
            entry |= {"cameras_asked": len(samples), "snapshots_served": snapshots, "playlists_served": playlists}
        out[name] = entry
    return out


def _ready(base: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{base}/api/v1/ready", timeout=10).json().get("ready") is True
    except (httpx.HTTPError, ValueError):
        return False


def _fetch(url: str, headers: dict[str, str], starts: bytes) -> bool:
    import httpx

    try:
        response = httpx.get(url, headers=headers, timeout=30)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.content.startswith(starts)


def _s3_outage(seaweed, seconds: float, backlog: Callable, now: Callable, covered: Callable,  # noqa: ANN001
               kind: str = "stop") -> dict:
    """Stop the S3 server for ``seconds`` (recording goes on), sample the backlog, start it again on the same data
    and ports, and time the drain of every file closed before it was back. ``covered(since, until)``: (cameras whose
    files reach past ``until``, gaps opened in between by reason). ``kind="freeze"``: SIGSTOP of the server's
    process group instead, SIGCONT after (the kernel still accepts connections; nothing answers them)."""
    def total(b: dict[str, tuple[int, int]]) -> dict[str, int]:
        return {"files": sum(f for f, _ in b.values()), "bytes": sum(n for _, n in b.values())}

    before = total(backlog())
    if kind == "freeze":
        os.killpg(seaweed.process.pid, signal.SIGSTOP)
    else:
        seaweed.stop()
    stopped_at, t0 = now(), time.monotonic()
    samples: list[dict] = []
    while (elapsed := time.monotonic() - t0) < seconds:
        samples.append({"seconds": round(elapsed, 1), **total(backlog())})
        time.sleep(min(5.0, max(0.0, seconds - elapsed)))
    at_return = backlog()
    restart = time.monotonic()
    if kind == "freeze":
        os.killpg(seaweed.process.pid, signal.SIGCONT)
    else:
        seaweed.start()  # the same data directory and ports
    back_at, t1 = now(), time.monotonic()
    _wait(lambda: not backlog(back_at), 600, "the backlog of the outage to drain", interval=1)
    drained = time.monotonic() - t1
    cameras_through, gaps = covered(stopped_at, back_at)
    return {"kind": kind, "seconds_stopped": round(restart - t0, 1),
            "seconds_until_s3_answered_again": round(t1 - restart, 1),
            "backlog_before": before, "samples": samples, "backlog_at_return": total(at_return),
            "backlog_at_return_per_node": {n: {"files": f, "bytes": b} for n, (f, b) in sorted(at_return.items())},
            "seconds_until_drained": round(drained, 1),
            "cameras_recording_through": cameras_through, "gaps_while_away": sum(gaps.values()),
            "gaps_while_away_by_reason": gaps}


def _lease_trouble(work: Path, names: list[str]) -> dict[str, dict[str, int]]:
    """Per recorder node, from its log so far: lease passes slower than ``renew_seconds``, leases that ran out
    before a renewal, and failed renewals (what would cost a node its cameras)."""
    marks = {"slow_passes": "lease pass took", "not_renewed_in_time": "not renewed in time",
             "renewals_failed": "lease renewal failed"}
    out: dict[str, dict[str, int]] = {}
    for name in names:
        path = work / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        out[name] = {key: text.count(mark) for key, mark in marks.items()}
    return out


def _count(held: dict[int, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for node in held.values():
        out[node] = out.get(node, 0) + 1
    return out


def _past_first(root: Path, last_file: dict[int, tuple[str, datetime]],
                first_new: dict[int, datetime]) -> int:
    """Moved cameras whose last file on the killed node's disk, read to its end (fragments written after the index's
    last flush included), reaches past the new node's first file: two writers (should be 0)."""
    from kuzet.services.recording.index import scan_file
    from kuzet.services.recording.mp4 import Mp4Error

    count = 0
    for camera_id, (rel, start) in last_file.items():
        try:
            values, _size = scan_file(root / rel, start)
        except (OSError, Mp4Error):
            continue  # gone or unreadable: nothing written past its row
        if (values["end_at"] - first_new[camera_id]).total_seconds() > 0.5:
            count += 1
    return count


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
        rows = s.execute(select(Recording.object_key, Recording.bytes, Recording.state)).all()
    closed = [r for r in rows if r.state == "closed"]
    uploaded = [r for r in closed if r.object_key]
    missing = [r.object_key for r in uploaded if r.object_key not in objects]
    wrong = [r.object_key for r in uploaded if r.object_key in objects and objects[r.object_key] != r.bytes]
    recorded = sum(r.bytes for r in closed)
    in_s3 = sum(objects.get(r.object_key, 0) for r in uploaded)
    lost = len(closed) - len(uploaded) + len(missing)
    return {"files_closed": len(closed), "files_uploaded": len(uploaded), "bytes_recorded": recorded,
            "bytes_in_s3": in_s3, "objects_missing": len(missing), "objects_of_other_size": len(wrong),
            "closed_files_not_uploaded": len(closed) - len(uploaded), "rows_left_open": len(rows) - len(closed),
            "files_lost": lost, "bytes_in_s3_equal_bytes_recorded": recorded == in_s3 and not lost and not wrong}
