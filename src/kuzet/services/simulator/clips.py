"""Clips for simulated cameras, generated with FFmpeg at first use and cached (never committed).

Each picture carries a burnt-in frame counter and stream time, so a viewer's latency can be read off the screen: the
simulator knows when it sent every frame.

Scenes (``ClipSpec.scene``):

- ``test`` — FFmpeg's ``testsrc2`` pattern (the default);
- ``road:<plate>`` — a road camera: a car with a white Kazakhstan plate (e.g. ``road:123ABC02``) comes up to a stop
  line, waits and drives on, three times in a 12 s loop (``scenes.py`` draws it, FFmpeg encodes);
- ``people`` — real CCTV footage of pedestrians (``vtest_h264.mp4`` from ``KUZET_MEDIA_DIR`` or ``../shared/media``
  beside the repository), re-encoded to the clip's size and 25 fps, the 4:3 picture pillar-boxed; where the footage
  is absent the ``test`` scene is used instead, with a warning;
- ``bursts`` — a still picture where a white block crosses the view for one second in every five (2–3 s and 7–8 s of a
  10 s loop): motion that starts at known instants, for measuring how fast an alarm reaches an operator.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from kuzet.services.recording.ffmpeg import ffmpeg_binary

log = logging.getLogger("kuzet.sim")

FOOTAGE = "vtest_h264.mp4"
SCENE_VERSION = 1  # bump when a scene's drawing changes, so cached clips are made again
# Loop length of each scene (road: three 4 s passes).
SCENE_SECONDS = {"road": 12, "people": 60, "bursts": 10}
BURSTS = ((2.0, 3.0), (7.0, 8.0))  # seconds of the bursts scene's loop during which the block moves


@dataclass(frozen=True)
class ClipSpec:
    name: str
    width: int
    height: int
    fps: int = 25
    bitrate_kbps: int = 4000
    seconds: int = 12
    gop: int = 50  # a keyframe every 2 s, as most CCTV cameras
    scene: str = "test"  # test | road:<plate> | people | bursts

    @property
    def filename(self) -> str:
        base = f"{self.name}-{self.width}x{self.height}-{self.fps}fps-{self.bitrate_kbps}k-{self.seconds}s.mp4"
        if self.scene == "test":
            return base
        return f"{self.scene.replace(':', '-')}-v{SCENE_VERSION}-{base}"


MAIN_1080P = ClipSpec("main", 1920, 1080, bitrate_kbps=4000)
MAIN_720P = ClipSpec("main", 1280, 720, bitrate_kbps=2000)
SUB_360P = ClipSpec("sub", 640, 360, bitrate_kbps=400)


def cache_dir() -> Path:
    base = os.environ.get("KUZET_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kuzet")
    path = Path(base) / "clips"
    path.mkdir(parents=True, exist_ok=True)
    return path


def media_dir() -> Path | None:
    """The folder with real CCTV footage: ``KUZET_MEDIA_DIR``, else ``../shared/media`` beside the repository."""
    env = os.environ.get("KUZET_MEDIA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[4].parent / "shared" / "media")
    for path in candidates:
        if (path / FOOTAGE).is_file():
            return path
    return None


def parse_scene(text: str) -> str:
    """The canonical form of a scene name (``road:123 abc 02`` → ``road:123ABC02``); ValueError if unknown."""
    kind, _, arg = text.strip().partition(":")
    kind = kind.lower()
    if kind in ("test", "people", "bursts") and not arg:
        return kind
    if kind == "road":
        from kuzet.domain.plates import normalise

        plate = normalise(arg)
        if plate is None:
            raise ValueError(f"road scene: {arg!r} is not a Kazakhstan plate number (e.g. road:123ABC02)")
        return f"road:{plate.plate}"
    raise ValueError(f"unknown scene {text!r}: test, people, bursts or road:<plate>")


def scene_spec(spec: ClipSpec, scene: str) -> ClipSpec:
    """``spec`` (size, bitrate, GOP) for ``scene``, with that scene's loop length."""
    scene = parse_scene(scene)
    kind = scene.partition(":")[0]
    return replace(spec, scene=scene, seconds=SCENE_SECONDS.get(kind, spec.seconds))


def scene_clips(scene: str, main: ClipSpec = MAIN_720P, sub: ClipSpec = SUB_360P) -> tuple[Path, Path]:
    """Main and sub clips of ``scene`` at the sizes of ``main`` and ``sub``, generated if not cached."""
    return ensure_clip(scene_spec(main, scene)), ensure_clip(scene_spec(sub, scene))


def _font() -> str:
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSansMono-Bold.ttf")


def _counter(spec: ClipSpec) -> str:
    """The burnt-in frame counter and stream time (an FFmpeg drawtext filter)."""
    size = max(16, spec.height // 14)
    return (f"drawtext=fontfile={_font()}:fontsize={size}:fontcolor=white:box=1:boxcolor=black@0.6:"
            "x=20:y=20:text='KUZET SIM  frame %{frame_num}  t %{pts\\:hms}'")


def _encoder(spec: ClipSpec) -> list[str]:
    """H.264 like a CCTV camera's: constant bitrate and frame rate, fixed GOP, no B-frames."""
    return [
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "main",
        "-pix_fmt", "yuv420p", "-g", str(spec.gop), "-keyint_min", str(spec.gop), "-sc_threshold", "0", "-bf", "0",
        "-b:v", f"{spec.bitrate_kbps}k", "-maxrate", f"{spec.bitrate_kbps}k", "-bufsize", f"{spec.bitrate_kbps}k",
        "-x264-params", "nal-hrd=cbr:force-cfr=1", "-movflags", "+faststart",
    ]


def ensure_clip(spec: ClipSpec) -> Path:
    """The clip for ``spec``, generating it (a few seconds of CPU) if it is not cached yet."""
    kind = spec.scene.partition(":")[0]
    if kind == "people" and media_dir() is None:
        log.warning("people scene: %s not found (KUZET_MEDIA_DIR or ../shared/media); using the test scene",
                    FOOTAGE)
        return ensure_clip(replace(spec, scene="test", seconds=ClipSpec.seconds))  # the default cameras' clip
    target = cache_dir() / spec.filename
    if target.exists() and target.stat().st_size > 0:
        return target
    tmp = target.with_suffix(f".{os.getpid()}.tmp.mp4")
    head = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y"]
    try:
        if kind == "road":
            _encode_road(spec, head, tmp)
        elif kind == "people":
            footage = media_dir() / FOOTAGE  # type: ignore[operator]  # checked above
            fit = (f"fps={spec.fps},scale={spec.width}:{spec.height}:force_original_aspect_ratio=decrease,"
                   f"pad={spec.width}:{spec.height}:(ow-iw)/2:(oh-ih)/2,setsar=1")
            cmd = [*head, "-i", str(footage), "-t", str(spec.seconds), "-an", "-vf", f"{fit},{_counter(spec)}",
                   *_encoder(spec), str(tmp)]
            subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        elif kind == "bursts":
            size = f"{spec.width}x{spec.height}"
            block = f"{spec.width // 8}x{spec.height // 3}"
            moving = "+".join(f"between(t,{a},{b})" for a, b in BURSTS)
            cmd = [*head, "-f", "lavfi", "-i", f"color=c=0x404850:size={size}:rate={spec.fps}:duration={spec.seconds}",
                   "-f", "lavfi", "-i", f"color=c=white:size={block}:rate={spec.fps}:duration={spec.seconds}",
                   "-filter_complex", f"[0][1]overlay=x='W/8+mod(t*W,W*5/8)':y='H/3':enable='{moving}',"
                   f"{_counter(spec)}", *_encoder(spec), str(tmp)]
            subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        elif kind == "test":
            src = f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps}:duration={spec.seconds}"
            cmd = [*head, "-f", "lavfi", "-i", src, "-vf", _counter(spec), *_encoder(spec), str(tmp)]
            subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        else:
            raise ValueError(f"unknown scene {spec.scene!r}")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)
    return target


def _encode_road(spec: ClipSpec, head: list[str], tmp: Path) -> None:
    """Draw the road scene frame by frame and pipe it to FFmpeg as raw BGR."""
    from kuzet.domain.plates import normalise
    from kuzet.services.simulator.scenes import RoadScene

    plate = normalise(spec.scene.partition(":")[2])
    if plate is None:
        raise ValueError(f"road scene: {spec.scene!r} has no valid plate number")
    scene = RoadScene(plate, spec.width, spec.height, spec.fps)
    cmd = [*head, "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{spec.width}x{spec.height}", "-r", str(spec.fps),
           "-i", "-", "-vf", _counter(spec), *_encoder(spec), str(tmp)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    try:
        with contextlib.suppress(BrokenPipeError):  # FFmpeg gave up: its message says why
            for index in range(spec.fps * spec.seconds):
                proc.stdin.write(scene.frame(index).tobytes())
            proc.stdin.close()
        err = proc.stderr.read()
        proc.wait(600)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd, stderr=err)
