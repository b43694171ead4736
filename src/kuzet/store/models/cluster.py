"""Tables of the cluster (docs/scale.md): the live nodes and the camera leases they hold, one pair of tables per
purpose — recording (``recorder_nodes``, ``camera_leases``) and analysis (``analysis_nodes``, ``analysis_leases``).

A lease says which node records (or analyses) a camera until ``expires_at`` (the database's clock). ``token`` grows by
one at every take: the fencing token, written with every recording row the holder writes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kuzet.store.models.base import Base


class _Node:
    """A node process of one purpose, its heartbeat and what it reports of itself for ``kuzet cluster status``."""

    node: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column()
    heartbeat_at: Mapped[datetime] = mapped_column()
    cameras_held: Mapped[int] = mapped_column(Integer, default=0)
    upload_backlog_files: Mapped[int] = mapped_column(Integer, default=0)
    upload_backlog_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    advertise_url: Mapped[str | None] = mapped_column(String(500))  # where the other nodes reach its API


class _Lease:
    """Which node holds a camera for one purpose. Free when ``expires_at`` has passed (or ``node`` is None)."""

    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True)
    node: Mapped[str | None] = mapped_column(String(200))
    token: Mapped[int] = mapped_column(BigInteger, default=0)
    acquired_at: Mapped[datetime | None] = mapped_column()
    renewed_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()


class RecorderNode(_Node, Base):
    """A recorder process (it takes recording leases)."""

    __tablename__ = "recorder_nodes"


class CameraLease(_Lease, Base):
    """Which node records a camera."""

    __tablename__ = "camera_leases"
    __table_args__ = (Index("ix_camera_leases_node", "node"),)


class AnalysisNode(_Node, Base):
    """A process running the analysis service (it takes analysis leases); ``cameras_held`` counts analysis leases."""

    __tablename__ = "analysis_nodes"


class AnalysisLease(_Lease, Base):
    """Which node analyses a camera (independent of which node records it)."""

    __tablename__ = "analysis_leases"
    __table_args__ = (Index("ix_analysis_leases_node", "node"),)
