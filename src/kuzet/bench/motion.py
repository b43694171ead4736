"""``kuzet bench motion``: what motion analysis of N sub streams costs, against the decode ceiling of the same run.

The goal (issue): motion detection for at least 100 sub streams (640x360, 25 fps, analysed at 5 fps) per core, decode
included. Decoding alone is the ceiling (~0.8-1 % of a core per stream, so ~115 per core); the detector itself should
add little (~0.06 %).

What runs, in one process as in the service: a 640x360 25 fps H.264 clip (generated, 400 kbit/s, or ``--file``) is cut
into 0.25 s fMP4 fragments exactly as the recorder's hub delivers them (``ffmpeg -c copy`` with the recorder's
movflags, split by ``BoxSplitter``), and fed at real-time pace, with each camera's fragments arriving at its own
phase, to N ``CameraPipeline``s on a pool of ``workers`` threads; one camera's fragments are processed in order and
never at once. CPU is the process's own (``getrusage``) over the measured window. The ceilings are measured in the
same run on the same clip: bare ``ffmpeg -threads 1 -i clip -f null -`` (CPU per media second), PyAV decode only of
the same fragments, and the motion detector alone on the analysed grey frames.
"""

from __future__ import annotations

import heapq
import os
import resource
import statistics
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kuzet.services.operations.decode import FragmentDecoder, luma
from kuzet.services.operations.motion import MotionDetector
from kuzet.services.operations.observations import Observation
from kuzet.services.operations.pipeline import AnalysisConfig, CameraPipeline
from kuzet.services.recording.hub import Fragment
from kuzet.services.recording.mp4 import BoxSplitter, parse_init, parse_moof

Progress = Callable[[str, float, float], None]  # description, done, total


def fmp4_fragments(path: Path, fragment_seconds: float = 0.25, *, loops: int = 0) -> tuple[bytes, list[bytes]]:
    """(init segment, fragments) of a video file, cut as the recorder's ingest cuts a camera (no re-encoding)."""
    from kuzet.services.recording.ffmpeg import ffmpeg_binary

    cmd = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error"]
    if loops:
        cmd += ["-stream_loop", str(loops)]
    cmd += ["-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "mp4", "-movflags",
            "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", str(int(fragment_seconds * 1e6)),
            "pipe:1"]
    raw = subprocess.run(cmd, check=True, capture_output=True, timeout=300).stdout
    splitter = BoxSplitter()
    parts = splitter.feed(raw)
    if splitter.init is None:
        raise ValueError(f"{path}: no video track")
    return splitter.init, parts


def wall_fragments(init: bytes, parts: list[bytes], start: datetime) -> list[Fragment]:
    """Fragments as the hub gives them, their wall-clock start = ``start`` + their decode time."""
    timescale = parse_init(init).timescale
    out = []
    for data in parts:
        info = parse_moof(data)
        out.append(Fragment(data, info.keyframe, start + timedelta(seconds=info.decode_time / timescale),
                            info.duration / timescale, info.samples))
    return out


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ffmpeg_ceiling(clip: Path, media_seconds: float, clip_seconds: float) -> dict:
    """CPU per media second of bare ``ffmpeg -threads 1`` decoding the clip (looped to ``media_seconds``)."""
    from kuzet.services.recording.ffmpeg import ffmpeg_binary

    loops = max(0, round(media_seconds / clip_seconds) - 1)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1",
                    "-stream_loop", str(loops), "-i", str(clip), "-map", "0:v:0", "-f", "null", "-"],
                   check=True, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    media = (loops + 1) * clip_seconds
    return {"cpu_seconds": round(cpu, 3), "media_seconds": round(media, 2),
            "percent_per_stream": round(100 * cpu / media, 4), "streams_per_core": round(media / cpu, 1)}


def pyav_ceiling(init: bytes, fragments: list[Fragment], repeat: int) -> dict:
    """CPU per media second of PyAV decoding the same fragments (nothing analysed), and whether two decoders in two
    threads run in parallel (the GIL is released while FFmpeg decodes)."""

    def decode_all() -> None:
        decoder = FragmentDecoder(init)
        for _ in range(repeat):
            for fragment in fragments:
                decoder.decode(fragment, lambda _at: False)

    media = repeat * sum(f.duration for f in fragments)
    t0, wall0 = time.thread_time(), time.perf_counter()
    decode_all()
    cpu, one_wall = time.thread_time() - t0, time.perf_counter() - wall0
    wall0, cpu0 = time.perf_counter(), _cpu()
    threads = [threading.Thread(target=decode_all) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    two_wall, two_cpu = time.perf_counter() - wall0, _cpu() - cpu0
    # Two threads each decoding it all: a wall ratio near 1 and more than one core busy (CPU / wall > 1) mean they
    # ran in parallel, i.e. the GIL is released while FFmpeg decodes. Other load on the machine raises the ratio.
    return {"cpu_seconds": round(cpu, 3), "media_seconds": round(media, 2),
            "percent_per_stream": round(100 * cpu / media, 4), "streams_per_core": round(media / cpu, 1),
            "two_threads_wall_ratio": round(two_wall / one_wall, 3),
            "two_threads_cores_busy": round(two_cpu / two_wall, 2)}


def detector_cost(init: bytes, fragments: list[Fragment], fps: float) -> dict:
    """CPU of the motion detector alone on the grey frames analysed at ``fps`` (decoded beforehand)."""
    decoder = FragmentDecoder(init)
    period, nxt = 1.0 / fps, [None]

    def want(at: datetime) -> bool:
        t = at.timestamp()
        if nxt[0] is None or t >= nxt[0]:
            nxt[0] = t + period - 1e-6
            return True
        return False

    frames = [(at.timestamp(), luma(frame).copy()) for f in fragments for at, frame in decoder.decode(f, want)]
    if not frames:
        return {}
    detector = MotionDetector()
    t0 = time.thread_time()
    for at, grey in frames:
        detector.apply(grey, at)
    cpu = time.thread_time() - t0
    media = sum(f.duration for f in fragments)
    return {"frames": len(frames), "ms_per_frame": round(1000 * cpu / len(frames), 4),
            "small_picture": list(detector.size or ()), "percent_per_stream": round(100 * cpu / media, 4)}


class _Feeder:
    """Feeds N pipelines at real-time pace on a thread pool; one camera's fragments in order, never two at once."""

    def __init__(self, pipelines: list[CameraPipeline], init: bytes, pool: ThreadPoolExecutor) -> None:
        self.pipelines = pipelines
        self.init = init
        self.pool = pool
        self.lock = threading.Lock()
        self.queues: list[deque[tuple[float, Fragment]]] = [deque() for _ in pipelines]
        self.busy = [False] * len(pipelines)
        self.latencies: list[float] = []
        self.done = 0
        self.measuring = False

    def offer(self, camera: int, due: float, fragment: Fragment) -> None:
        with self.lock:
            self.queues[camera].append((due, fragment))
            if self.busy[camera]:
                return
            self.busy[camera] = True
        self.pool.submit(self._run, camera)

    def _run(self, camera: int) -> None:
        while True:
            with self.lock:
                if not self.queues[camera]:
                    self.busy[camera] = False
                    return
                due, fragment = self.queues[camera].popleft()
            self.pipelines[camera].process(self.init, fragment)
            finished = time.monotonic()
            with self.lock:
                self.done += 1
                if self.measuring:
                    # From when the fragment became available (its end, as the recorder receives it) to analysed.
                    self.latencies.append(finished - due)

    def backlog(self) -> int:
        with self.lock:
            return sum(len(q) for q in self.queues)


def run_motion_benchmark(streams: int, seconds: float, *, file: Path | None = None, workers: int = 2,
                         fps: float = 5.0, warmup: float = 4.0, ceiling: bool = True, opencv_threads: int = 0,
                         progress: Progress | None = None) -> dict:
    """Run the benchmark and return its figures (see the module's docstring).

    ``opencv_threads`` > 0 sets OpenCV's own thread pool for the process (``cv2.setNumThreads``; 0 leaves OpenCV's
    default, one per core, as the service runs unless it sets it). With a pool of analysis threads already keeping
    every core busy, OpenCV splitting a 320x180 blur over more threads only adds synchronisation: measured here, 1
    thread costs ~15 % less CPU per stream than the default.
    """
    import cv2

    from kuzet.services.simulator.clips import SUB_360P, ensure_clip

    if opencv_threads > 0:
        cv2.setNumThreads(opencv_threads)

    def say(stage: str, done: float = 0, total: float = 1) -> None:
        if progress is not None:
            progress(stage, done, total)

    say("preparing the clip")
    clip = Path(file) if file else ensure_clip(SUB_360P)
    init, parts = fmp4_fragments(clip)
    track = parse_init(init)
    base = wall_fragments(init, parts, datetime(2000, 1, 1, tzinfo=UTC))
    clip_seconds = sum(f.duration for f in base)
    if not base or clip_seconds <= 0:
        raise ValueError(f"{clip}: no video fragments")
    frames = sum(f.samples for f in base)
    result: dict = {
        "streams": streams, "seconds": seconds, "workers": workers, "analysed_fps": fps,
        "opencv_threads": cv2.getNumThreads(), "cores": os.cpu_count(), "load_average": list(os.getloadavg()),
        "clip": {"file": str(clip), "codec": track.codec, "width": track.width, "height": track.height,
                 "fps": round(frames / clip_seconds, 2), "seconds": round(clip_seconds, 2),
                 "kbit_per_second": round(sum(len(p) for p in parts) * 8 / clip_seconds / 1000, 1),
                 "fragments": len(parts), "fragment_seconds": round(clip_seconds / len(parts), 3)},
    }
    if ceiling:
        say("ceiling: bare ffmpeg decode")
        result["ceiling_ffmpeg"] = ffmpeg_ceiling(clip, 60.0, clip_seconds)
        say("ceiling: PyAV decode")
        result["ceiling_pyav"] = pyav_ceiling(init, base, max(1, round(30 / clip_seconds)))
        say("motion detector alone")
        result["detector"] = detector_cost(init, base, fps)

    observations = [0]
    count_lock = threading.Lock()

    def sink(_obs: Observation) -> None:
        with count_lock:
            observations[0] += 1

    config = AnalysisConfig(fps=fps)
    pipelines = [CameraPipeline(k + 1, config, sink) for k in range(streams)]
    pool = ThreadPoolExecutor(workers, thread_name_prefix="bench-motion")
    feeder = _Feeder(pipelines, init, pool)
    start = time.monotonic() + 0.5
    wall_start = datetime.now(UTC) + timedelta(seconds=0.5)
    total = warmup + seconds
    # Each camera's fragments arrive at its own phase; a fragment is due when its last frame has arrived.
    schedule: list[tuple[float, int, int, int]] = []  # (due, camera, loop, index)
    for k in range(streams):
        heapq.heappush(schedule, (start + (k / streams) * base[0].duration + base[0].duration, k, 0, 0))
    measured: dict = {}
    say("running", 0, total)
    try:
        while schedule:
            due, k, loop, i = heapq.heappop(schedule)
            offset = loop * clip_seconds + (base[i].start - base[0].start).total_seconds()
            if offset >= total:
                continue
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if not measured and offset >= warmup:
                feeder.measuring = True
                measured = {"cpu": _cpu(), "wall": time.monotonic(), "done": feeder.done}
                say("running (measuring)", warmup, total)
            src = base[i]
            phase = timedelta(seconds=offset + (k / streams) * base[0].duration)
            feeder.offer(k, due, Fragment(src.data, src.keyframe, wall_start + phase, src.duration, src.samples))
            nxt_i, nxt_loop = (i + 1, loop) if i + 1 < len(base) else (0, loop + 1)
            heapq.heappush(schedule, (due + base[nxt_i].duration, k, nxt_loop, nxt_i))
            if i == 0 and k == 0:
                say("running" if not measured else "running (measuring)", min(offset, total), total)
        end_cpu, end_wall = _cpu(), time.monotonic()
        backlog = feeder.backlog()
    finally:
        pool.shutdown(wait=True)
    for pipeline in pipelines:
        pipeline.close(datetime.now(UTC))
    say("done", total, total)
    cpu = end_cpu - measured.get("cpu", end_cpu)
    wall = end_wall - measured.get("wall", end_wall)
    per_stream = 100 * cpu / wall / streams if wall > 0 and streams else 0.0
    lat = sorted(feeder.latencies)
    result["run"] = {
        "cpu_seconds": round(cpu, 3), "wall_seconds": round(wall, 3),
        "cpu_percent_of_one_core": round(100 * cpu / wall, 2) if wall else None,
        "percent_per_stream": round(per_stream, 4),
        "streams_per_core": round(100 / per_stream, 1) if per_stream else None,
        "fragments_processed": feeder.done, "backlog_at_end": backlog,
        "latency_ms": {"p50": round(1000 * statistics.median(lat), 1) if lat else None,
                       "p99": round(1000 * lat[int(0.99 * (len(lat) - 1))], 1) if lat else None,
                       "max": round(1000 * lat[-1], 1) if lat else None},
        "kept_up": backlog <= streams and bool(lat) and lat[int(0.99 * (len(lat) - 1))] < 1.0,
        "frames_analysed": sum(p.stats["analysed"] for p in pipelines),
        "observations": observations[0], "errors": sum(p.stats["errors"] for p in pipelines),
    }
    goal = 100.0
    result["goal"] = {"streams_per_core": goal, "met": bool(per_stream) and 100 / per_stream >= goal}
    if "ceiling_ffmpeg" in result and per_stream:
        result["vs_ffmpeg_ceiling"] = round(per_stream / result["ceiling_ffmpeg"]["percent_per_stream"], 3)
    if "ceiling_pyav" in result and per_stream:
        result["vs_pyav_ceiling"] = round(per_stream / result["ceiling_pyav"]["percent_per_stream"], 3)
    return result
