"""Tables of onboarding at scale and storage tiers: a camera's tier policy and its push ingest key
(see docs/cloud.md, "Onboarding" and "Storage tiers")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kuzet.store.db import utcnow
from kuzet.store.models.base import Base


class CameraStorageTier(Base):
    """A camera's own storage tier: everything for ``full_days``, then motion minutes for ``motion_days`` more.
    A camera without a row follows what a policy source (a cloud plan) says, else its ``retention_days`` alone."""

    __tablename__ = "camera_storage_tiers"

    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True)
    full_days: Mapped[int] = mapped_column(Integer)
    motion_days: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CameraPush(Base):
    """A camera behind NAT that pushes its stream (RTMP or RTSP RECORD) with a per-camera secret key.
    Only the key's SHA-256 is stored; the key is shown once, when it is issued."""

    __tablename__ = "camera_push"

    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True)
    protocol: Mapped[str] = mapped_column(String(8), default="rtmp")  # rtmp | rtsp
    key_hash: Mapped[str] = mapped_column(String(64))
    key_issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_publish_at: Mapped[datetime | None] = mapped_column()
    last_refused_at: Mapped[datetime | None] = mapped_column()


class TierProgress(Base):
    """How far thinning has gone through a camera's archive: every file that started before ``thinned_until`` was
    decided (kept or deleted), so each pass reads only files that newly left the full-retention window."""

    __tablename__ = "storage_tier_progress"

    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True)
    thinned_until: Mapped[datetime] = mapped_column()
