"""Tables of the crime analytics: registered offences and population per district and year."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kuzet.store.db import utcnow
from kuzet.store.models.base import Base


class Offence(Base):
    __tablename__ = "offences"
    __table_args__ = (Index("ix_offences_registered", "registered_on"), Index("ix_offences_district", "district"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the police register's number
    registered_on: Mapped[date] = mapped_column(Date)
    committed_at: Mapped[datetime | None] = mapped_column()
    article: Mapped[str | None] = mapped_column(String(32))
    gravity: Mapped[str] = mapped_column(String(20))
    offence_type: Mapped[str] = mapped_column(String(32))
    place_type: Mapped[str | None] = mapped_column(String(32))
    district: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str | None] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Population(Base):
    __tablename__ = "population"

    district: Mapped[str] = mapped_column(String(200), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    population: Mapped[int] = mapped_column(Integer)
