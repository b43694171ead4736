"""Reading the archive: what was recorded between t1 and t2 (answered from the index), and a playable fMP4 of any
window cut at fragment boundaries without re-encoding."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kuzet.services.recording.mp4 import iter_boxes, parse_init, parse_moof, set_decode_time
from kuzet.services.recording.segments import unpack_keyframes
from kuzet.store.models.recording import Gap, Recording

CONTIGUOUS = timedelta(seconds=1.5)  # files closer than this are one recorded range


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

    path: Path
    file_start: datetime
    init_size: int
    byte_start: int
    byte_end: int
    codec: str | None
    wall_start: datetime  # wall-clock time of the piece's first fragment


def plan_window(session: Session, root: Path, camera_id: int, start: datetime, end: datetime) -> list[Piece]:
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
        pieces.append(Piece(root / row.path, row.start_at, row.init_size, byte_start, row.bytes, row.codec,
                            row.start_at + timedelta(milliseconds=first_ms)))
    return pieces


def window_fmp4(pieces: list[Piece], start: datetime, end: datetime) -> Iterator[bytes]:
    """Init segment, then the fragments of every piece up to ``end``, with decode times made continuous across files
    (each file's own media clock starts at zero)."""
    if not pieces:
        return
    first_init = None
    timescale = 90000
    base: datetime | None = None
    for piece in pieces:
        with open(piece.path, "rb") as fh:
            init = fh.read(piece.init_size)
            if first_init is None:
                first_init = init
                timescale = parse_init(init).timescale
                yield init
            elif init[8:] != first_init[8:] and parse_init(init) != parse_init(first_init):
                return  # the stream changed format: a player needs a new init segment; stop the window here
            fh.seek(piece.init_size)
            first_moof = _first_fragment(fh)
            file_dt0 = parse_moof(first_moof).decode_time if first_moof else 0
            fh.seek(piece.byte_start)
            data = fh.read(max(0, piece.byte_end - piece.byte_start))
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


def _first_fragment(fh) -> bytes | None:  # noqa: ANN001
    header = fh.read(8)
    if len(header) < 8:
        return None
    size = struct.unpack(">I", header[:4])[0]
    return header + fh.read(size - 8)
