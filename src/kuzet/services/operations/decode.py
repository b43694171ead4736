"""Decode a camera's fMP4 fragments (as the recorder's hub delivers them) into pictures with wall-clock times.

One ``FragmentDecoder`` per camera stream, fed the fragments in order. Each sample of a fragment goes to a PyAV
codec context as one packet (the samples are found by ``recording/mp4.py: fragment_samples``), so no container is
demuxed per fragment. A frame's wall time is the fragment's wall-clock start plus the decode time of its sample within
the fragment plus its composition offset (B-frames), taken relative to the first sample this decoder saw, which is the
displayed first frame of the stream; without B-frames that is simply the sum of the previous sample durations.

**The GIL.** PyAV (18.x, with the FFmpeg 8 of its wheel) wraps ``avcodec_send_packet`` and
``avcodec_receive_frame`` in ``with nogil``.
Measured here (2 cores, 144 s of 640x360 25 fps H.264 at 400 kbit/s, one decoder per thread, ``thread_count`` 1):
two threads decoding it at once took 1.06-1.08x the wall time of one thread decoding it alone (0.89 s), i.e. they ran
in parallel and the decode itself does not hold the GIL (``kuzet bench motion`` repeats this
measurement). Only the small Python glue per packet (building ``av.Packet``, the frame objects) holds it, so a pool
of decoding threads runs beside the asyncio recorder without starving its event loop. FFmpeg's own frame threads
are off (``thread_count = 1``): with many cameras per core, one thread per decoder is cheaper than a pool each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import av
import numpy as np

from kuzet.services.recording.hub import Fragment
from kuzet.services.recording.mp4 import Mp4Error, codec_config, fragment_samples, parse_init

log = logging.getLogger(__name__)

# Pixel formats whose plane 0 is the full-resolution 8-bit luma: grey costs a view, no conversion.
LUMA_FIRST = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}


class DecodeError(ValueError):
    """A fragment or init segment that cannot be decoded at all (the caller skips it)."""


def luma(frame: av.VideoFrame) -> np.ndarray:
    """The grey picture (height x width, uint8) of a frame: a view on plane 0 where the format allows, no swscale."""
    if frame.format.name in LUMA_FIRST:
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        return rows[:frame.height, :frame.width]
    return frame.to_ndarray(format="gray")  # 10-bit and other formats: convert


def bgr(frame: av.VideoFrame) -> np.ndarray:
    """The colour picture (height x width x 3, uint8, BGR for OpenCV); converts, so only when colour is needed."""
    return frame.to_ndarray(format="bgr24")


class FragmentDecoder:
    """Decodes the fragments of one stream, in order, after its init segment."""

    MAX_PENDING = 512  # presentation times kept for frames still inside the decoder (B-frame delay, dropped frames)

    def __init__(self, init: bytes) -> None:
        try:
            self.codec, extradata = codec_config(init)
            self.track = parse_init(init)
        except (Mp4Error, IndexError, ValueError) as exc:
            raise DecodeError(f"unusable init segment: {exc}") from exc
        self.timescale = self.track.timescale or 90000
        self._ctx = av.CodecContext.create(self.codec, "r")
        self._ctx.extradata = extradata
        self._ctx.thread_count = 1
        self._clock = 0  # decode time of the next sample, in timescale units, counted by this decoder
        self._cts_ref: int | None = None
        self._wall: dict[int, datetime] = {}  # packet pts -> wall time, until the frame comes out
        self.errors = 0  # packets the codec refused

    def decode(self, fragment: Fragment,
               want: Callable[[datetime], bool] | None = None) -> list[tuple[datetime, av.VideoFrame]]:
        """Feed one fragment; returns (wall time, frame) of the frames that came out and that ``want`` accepted.

        Every sample is decoded (later frames depend on earlier ones); ``want`` is asked once per frame in
        presentation order and only wanted frames are returned. Frames may come out one fragment late (B-frames).
        Raises ``DecodeError`` if the fragment's boxes are unreadable; a sample the codec refuses is skipped.
        """
        try:
            samples = fragment_samples(fragment.data)
        except (Mp4Error, IndexError, ValueError) as exc:
            raise DecodeError(f"unreadable fragment: {exc}") from exc
        data = memoryview(fragment.data)
        out: list[tuple[datetime, av.VideoFrame]] = []
        first_dts = self._clock
        for sample in samples:
            if self._cts_ref is None:
                self._cts_ref = sample.composition_offset
            pts = self._clock + sample.composition_offset
            offset = (self._clock - first_dts + sample.composition_offset - self._cts_ref) / self.timescale
            self._wall[pts] = fragment.start + timedelta(seconds=offset)
            packet = av.Packet(data[sample.offset:sample.offset + sample.size])
            packet.pts = pts
            packet.dts = self._clock
            self._clock += sample.duration
            try:
                frames = self._ctx.decode(packet)
            except av.FFmpegError as exc:
                self.errors += 1
                log.debug("undecodable sample skipped: %s", exc)
                continue
            self._collect(frames, want, out)
        if len(self._wall) > self.MAX_PENDING:
            for key in list(self._wall)[:len(self._wall) - self.MAX_PENDING]:
                del self._wall[key]
        return out

    def flush(self, want: Callable[[datetime], bool] | None = None) -> list[tuple[datetime, av.VideoFrame]]:
        """The frames still held by the decoder (B-frame delay), e.g. before it is replaced or closed."""
        out: list[tuple[datetime, av.VideoFrame]] = []
        try:
            self._collect(self._ctx.decode(None), want, out)
        except av.FFmpegError as exc:
            log.debug("flush failed: %s", exc)
        self._wall.clear()
        return out

    def _collect(self, frames: list, want: Callable[[datetime], bool] | None,
                 out: list[tuple[datetime, av.VideoFrame]]) -> None:
        for frame in frames:
            when = self._wall.pop(frame.pts, None) if frame.pts is not None else None
            if when is None:  # a frame whose packet time was lost (corrupt stream): skip rather than guess
                continue
            if want is None or want(when):
                out.append((when, frame))


def keyframe_jpeg(init: bytes, fragment: Fragment, quality: int = 85) -> bytes | None:
    """The first picture of a keyframe fragment as a JPEG (a camera's current picture), or None if none decodes."""
    import cv2

    try:
        decoder = FragmentDecoder(init)
        frames = decoder.decode(fragment) + decoder.flush()
    except DecodeError:
        return None
    if not frames:
        return None
    ok, data = cv2.imencode(".jpg", bgr(frames[0][1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return data.tobytes() if ok else None
