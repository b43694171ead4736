"""Helpers for recording tests: a simulator in a background thread, a recorder run inside a test."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kuzet.services.simulator.clips import ClipSpec, ensure_clip
from kuzet.services.simulator.rtsp import SimThread, build_cameras

# Small pictures keep the suite light on a 2-core machine; the benchmark uses 1080p.
TEST_MAIN = ClipSpec("test-main", 640, 360, bitrate_kbps=800, seconds=12)
TEST_SUB = ClipSpec("test-sub", 320, 180, bitrate_kbps=200, seconds=12)


class ThreadedSim(SimThread):
    """A real RTSP simulator on a free port, in its own thread, playing the recording tests' small clips."""

    def __init__(self, cameras: int, credentials: dict[int, str] | None = None,
                 scenes: dict[int, str] | None = None) -> None:
        """``scenes``: camera number → scene (``road:123ABC02``, ``people``) at 720p main and 360p sub."""
        from kuzet.services.simulator.clips import scene_clips

        clips = {k: scene_clips(scene) for k, scene in (scenes or {}).items()}
        super().__init__(build_cameras(cameras, ensure_clip(TEST_MAIN), ensure_clip(TEST_SUB),
                                       credentials=credentials, scenes=clips))


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
