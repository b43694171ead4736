"""Tables of the watching capability: evidence exports and saved video-wall layouts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kuzet.store.db import utcnow
from kuzet.store.models.base import Base


class Export(Base):
    """A sealed multi-camera evidence bundle: one window, several cameras, a legal basis."""

    __tablename__ = "exports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime] = mapped_column()
    cameras: Mapped[list] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending, running, done, failed
    error: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(String(400))  # bundle zip, relative to the data directory
    sha256: Mapped[str | None] = mapped_column(String(64))
    bytes: Mapped[int | None] = mapped_column(BigInteger)  # up to security.export_max_bytes
    finished_at: Mapped[datetime | None] = mapped_column()


class WallLayout(Base):
    """A user's saved video wall: grid size and the camera in each tile."""

    __tablename__ = "wall_layouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    grid: Mapped[int] = mapped_column(Integer, default=4)  # 1, 4, 9 or 16 tiles
    cameras: Mapped[list] = mapped_column(JSON)  # camera id or null per tile
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
