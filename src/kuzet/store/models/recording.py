"""Tables of the recording capability: the archive index, gaps and evidence holds (see docs/recording.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from kuzet.store.db import utcnow
from kuzet.store.models.base import Base


class Recording(Base):
    """One fMP4 file: at most a minute of one camera stream. ``keyframes`` maps time to byte offsets inside it."""

    __tablename__ = "recordings"
    __table_args__ = (
        Index("ix_recordings_camera_start", "camera_id", "start_at"),
        Index("ix_recordings_start", "start_at"),
        # The uploader's queue: closed files not yet in the object store (a few rows, however large the archive).
        Index("ix_recordings_not_uploaded", "id", postgresql_where=text("object_key IS NULL"),
              sqlite_where=text("object_key IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    stream: Mapped[str] = mapped_column(String(8), default="main")
    path: Mapped[str] = mapped_column(String(400))  # relative to the recordings directory
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime] = mapped_column()
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    init_size: Mapped[int] = mapped_column(Integer, default=0)
    fragments: Mapped[int] = mapped_column(Integer, default=0)
    media_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # Packed little-endian uint32 pairs (milliseconds from start_at, byte offset) of every keyframe fragment.
    keyframes: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    codec: Mapped[str | None] = mapped_column(String(16))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(8), default="open")  # open while being written, then closed
    # With [storage] backend = "s3": the object's key once uploaded and verified (the local copy is then deleted),
    # and the SHA-256 (hex) the upload was checked against. None: the file is only on the local disk.
    object_key: Mapped[str | None] = mapped_column(String(600))
    sha256: Mapped[str | None] = mapped_column(String(64))
    # With [cluster] enabled: the recorder node that wrote the file and its lease's fencing token (docs/scale.md).
    node: Mapped[str | None] = mapped_column(String(200))
    lease_token: Mapped[int | None] = mapped_column(BigInteger)


class Gap(Base):
    """An interval with no recording, and why. ``end_at`` is None while the gap is still going on."""

    __tablename__ = "recording_gaps"
    __table_args__ = (Index("ix_recording_gaps_camera_start", "camera_id", "start_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime | None] = mapped_column()
    reason: Mapped[str] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)


class EvidenceHold(Base):
    """A camera and time range that retention never deletes (an export, an investigation)."""

    __tablename__ = "evidence_holds"
    __table_args__ = (Index("ix_evidence_holds_camera", "camera_id", "start_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime] = mapped_column()
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column()
