"""Helpers for recording tests: a simulator in a background thread, a recorder run inside a test."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from pathlib import Path

from kuzet.services.simulator.clips import ClipSpec, ensure_clip
from kuzet.services.simulator.rtsp import SimServer, build_cameras

# Small pictures keep the suite light on a 2-core machine; the benchmark uses 1080p.
TEST_MAIN = ClipSpec("test-main", 640, 360, bitrate_kbps=800, seconds=12)
TEST_SUB = ClipSpec("test-sub", 320, 180, bitrate_kbps=200, seconds=12)


class ThreadedSim:
    """A real RTSP simulator on a free port, running in its own thread and event loop."""

    def __init__(self, cameras: int, credentials: dict[int, str] | None = None,
                 scenes: dict[int, str] | None = None) -> None:
        """``scenes``: camera number → scene (``road:123ABC02``, ``people``) at 720p main and 360p sub."""
        from kuzet.services.simulator.clips import scene_clips

        clips = {k: scene_clips(scene) for k, scene in (scenes or {}).items()}
        cams = build_cameras(cameras, ensure_clip(TEST_MAIN), ensure_clip(TEST_SUB), credentials=credentials,
                             scenes=clips)
        self.server = SimServer(cams, port=0)
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.server.start())
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait(30)

    def url(self, index: int, stream: str = "main", credentials: str | None = None) -> str:
        return self.server.url(index, stream, credentials)

    def set_mode(self, index: int, mode: str) -> None:
        done = threading.Event()

        def apply() -> None:
            self.server.set_mode(index, mode)
            done.set()

        self.loop.call_soon_threadsafe(apply)
        done.wait(5)

    def close(self) -> None:
        fut = asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop)
        fut.result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def ffprobe(path: Path) -> dict:
    """Duration and frame count of a file as ffprobe sees it (it must play as it is)."""
    import json

    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_entries",
         "format=duration:stream=nb_read_packets,codec_name", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    return {"duration": float(data["format"]["duration"]), "packets": int(data["streams"][0]["nb_read_packets"]),
            "codec": data["streams"][0]["codec_name"]}
