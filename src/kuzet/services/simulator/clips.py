"""Test clips for simulated cameras, generated with FFmpeg at first use and cached (never committed).

Each picture carries a burnt-in frame counter and stream time, so a viewer's latency can be read off the screen: the
simulator knows when it sent every frame.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kuzet.services.recording.ffmpeg import ffmpeg_binary


@dataclass(frozen=True)
class ClipSpec:
    name: str
    width: int
    height: int
    fps: int = 25
    bitrate_kbps: int = 4000
    seconds: int = 12
    gop: int = 50  # a keyframe every 2 s, as most CCTV cameras

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.width}x{self.height}-{self.fps}fps-{self.bitrate_kbps}k-{self.seconds}s.mp4"


MAIN_1080P = ClipSpec("main", 1920, 1080, bitrate_kbps=4000)
MAIN_720P = ClipSpec("main", 1280, 720, bitrate_kbps=2000)
SUB_360P = ClipSpec("sub", 640, 360, bitrate_kbps=400)


def cache_dir() -> Path:
    base = os.environ.get("KUZET_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kuzet")
    path = Path(base) / "clips"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _font() -> str:
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSansMono-Bold.ttf")


def ensure_clip(spec: ClipSpec) -> Path:
    """The clip for ``spec``, generating it (a few seconds of CPU) if it is not cached yet."""
    target = cache_dir() / spec.filename
    if target.exists() and target.stat().st_size > 0:
        return target
    size = max(16, spec.height // 14)
    text = (f"drawtext=fontfile={_font()}:fontsize={size}:fontcolor=white:box=1:boxcolor=black@0.6:"
            "x=20:y=20:text='KUZET SIM  frame %{frame_num}  t %{pts\\:hms}'")
    tmp = target.with_suffix(f".{os.getpid()}.tmp.mp4")
    cmd = [
        ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps}:duration={spec.seconds}",
        "-vf", text, "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "main",
        "-pix_fmt", "yuv420p", "-g", str(spec.gop), "-keyint_min", str(spec.gop), "-sc_threshold", "0", "-bf", "0",
        "-b:v", f"{spec.bitrate_kbps}k", "-maxrate", f"{spec.bitrate_kbps}k", "-bufsize", f"{spec.bitrate_kbps}k",
        "-x264-params", "nal-hrd=cbr:force-cfr=1", "-movflags", "+faststart", str(tmp),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    os.replace(tmp, target)
    return target
