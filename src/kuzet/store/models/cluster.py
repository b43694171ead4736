"""Tables of the recorder cluster: the live recorder nodes and the camera leases they hold (docs/scale.md).

A lease says which node records a camera until ``expires_at`` (the database's clock). ``token`` grows by one at every
take: the fencing token, written with every recording row the holder writes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kuzet.store.models.base import Base


class RecorderNode(Base):
    """A recorder process, its heartbeat and what it reports of itself for ``kuzet cluster status``."""

    __tablename__ = "recorder_nodes"

    node: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column()
    heartbeat_at: Mapped[datetime] = mapped_column()
    cameras_held: Mapped[int] = mapped_column(Integer, default=0)
    upload_backlog_files: Mapped[int] = mapped_column(Integer, default=0)
    upload_backlog_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    advertise_url: Mapped[str | None] = mapped_column(String(500))  # where the other nodes reach its API


class CameraLease(Base):
    """Which node records a camera. Free when ``expires_at`` has passed (or ``node`` is None)."""

    __tablename__ = "camera_leases"
    __table_args__ = (Index("ix_camera_leases_node", "node"),)

    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True)
    node: Mapped[str | None] = mapped_column(String(200))
    token: Mapped[int] = mapped_column(BigInteger, default=0)
    acquired_at: Mapped[datetime | None] = mapped_column()
    renewed_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
