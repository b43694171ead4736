"""``kuzet bench record``: what recording N cameras costs, against bare ``ffmpeg -c copy`` in the same run.

Both runs read the same simulated 1080p 4 Mbit/s cameras (a simulator in its own process, not counted). CPU is read
from /proc (utime + stime of the process and all its children), memory as PSS (shared pages split fairly).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

CLK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(entry))
            except OSError:
                continue
    return out


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(_children(p))
    return pids


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK


def _pss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
    return total


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise RuntimeError("the simulator did not start")


def _measure(pid: int, seconds: float, warmup: float) -> dict:
    time.sleep(warmup)
    pids = _tree(pid)
    cpu0, main0, t0 = _cpu_seconds(pids), _cpu_seconds([pid]), time.monotonic()
    time.sleep(seconds)
    pids = _tree(pid)
    cpu1, main1, t1 = _cpu_seconds(pids), _cpu_seconds([pid]), time.monotonic()
    return {"cpu_seconds": cpu1 - cpu0, "wall_seconds": t1 - t0, "pss_bytes": _pss_bytes(pids),
            "processes": len(pids), "main_cpu_seconds": main1 - main0, "main_pss_bytes": _pss_bytes([pid])}


def _ceiling(urls: list[str], seconds: float, warmup: float, out_dir: Path) -> dict:
    from kuzet.services.recording.ffmpeg import ffmpeg_binary

    procs = []
    for k, url in enumerate(urls):
        cmd = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url,
               "-map", "0:v:0", "-c", "copy", "-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof",
               "-frag_duration", "500000", str(out_dir / f"ceiling{k}.mp4")]
        procs.append(subprocess.Popen(cmd, start_new_session=True))
    time.sleep(warmup)
    pids = [p.pid for p in procs]
    sizes0 = sum((out_dir / f"ceiling{k}.mp4").stat().st_size for k in range(len(urls))
                 if (out_dir / f"ceiling{k}.mp4").exists())
    cpu0, t0 = _cpu_seconds(pids), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = _cpu_seconds(pids), time.monotonic()
    pss = _pss_bytes(pids)
    sizes1 = sum((out_dir / f"ceiling{k}.mp4").stat().st_size for k in range(len(urls))
                 if (out_dir / f"ceiling{k}.mp4").exists())
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    return {"cpu_seconds": cpu1 - cpu0, "wall_seconds": t1 - t0, "pss_bytes": pss, "bytes": sizes1 - sizes0}


RECORDER_SCRIPT = """
import asyncio, signal, sys
from kuzet.config import load_settings
from kuzet.installation import Installation
from kuzet.services.recording.recorder import Recorder
inst = Installation.open(settings=load_settings())
async def main():
    r = Recorder(inst.settings, inst.db, inst.keys)
    done = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    await r.start()
    print("started", flush=True)
    await asyncio.wait_for(done.wait(), float(sys.argv[1]))
    await r.stop()
asyncio.run(main())
"""


def run_record_benchmark(cameras: int, seconds: int, *, ceiling: bool = True, progress=None) -> dict:  # noqa: ANN001
    from kuzet.config import load_settings
    from kuzet.installation import Installation
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cameras import create_camera
    from kuzet.services.places import create_place
    from kuzet.services.recording.archive import timeline
    from kuzet.services.simulator.clips import MAIN_1080P, ensure_clip
    from kuzet.store.db import utcnow

    def say(text: str) -> None:
        if progress is not None:
            progress.print(text)

    ensure_clip(MAIN_1080P)
    port = _free_port()
    warmup = 8.0
    work = Path(tempfile.mkdtemp(prefix="kuzet-bench-"))
    sim = subprocess.Popen([sys.executable, "-m", "kuzet.cli.main", "sim", "--cameras", str(cameras), "--port",
                            str(port), "--resolution", "1080p"], stdout=subprocess.DEVNULL, start_new_session=True)
    result: dict = {"benchmark": "record", "cameras": cameras, "seconds": seconds,
                    "stream": "H.264 1920x1080 25 fps ~4 Mbit/s, RTSP/TCP"}
    try:
        _wait_port(port)
        urls = [f"rtsp://127.0.0.1:{port}/cam{k}" for k in range(1, cameras + 1)]
        if ceiling:
            say(f"ceiling: {cameras} × bare ffmpeg -c copy for {seconds} s…")
            c = _ceiling(urls, seconds, warmup, work)
            result["ceiling"] = {
                "cpu_percent_per_stream": round(100 * c["cpu_seconds"] / c["wall_seconds"] / cameras, 3),
                "pss_mb_per_stream": round(c["pss_bytes"] / cameras / 1e6, 2),
                "bytes_written": c["bytes"]}
        say(f"recorder: {cameras} cameras for {seconds} s…")
        data = work / "data"
        env = {**os.environ, "KUZET_DATA_DIR": str(data), "KUZET_STORAGE__MIN_FREE_BYTES": "0"}
        inst = Installation.open(settings=load_settings(environ=env))
        inst.init()
        with inst.db.session() as s:
            place = create_place(s, SYSTEM, "district", "bench")
            ids = [create_camera(s, SYSTEM, inst.keys, name=f"bench {k}", place_id=place.id, main_url=u).id
                   for k, u in enumerate(urls, 1)]
        rec = subprocess.Popen([sys.executable, "-c", RECORDER_SCRIPT, str(seconds + warmup + 20)], env=env,
                               stdout=subprocess.PIPE, start_new_session=True)
        assert rec.stdout is not None
        rec.stdout.readline()
        # Measure only once every camera records (150 ffmpeg connecting at once take a while on 2 cores).
        from sqlalchemy import distinct, func, select

        from kuzet.store.models.recording import Recording

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with inst.db.session() as s:
                if (s.scalar(select(func.count(distinct(Recording.camera_id)))) or 0) >= cameras:
                    break
            time.sleep(1)
        time.sleep(warmup)
        window_start = utcnow()
        m = _measure(rec.pid, seconds, 0)
        window_end = window_start + timedelta(seconds=m["wall_seconds"])
        with contextlib.suppress(ProcessLookupError):
            os.kill(rec.pid, signal.SIGTERM)
        rec.wait(60)
        recorded = 0.0
        with inst.db.session() as s:
            for cam in ids:
                recorded += timeline(s, cam, window_start, window_end)["recorded_seconds"]
            files = s.scalar(select(func.count()).select_from(Recording)) or 0
            fragments = s.scalar(select(func.sum(Recording.fragments))) or 0
            total_bytes = s.scalar(select(func.sum(Recording.bytes))) or 0
        expected = m["wall_seconds"] * cameras
        per_stream = 100 * m["cpu_seconds"] / m["wall_seconds"] / cameras
        result["recorder"] = {
            "cpu_percent_per_stream": round(per_stream, 3),
            "pss_mb_per_stream": round(m["pss_bytes"] / cameras / 1e6, 2),
            "pss_mb_total": round(m["pss_bytes"] / 1e6, 1),
            "processes": m["processes"],
            "python_process_cpu_percent": round(100 * m["main_cpu_seconds"] / m["wall_seconds"], 3),
            "python_process_pss_mb": round(m["main_pss_bytes"] / 1e6, 1),
            "expected_media_seconds": round(expected, 2),
            "recorded_media_seconds": round(recorded, 2),
            "loss_percent": round(max(0.0, 100 * (1 - recorded / expected)), 3) if expected else None,
            "bytes_recorded_total": int(total_bytes),
            "fragments_per_file": round(fragments / files, 1) if files else 0,
        }
        if ceiling and result["ceiling"]["cpu_percent_per_stream"]:
            result["ratio_to_ceiling"] = round(per_stream / result["ceiling"]["cpu_percent_per_stream"], 3)
        inst.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sim.pid, signal.SIGTERM)
        sim.wait(10)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run_record_benchmark(int(sys.argv[1]), int(sys.argv[2])), indent=2))
    asyncio.run(asyncio.sleep(0))
