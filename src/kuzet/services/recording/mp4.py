"""Just enough of ISO BMFF (MP4) to record and serve fragmented MP4 without decoding.

Written by hand because the recorder needs three cheap things no maintained library offers on a byte stream: split
a pipe of fMP4 into its init segment (ftyp+moov) and fragments (moof+mdat) as the bytes arrive, read a fragment's
decode time / duration / keyframe flag from its ``moof``, and rewrite ``tfdt`` when fragments from several files are
joined into one stream. PyAV/FFmpeg could do it only by demuxing every packet.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"moof", b"traf", b"mvex", b"edts", b"dinf"}
SAMPLE_NON_SYNC = 0x00010000
CODECS = {b"avc1": "h264", b"avc3": "h264", b"hvc1": "h265", b"hev1": "h265"}


class Mp4Error(ValueError):
    pass


def iter_boxes(data: bytes | memoryview, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """Yield (type, box start, box end) for each complete box in data[start:end]."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            raise Mp4Error(f"invalid box size {size} at {pos}")
        if pos + size > end:
            return
        yield bytes(kind), pos, pos + size
        pos += size


def find_box(
    data: bytes | memoryview, path: list[bytes], start: int = 0, end: int | None = None
) -> tuple[int, int] | None:
    """(start, end) of the first box along ``path`` (e.g. [b"moov", b"trak"]), searching containers only."""
    end = len(data) if end is None else end
    for kind, b_start, b_end in iter_boxes(data, start, end):
        if kind == path[0]:
            if len(path) == 1:
                return b_start, b_end
            return find_box(data, path[1:], b_start + 8, b_end)
    return None


@dataclass(frozen=True)
class TrackInfo:
    codec: str  # "h264", "h265", …
    width: int
    height: int
    timescale: int


def _video_track(init: bytes) -> tuple[int, int]:
    """(start, end) of the first video ``trak`` of an init segment."""
    moov = find_box(init, [b"moov"])
    if moov is None:
        raise Mp4Error("init segment has no moov")
    for kind, t_start, t_end in iter_boxes(init, moov[0] + 8, moov[1]):
        if kind != b"trak":
            continue
        hdlr = find_box(init, [b"mdia", b"hdlr"], t_start + 8, t_end)
        if hdlr is not None and init[hdlr[0] + 16:hdlr[0] + 20] == b"vide":
            return t_start, t_end
    raise Mp4Error("init segment has no video track")


def _stsd(init: bytes, track: tuple[int, int]) -> tuple[int, int]:
    stsd = find_box(init, [b"mdia", b"minf", b"stbl", b"stsd"], track[0] + 8, track[1])
    if stsd is None:
        raise Mp4Error("video track has no stsd")
    return stsd


def parse_init(init: bytes) -> TrackInfo:
    """Codec, picture size and timescale of the (first video) track of an init segment."""
    track = _video_track(init)
    mdhd = find_box(init, [b"mdia", b"mdhd"], track[0] + 8, track[1])
    timescale = 90000
    if mdhd:
        version = init[mdhd[0] + 8]
        off = mdhd[0] + 12 + (16 if version == 1 else 8)
        timescale = struct.unpack_from(">I", init, off)[0]
    entry = _stsd(init, track)[0] + 16  # full box header (12) + entry count (4)
    fourcc = init[entry + 4:entry + 8]
    width, height = struct.unpack_from(">HH", init, entry + 8 + 24)
    codec = CODECS.get(fourcc, fourcc.decode("latin-1"))
    return TrackInfo(codec, width, height, timescale)


@dataclass(frozen=True)
class FragmentInfo:
    decode_time: int  # tfdt, in the track's timescale
    duration: int  # sum of sample durations, in the track's timescale
    samples: int
    keyframe: bool  # first sample is a sync sample


@dataclass
class _Run:
    """One ``trun``: its data offset (None: follows the previous run) and per sample (duration, size, flags, cto)."""

    data_offset: int | None
    samples: list[tuple[int, int, int, int]]


@dataclass
class _TrackFragment:
    decode_time: int
    base: int | None  # tfhd base data offset, if given
    runs: list[_Run]


def _read_traf(data: bytes | memoryview, start: int = 0, end: int | None = None) -> tuple[tuple[int, int],
                                                                                         _TrackFragment]:
    """The ``moof`` box and its first track fragment: tfhd defaults applied to every trun sample."""
    moof = find_box(data, [b"moof"], start, end)
    if moof is None:
        raise Mp4Error("no moof")
    traf = find_box(data, [b"traf"], moof[0] + 8, moof[1])
    if traf is None:
        raise Mp4Error("moof without traf")
    default_duration = default_size = default_flags = 0
    fragment = _TrackFragment(0, None, [])
    for kind, b_start, b_end in iter_boxes(data, traf[0] + 8, traf[1]):
        if b_end - b_start < 12:
            raise Mp4Error(f"truncated {kind!r} box")
        version = data[b_start + 8]
        flags = int.from_bytes(data[b_start + 9:b_start + 12], "big")
        pos = b_start + 12
        if kind == b"tfhd":
            pos += 4  # track id
            if flags & 0x01:
                fragment.base = struct.unpack_from(">Q", data, pos)[0]
                pos += 8
            if flags & 0x02:
                pos += 4
            if flags & 0x08:
                default_duration = struct.unpack_from(">I", data, pos)[0]
                pos += 4
            if flags & 0x10:
                default_size = struct.unpack_from(">I", data, pos)[0]
                pos += 4
            if flags & 0x20:
                default_flags = struct.unpack_from(">I", data, pos)[0]
        elif kind == b"tfdt":
            fragment.decode_time = struct.unpack_from(">Q" if version == 1 else ">I", data, pos)[0]
        elif kind == b"trun":
            count = struct.unpack_from(">I", data, pos)[0]
            pos += 4
            data_offset = None
            if flags & 0x01:
                data_offset = struct.unpack_from(">i", data, pos)[0]
                pos += 4
            first_flags = None
            if flags & 0x04:
                first_flags = struct.unpack_from(">I", data, pos)[0]
                pos += 4
            per_sample = 4 * sum(bool(flags & f) for f in (0x100, 0x200, 0x400, 0x800))
            if pos + count * per_sample > b_end:
                raise Mp4Error(f"trun declares {count} samples but is {b_end - b_start} bytes long")
            run = _Run(data_offset, [])
            for i in range(count):
                duration, size, s_flags, cto = default_duration, default_size, default_flags, 0
                if flags & 0x100:
                    duration = struct.unpack_from(">I", data, pos)[0]
                    pos += 4
                if flags & 0x200:
                    size = struct.unpack_from(">I", data, pos)[0]
                    pos += 4
                if flags & 0x400:
                    s_flags = struct.unpack_from(">I", data, pos)[0]
                    pos += 4
                if flags & 0x800:
                    cto = struct.unpack_from(">i" if version == 1 else ">I", data, pos)[0]
                    pos += 4
                if i == 0 and first_flags is not None:
                    s_flags = first_flags
                run.samples.append((duration, size, s_flags, cto))
            fragment.runs.append(run)
    return moof, fragment


def parse_moof(data: bytes | memoryview, start: int = 0, end: int | None = None) -> FragmentInfo:
    """Decode time, duration, sample count and keyframe flag of the first track fragment of a ``moof``."""
    _moof, fragment = _read_traf(data, start, end)
    samples = [sample for run in fragment.runs for sample in run.samples]
    keyframe = bool(samples) and not (samples[0][2] & SAMPLE_NON_SYNC)
    return FragmentInfo(fragment.decode_time, sum(s[0] for s in samples), len(samples), keyframe)


def set_decode_time(moof: bytearray, decode_time: int) -> None:
    """Rewrite the ``tfdt`` of every track fragment in a ``moof`` (in place), for joining fragments of several files."""
    for kind, t_start, t_end in iter_boxes(moof, 8, len(moof)):
        if kind != b"traf":
            continue
        tfdt = find_box(moof, [b"tfdt"], t_start + 8, t_end)
        if tfdt is None:
            continue
        version = moof[tfdt[0] + 8]
        if version == 1:
            struct.pack_into(">Q", moof, tfdt[0] + 12, decode_time)
        else:
            struct.pack_into(">I", moof, tfdt[0] + 12, decode_time & 0xFFFFFFFF)


class BoxSplitter:
    """Feed bytes as they arrive from a pipe; get the init segment once and then whole fragments (moof+mdat).

    Boxes other than ftyp/moov/moof/mdat (styp, sidx, free, …) are passed through inside the next fragment.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.init: bytes | None = None
        self._pending_init = bytearray()
        self._fragment = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buf += chunk
        out: list[bytes] = []
        consumed = 0
        for kind, b_start, b_end in iter_boxes(self._buf):
            box = self._buf[b_start:b_end]
            consumed = b_end
            if self.init is None:
                self._pending_init += box
                if kind == b"moov":
                    self.init = bytes(self._pending_init)
                    self._pending_init.clear()
                continue
            self._fragment += box
            if kind == b"mdat":
                out.append(bytes(self._fragment))
                self._fragment.clear()
        if consumed:
            del self._buf[:consumed]
        return out

    @property
    def buffered(self) -> int:
        return len(self._buf) + len(self._fragment)


@dataclass(frozen=True)
class Sample:
    """One coded frame of a fragment: where its bytes are and how long it lasts."""

    offset: int  # into the fragment's bytes (moof + mdat as the hub delivers them)
    size: int
    duration: int  # in the track's timescale
    keyframe: bool
    composition_offset: int = 0  # presentation time - decode time, in the track's timescale (B-frames)


def fragment_samples(data: bytes | memoryview) -> list[Sample]:
    """Every sample of the first track fragment of ``data`` (moof + mdat), in decode order.

    The decoder in ``services/operations/decode.py`` feeds the samples one by one to a codec context, which is why it
    needs their byte ranges; reading them here costs a few microseconds where demuxing through FFmpeg would need a
    container per fragment. Follows the ``trun`` data offset (relative to the ``moof`` with default-base-is-moof, as
    our ingest writes, or to tfhd's base data offset). Raises ``Mp4Error`` when a sample would lie outside ``data``.
    """
    moof, fragment = _read_traf(data)
    mdat = find_box(data, [b"mdat"], moof[1])
    base = moof[0] if fragment.base is None else fragment.base
    offset = mdat[0] + 8 if mdat else moof[1] + 8
    samples: list[Sample] = []
    for run in fragment.runs:
        if run.data_offset is not None:
            offset = base + run.data_offset
        for duration, size, flags, cto in run.samples:
            if offset < 0 or offset + size > len(data):
                raise Mp4Error(f"sample {len(samples)} ({size} bytes at {offset}) lies outside the fragment")
            samples.append(Sample(offset, size, duration, not (flags & SAMPLE_NON_SYNC), cto))
            offset += size
    return samples


def _video_sample_entry(init: bytes) -> tuple[int, int]:
    """(start, end) of the first sample entry in the stsd of the first video track."""
    stsd = _stsd(init, _video_track(init))
    for _kind, e_start, e_end in iter_boxes(init, stsd[0] + 16, stsd[1]):
        return e_start, e_end
    raise Mp4Error("stsd has no sample entry")


def codec_config(init: bytes) -> tuple[str, bytes]:
    """("h264" | "hevc", the avcC / hvcC payload) of an init segment: the extradata a decoder needs.

    The names are FFmpeg's decoder names. Raises ``Mp4Error`` for other codecs (MJPEG, encrypted tracks, …).
    """
    e_start, e_end = _video_sample_entry(init)
    fourcc = init[e_start + 4:e_start + 8]
    # A VisualSampleEntry has 78 bytes of fixed fields after its 8-byte header; its child boxes follow.
    for kind, c_start, c_end in iter_boxes(init, e_start + 86, e_end):
        if kind == b"avcC":
            return "h264", bytes(init[c_start + 8:c_end])
        if kind == b"hvcC":
            return "hevc", bytes(init[c_start + 8:c_end])
    raise Mp4Error(f"unsupported video sample entry {fourcc.decode('latin-1')!r} (need avcC or hvcC)")
