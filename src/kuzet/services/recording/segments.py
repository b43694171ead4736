"""Writing fragments into one-minute fMP4 files and keeping each file's keyframe index.

Every file starts with the init segment, so it plays on its own in ffplay or VLC. A file ends at the first keyframe
fragment after ``file_seconds``, or earlier when the camera's time jumps (see docs/time.md).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from kuzet.services.recording.hub import Fragment
from kuzet.services.recording.mp4 import TrackInfo, set_decode_time

KEYFRAME_ENTRY = struct.Struct("<II")


def pack_keyframes(entries: list[tuple[int, int]]) -> bytes:
    return b"".join(KEYFRAME_ENTRY.pack(ms, off) for ms, off in entries)


def unpack_keyframes(blob: bytes) -> list[tuple[int, int]]:
    return [KEYFRAME_ENTRY.unpack_from(blob, i) for i in range(0, len(blob), KEYFRAME_ENTRY.size)]


def relative_path(camera_id: int, start: datetime) -> str:
    return f"{camera_id}/{start:%Y-%m-%d}/{start:%H-%M-%S}-{start.microsecond // 1000:03d}.mp4"


@dataclass
class Segment:
    """The file being written for one camera."""

    camera_id: int
    root: Path
    start: datetime
    init: bytes
    track: TrackInfo
    rel_path: str = ""
    row_id: int | None = None
    size: int = 0
    fragments: int = 0
    media_seconds: float = 0.0
    end: datetime | None = None
    keyframes: list[tuple[int, int]] = field(default_factory=list)
    first_decode_time: int | None = None
    _fh: object = None
    dirty: bool = True
    node: str | None = None  # with several recorder nodes: this node, and its lease's fencing token
    lease_token: int | None = None
    insert_tried: bool = False  # the index writer sent its row once; a commit that failed may still have happened

    def open(self) -> None:
        self.rel_path = relative_path(self.camera_id, self.start)
        path = self.root / self.rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "wb", buffering=0)  # noqa: SIM115 - lives as long as the segment
        self._fh.write(self.init)
        self.size = len(self.init)
        self.end = self.start

    def append(self, fragment: Fragment, decode_time: int) -> None:
        """Write a fragment; its decode time is rebased so that every file's media time starts at zero."""
        if fragment.keyframe:
            ms = max(0, int((fragment.start - self.start).total_seconds() * 1000))
            self.keyframes.append((ms, self.size))
        if self.first_decode_time is None:
            self.first_decode_time = decode_time
        rebased = decode_time - self.first_decode_time
        if rebased != decode_time:
            moof_size = int.from_bytes(fragment.data[:4], "big")
            moof = bytearray(fragment.data[:moof_size])
            set_decode_time(moof, rebased)
            self._fh.write(moof)
            self._fh.write(memoryview(fragment.data)[moof_size:])
        else:
            self._fh.write(fragment.data)
        self.size += len(fragment.data)
        self.fragments += 1
        self.media_seconds += fragment.duration
        self.end = fragment.start + timedelta(seconds=fragment.duration)
        self.dirty = True

    def close(self) -> None:
        if self._fh is not None:
            try:
                os.fsync(self._fh.fileno())
            except OSError:
                pass
            self._fh.close()
            self._fh = None

    @property
    def duration(self) -> float:
        return (self.end - self.start).total_seconds() if self.end else 0.0
