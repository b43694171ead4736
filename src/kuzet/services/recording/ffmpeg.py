"""FFmpeg as the recorder uses it: which binary, the remux-only ingest command, and what its errors mean."""

from __future__ import annotations

import functools
import shutil

from kuzet.services.cameras import redact


@functools.cache
def ffmpeg_binary(configured: str | None = None) -> str:
    """The configured ffmpeg, else the system's, else the one the imageio-ffmpeg wheel ships."""
    if configured:
        return configured
    system = shutil.which("ffmpeg")
    if system:
        return system
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ingest_command(binary: str, url: str, *, transport: str = "tcp", fragment_seconds: float = 0.5,
                   io_timeout_s: float = 10.0) -> list[str]:
    """Read one camera stream and write fragmented MP4 to stdout, copying the video as it is (no re-encoding).

    ``frag_keyframe`` starts a fragment at every keyframe (so every index entry is a seek point) and
    ``frag_duration`` also cuts long GOPs into short fragments, so live viewers wait for at most one short fragment
    and a crash loses at most one fragment.
    """
    args = [binary, "-nostdin", "-hide_banner", "-loglevel", "error"]
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("rtsp", "rtsps"):
        args += ["-rtsp_transport", transport, "-timeout", str(int(io_timeout_s * 1e6))]
    elif scheme in ("http", "https", "rtmp", "rtmps", "srt", "tcp"):
        args += ["-rw_timeout", str(int(io_timeout_s * 1e6))]
    elif scheme == "file":
        args += ["-re"]
        url = url[len("file://"):]
    args += [
        # Live streams announce their parameters up front (SDP); a short probe starts recording and live view sooner.
        # Without -fpsprobesize ffmpeg reads ~1 s more of every stream to guess a frame rate that a remux to fMP4
        # never uses (ffprobe reports the same streams either way). Measured: the first fragment after each
        # (re)connect comes 0.45 s after ffmpeg starts instead of 1.4 s, so each outage loses ~1 s less video.
        "-analyzeduration", "2000000", "-probesize", "2000000", "-fpsprobesize", "0",
        "-fflags", "+genpts+discardcorrupt", "-i", url,
        "-map", "0:v:0", "-c", "copy",
        "-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof",
        "-frag_duration", str(int(fragment_seconds * 1e6)),
        "pipe:1",
    ]
    return args


# Gap reasons, as stored and shown on the timeline.
UNREACHABLE = "unreachable"
AUTH_FAILED = "auth_failed"
STREAM_ENDED = "stream_ended"
STALLED = "stalled"
STREAM_ERROR = "stream_error"
INGEST_FAILED = "ingest_failed"
RECORDER_STOPPED = "recorder_stopped"
RECORDER_MOVED = "recorder_moved"  # another recorder node took the camera over (docs/scale.md)
DISABLED = "disabled"

GAP_REASONS = (UNREACHABLE, AUTH_FAILED, STREAM_ENDED, STALLED, STREAM_ERROR, INGEST_FAILED, RECORDER_STOPPED,
               RECORDER_MOVED, DISABLED)


def classify_failure(stderr: str, returncode: int | None, got_media: bool) -> tuple[str, str]:
    """(gap reason, short message without credentials) for an ingest that ended."""
    text = redact(stderr.strip())
    low = text.lower()
    last = text.splitlines()[-1] if text else ""
    if "401" in low or "unauthorized" in low or "authorization failed" in low or "403 forbidden" in low:
        return AUTH_FAILED, last or "authentication refused"
    if any(s in low for s in ("connection refused", "no route to host", "network is unreachable",
                              "404 not found", "name or service not known", "connection timed out",
                              "operation timed out", "immediate exit requested")) and not got_media:
        return UNREACHABLE, last or "camera unreachable"
    if "error initializing output stream" in low or "could not find codec parameters" in low:
        return STREAM_ERROR, last or "the camera sends data that cannot be read as video"
    if returncode is not None and returncode < 0:
        return INGEST_FAILED, f"ffmpeg killed by signal {-returncode}"
    if "invalid data" in low or "error while decoding" in low or "could not find codec parameters" in low:
        return STREAM_ERROR, last
    if "timed out" in low or "timeout" in low:
        return STALLED if got_media else UNREACHABLE, last or "timed out"
    if returncode == 0 or not text:
        return STREAM_ENDED, last or "stream ended"
    return (STREAM_ERROR if got_media else UNREACHABLE), last or f"ffmpeg exited with {returncode}"
