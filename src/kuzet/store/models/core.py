"""Core tables: places, organisations, users, grants, cameras, tokens, login attempts, the audit chain."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kuzet.store.db import utcnow
from kuzet.store.models.base import Base


class Place(Base):
    __tablename__ = "places"
    __table_args__ = (
        Index("ix_places_kind_path", "kind", "path"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("places.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(400))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # Materialised path "/1/5/9/": a subtree is every place whose path starts with its root's path.
    path: Mapped[str] = mapped_column(String(400), index=True, default="")
    population: Mapped[int | None] = mapped_column(Integer)
    geometry: Mapped[dict | None] = mapped_column(JSON)  # GeoJSON geometry (street line, yard polygon), optional
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[Place | None] = relationship(remote_side=[id])


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"))  # the area it serves or sits in
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    # Home area (inspector's district, resident's entrance); used by role rules, never a grant by itself.
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"))
    language: Mapped[str] = mapped_column(String(2), default="ru")
    # An IANA time zone the user reads times in; None: the installation's ([general] timezone).
    timezone: Mapped[str | None] = mapped_column(String(64))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation | None] = relationship()


class Camera(Base):
    __tablename__ = "cameras"
    __table_args__ = (
        Index("ix_cameras_kind_id", "kind", "id"),
        Index("ix_cameras_lat_lon", "lat", "lon"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), default="street")  # entrance, yard, street, school, road, gate, …
    place_id: Mapped[int] = mapped_column(ForeignKey("places.id"), index=True)
    owner_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    # Stream URLs are stored without their user:password; the credentials are encrypted (Fernet) beside them.
    main_url: Mapped[str] = mapped_column(String(1000))
    main_credentials: Mapped[bytes | None] = mapped_column(LargeBinary)
    sub_url: Mapped[str | None] = mapped_column(String(1000))
    sub_credentials: Mapped[bytes | None] = mapped_column(LargeBinary)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    bearing: Mapped[float | None] = mapped_column(Float)  # degrees clockwise from north
    field_of_view: Mapped[float | None] = mapped_column(Float)  # degrees
    view_radius_m: Mapped[float | None] = mapped_column(Float)
    retention_days: Mapped[int] = mapped_column(Integer, default=30)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    installed_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    place: Mapped[Place] = relationship()
    owner: Mapped[Organisation | None] = relationship()


class Grant(Base):
    """Rights for a user or an organisation on a place subtree or one camera, valid for a period, on a legal basis."""

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"), index=True)
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), index=True)
    rights: Mapped[str] = mapped_column(String(200))  # comma-separated Right values
    valid_from: Mapped[datetime | None] = mapped_column()
    valid_to: Mapped[datetime | None] = mapped_column()
    legal_basis: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()
    # view_archive (and export) under this grant reach only the last N days (a subscriber's plan); None: all of it.
    archive_days: Mapped[int | None] = mapped_column(Integer)
    # What made the grant when a service did ("flat:12", "agreement:3"): it is ended through that, not by hand.
    source: Mapped[str | None] = mapped_column(String(32), index=True)


class ApiToken(Base):
    """Session cookies, OAuth2 bearer tokens and personal API tokens. Only a SHA-256 of the secret is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # session, bearer, personal
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()


class LoginAttempt(Base):
    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_username_at", "username", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    ip: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    success: Mapped[bool] = mapped_column(Boolean)


class AuditRecord(Base):
    """Append-only, hash-chained. ``prev_hash`` is unique: two writers can never both extend the same record."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_camera_seq", "camera_id", "seq"),
        Index("ix_audit_log_actor_seq", "actor_name", "seq"),
        Index("ix_audit_log_at", "at"),
        UniqueConstraint("prev_hash", name="uq_audit_log_prev_hash"),
        Index("ix_audit_log_camera_at", "camera_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64))
    camera_id: Mapped[int | None] = mapped_column(Integer)
    ip: Mapped[str | None] = mapped_column(String(64))
    legal_basis: Mapped[str | None] = mapped_column(Text)
    purpose: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict | None] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
