"""Tables of the safe-yard registry. Personal data is stored only encrypted (``payload``), with keyed hashes of
normalised names and national ID numbers for search (see docs/safeyard.md)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kuzet.store.db import utcnow
from kuzet.store.models.base import Base


class SafeYard(Base):
    __tablename__ = "safe_yards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    place_id: Mapped[int] = mapped_column(ForeignKey("places.id"), unique=True)  # the yard
    district_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"), index=True)
    inspector_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    joined_on: Mapped[date] = mapped_column(Date)
    characteristics: Mapped[dict] = mapped_column(JSON, default=dict)  # floors, entrances, apartments, year built, …
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PersonRecord(Base):
    """A resident, supervised person, firearm owner, rental or volunteer helper of a safe yard's passport."""

    __tablename__ = "safe_yard_people"
    __table_args__ = (Index("ix_safe_yard_people_yard_category", "safe_yard_id", "category"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    safe_yard_id: Mapped[int] = mapped_column(ForeignKey("safe_yards.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(16))  # resident, supervised, firearm, rental, volunteer
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # encrypted JSON of every personal field
    key_id: Mapped[str] = mapped_column(String(16))
    name_index: Mapped[str | None] = mapped_column(String(64), index=True)  # HMAC of the normalised name
    iin_index: Mapped[str | None] = mapped_column(String(64), index=True)  # HMAC of the national ID number
    check_on: Mapped[date | None] = mapped_column(Date)  # permit expiry or end of supervision, for the dashboard
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SafeYardPhoto(Base):
    __tablename__ = "safe_yard_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    safe_yard_id: Mapped[int] = mapped_column(ForeignKey("safe_yards.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(400))  # relative to the recordings storage
    thumbnail: Mapped[str] = mapped_column(String(400))
    caption: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SafeYardChange(Base):
    """History of a passport: who changed what and when (field names, never the personal values)."""

    __tablename__ = "safe_yard_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    safe_yard_id: Mapped[int] = mapped_column(ForeignKey("safe_yards.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict | None] = mapped_column(JSON)


class DistrictAssignment(Base):
    """Need to know: a user (an inspector, or a police operator supervising inspectors) assigned to a district (or a
    wider area) reads the personal data of the safe yards inside it while the assignment lasts. Who assigned, when,
    until when and on what legal basis are kept; an assignment is ended, never deleted."""

    __tablename__ = "district_assignments"
    __table_args__ = (Index("ix_district_assignments_user", "user_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    place_id: Mapped[int] = mapped_column(ForeignKey("places.id"), index=True)
    legal_basis: Mapped[str] = mapped_column(String(500))
    assigned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    valid_from: Mapped[datetime | None] = mapped_column()
    valid_to: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
