"""Reading the archive: what was recorded between t1 and t2 (answered from the index), and a playable fMP4 of any
window cut at fragment boundaries without re-encoding."""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kuzet.services.recording.mp4 import Mp4Error, iter_boxes, parse_init, parse_moof, set_decode_time
from kuzet.services.recording.segments import unpack_keyframes
from kuzet.services.recording.storage import ArchiveStore, RecordingSource, RecordingUnavailable
from kuzet.store.models.recording import Gap, Recording

log = logging.getLogger("kuzet.archive")

CONTIGUOUS = timedelta(seconds=1.5)  # files closer than this are one recorded range
HEAD_READ = 64 << 10  # read with a file's init segment: the first moof is usually inside, saving a request


def timeline(session: Session, camera_id: int, start: datetime, end: datetime) -> dict:
    """Recorded ranges and gaps (with reasons) overlapping [start, end), from the index."""
    rows = session.execute(
        select(Recording.start_at, Recording.end_at)
        .where(Recording.camera_id == camera_id, Recording.start_at < end, Recording.end_at > start)
        .order_by(Recording.start_at)).all()
    ranges: list[list[datetime]] = []
    for r_start, r_end in rows:
        if ranges and r_start - ranges[-1][1] <= CONTIGUOUS:
            ranges[-1][1] = max(ranges[-1][1], r_end)
        else:
            ranges.append([r_start, r_end])
    gaps = session.scalars(
        select(Gap).where(Gap.camera_id == camera_id, Gap.start_at < end,
                          or_(Gap.end_at.is_(None), Gap.end_at > start), or_(Gap.end_at.is_(None),
                                                                              Gap.end_at > Gap.start_at))
        .order_by(Gap.start_at)).all()
    return {
        "camera_id": camera_id, "start": start, "end": end,
        "recorded": [{"start": max(a, start), "end": min(b, end)} for a, b in ranges],
        "gaps": [{"start": max(g.start_at, start), "end": min(g.end_at, end) if g.end_at else None,
                  "reason": g.reason, "message": g.message, "ongoing": g.end_at is None} for g in gaps],
        "recorded_seconds": sum((min(b, end) - max(a, start)).total_seconds() for a, b in ranges),
    }


@dataclass(frozen=True)
class Piece:
    """The part of one file that a window needs: from the keyframe fragment at or before its start."""

    source: RecordingSource
    file_start: datetime
    init_size: int
    byte_start: int
    byte_end: int
    codec: str | None
    wall_start: datetime  # wall-clock time of the piece's first fragment


def plan_window(session: Session, store: ArchiveStore | Path, camera_id: int, start: datetime,
                end: datetime) -> list[Piece]:
    """The pieces of every file overlapping the window, read from wherever each file lives (``store``; a bare path
    means the local directory only)."""
    if isinstance(store, Path):
        store = ArchiveStore(store)
    rows = session.scalars(
        select(Recording).where(Recording.camera_id == camera_id, Recording.start_at < end,
                                Recording.end_at > start).order_by(Recording.start_at)).all()
    pieces = []
    for i, row in enumerate(rows):
        keyframes = unpack_keyframes(row.keyframes)
        byte_start, first_ms = row.init_size, 0
        if i == 0 and keyframes:
            target_ms = (start - row.start_at).total_seconds() * 1000
            before = [(ms, off) for ms, off in keyframes if ms <= target_ms]
            first_ms, byte_start = before[-1] if before else keyframes[0]
        pieces.append(Piece(store.source(row.path, row.object_key), row.start_at, row.init_size, byte_start,
                            row.bytes, row.codec, row.start_at + timedelta(milliseconds=first_ms)))
    return playable(pieces)


def playable(pieces: list[Piece]) -> list[Piece]:
    """The pieces whose file is there and starts with a readable init segment. A damaged or missing file is left
    out (and logged, naming it) before anything is sent, so one bad file never breaks a clip or an export halfway."""
    out = []
    for piece in pieces:
        try:
            parse_init(piece.source.read(0, piece.init_size))
        except (OSError, Mp4Error, RecordingUnavailable) as exc:
            log.warning("recording %s cannot be read (%s): left out of the window", piece.source.path, exc)
            continue
        out.append(piece)
    return out


def window_fmp4(pieces: list[Piece], start: datetime, end: datetime) -> Iterator[bytes]:
    """Init segment, then the fragments of every piece up to ``end``, with decode times made continuous across files
    (each file's own media clock starts at zero)."""
    if not pieces:
        return
    first_init = None
    timescale = 90000
    base: datetime | None = None
    for piece in pieces:
        source = piece.source
        try:
            head = source.read(0, piece.init_size + HEAD_READ)  # the init segment and (mostly) the first moof
            init = head[:piece.init_size]
            if first_init is None:
                first_init = init
                timescale = parse_init(init).timescale
                yield init
            elif init[8:] != first_init[8:] and parse_init(init) != parse_init(first_init):
                return  # the stream changed format: a player needs a new init segment; stop the window here
            first_moof = _first_fragment(source, head, piece.init_size)
            file_dt0 = parse_moof(first_moof).decode_time if first_moof else 0
            data = source.read(piece.byte_start, max(0, piece.byte_end - piece.byte_start))
        except RecordingUnavailable as exc:  # gone since the plan (or the store went away): end the window here
            log.warning("recording %s became unreadable (%s): the window ends before it", source.path, exc)
            return
        pending = bytearray()
        for kind, b_start, b_end in iter_boxes(data):
            box = data[b_start:b_end]
            if kind == b"moof":
                info = parse_moof(box)
                wall = piece.file_start + timedelta(seconds=(info.decode_time - file_dt0) / timescale)
                if wall >= end:
                    return
                if base is None:
                    base = wall
                moof = bytearray(box)
                set_decode_time(moof, max(0, round((wall - base).total_seconds() * timescale)))
                pending = moof
            elif kind == b"mdat" and pending:
                yield bytes(pending) + box
                pending = bytearray()


def _first_fragment(source: RecordingSource, head: bytes, offset: int) -> bytes | None:
    """The box at ``offset`` (the first moof), from ``head`` when it holds it, else read."""
    header = head[offset:offset + 8]
    if len(header) < 8:
        header = source.read(offset, 8)
        if len(header) < 8:
            return None
    size = struct.unpack(">I", header[:4])[0]
    if size < 8:
        return None
    box = head[offset:offset + size]
    return box if len(box) == size else source.read(offset, size)
