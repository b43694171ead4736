"""Tables of body-worn and dash cameras (docs/bodycams.md): who does what in a unit, devices, shifts, resumable
uploads, the recordings with their hashes, categories with retention, evidence holds, incident links, GPS tracks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kuzet.store.db import utcnow
from kuzet.store.models.base import Base


class BodycamDuty(Base):
    """A user's duty in a police unit for body-worn video: ``officer`` (wears a device, sees own recordings),
    ``supervisor`` or ``custodian`` (sees and keeps the unit's recordings, checks devices out and in). Like district
    assignments: given by someone, on a legal basis, ended but never deleted."""

    __tablename__ = "bodycam_duties"
    __table_args__ = (Index("ix_bodycam_duties_user_org", "user_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    duty: Mapped[str] = mapped_column(String(16))  # officer | supervisor | custodian
    legal_basis: Mapped[str] = mapped_column(String(500))
    assigned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    ended_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class BodycamDevice(Base):
    """A body-worn (``body``) or dash (``dash``) camera of a unit."""

    __tablename__ = "bodycam_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # body | dash
    model: Mapped[str] = mapped_column(String(100), default="")
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    # A dash camera that streams live is a camera of the push ingest (services/onboarding/push.py).
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id", ondelete="SET NULL"))
    registered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column()


class BodycamShift(Base):
    """A device checked out to an officer, and checked in again. ``clock_offset_ms`` is the device's clock minus the
    server's at check-in: times the device wrote into its files are corrected by it."""

    __tablename__ = "bodycam_shifts"
    __table_args__ = (Index("ix_bodycam_shifts_device_out", "device_id", "checked_out_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("bodycam_devices.id"))
    officer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    checked_out_at: Mapped[datetime] = mapped_column(default=utcnow)
    checked_out_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    checked_in_at: Mapped[datetime | None] = mapped_column()
    checked_in_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    clock_offset_ms: Mapped[int | None] = mapped_column(BigInteger)


class BodycamCategory(Base):
    """What a recording shows, and how long such recordings are kept (None: until someone deletes them by hand)."""

    __tablename__ = "bodycam_categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    retention_days: Mapped[int | None] = mapped_column(Integer)
    evidence: Mapped[bool] = mapped_column(Boolean, default=False)  # recordings of it are held once categorised


class BodycamUpload(Base):
    """A resumable upload (tus): the bytes arrive into ``<bodycams>/uploads/<id>.part`` until ``offset == length``."""

    __tablename__ = "bodycam_uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("bodycam_devices.id"), index=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    filename: Mapped[str] = mapped_column(String(255))
    device_started_at: Mapped[datetime | None] = mapped_column()  # the recording's start by the device's clock
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("bodycam_recordings.id", ondelete="SET NULL"))


class BodycamRecording(Base):
    """One file offloaded from a device, kept exactly as it arrived (``path``, read-only, ``sha256`` at ingest).
    A browser-playable copy, when the original cannot play, has its own path and hash."""

    __tablename__ = "bodycam_recordings"
    __table_args__ = (Index("ix_bodycam_recordings_officer_start", "officer_id", "started_at"),
                      Index("ix_bodycam_recordings_org_start", "organisation_id", "started_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("bodycam_devices.id"), index=True)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("bodycam_shifts.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    filename: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(500))  # relative to the bodycams directory
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    media: Mapped[dict | None] = mapped_column(JSON)  # container, codecs, size, duration as ffprobe saw them
    started_at: Mapped[datetime] = mapped_column()  # server time (device time corrected by the shift's offset)
    ended_at: Mapped[datetime] = mapped_column()
    device_started_at: Mapped[datetime | None] = mapped_column()
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)
    ingested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    via: Mapped[str] = mapped_column(String(16))  # upload | watch
    category_id: Mapped[int | None] = mapped_column(ForeignKey("bodycam_categories.id"), index=True)
    categorised_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    categorised_at: Mapped[datetime | None] = mapped_column()
    title: Mapped[str] = mapped_column(String(300), default="")
    playable_path: Mapped[str | None] = mapped_column(String(500))
    playable_sha256: Mapped[str | None] = mapped_column(String(64))
    playable_bytes: Mapped[int | None] = mapped_column(BigInteger)
    lat: Mapped[float | None] = mapped_column(Float)  # the first GPS fix, for search by place
    lon: Mapped[float | None] = mapped_column(Float)
    deleted_at: Mapped[datetime | None] = mapped_column()  # retention ran out: the files are gone, the row stays


class BodycamHold(Base):
    """An evidence hold: the recording is not deleted while any hold is open."""

    __tablename__ = "bodycam_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("bodycam_recordings.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(32))  # incident:7, export:ab…, category:arrest, or by hand
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column()
    released_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class BodycamIncidentLink(Base):
    """A recording linked to an operations-centre incident."""

    __tablename__ = "bodycam_incident_links"
    __table_args__ = (Index("ix_bodycam_incident_links_pair", "incident_id", "recording_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    recording_id: Mapped[int] = mapped_column(ForeignKey("bodycam_recordings.id", ondelete="CASCADE"), index=True)
    linked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)


class BodycamTrackPoint(Base):
    """A GPS fix of a dash camera's recording (from an NMEA or GPX side file)."""

    __tablename__ = "bodycam_track_points"
    __table_args__ = (Index("ix_bodycam_track_points_rec_at", "recording_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("bodycam_recordings.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column()
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    speed_kmh: Mapped[float | None] = mapped_column(Float)


class BodycamRedaction(Base):
    """A redacted copy of a recording for disclosure: the detection plan the operator reviews (a JSON file), then the
    copy itself, hashed and linked to its original. The original is never touched."""

    __tablename__ = "bodycam_redactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("bodycam_recordings.id", ondelete="CASCADE"), index=True)
    # queued → planning (a background job finds the faces) → planned → rendered; or failed
    state: Mapped[str] = mapped_column(String(16), default="planned")
    plan_path: Mapped[str] = mapped_column(String(500))
    frames_done: Mapped[int | None] = mapped_column(Integer)  # the job's progress
    frames_total: Mapped[int | None] = mapped_column(Integer)  # estimated from the duration and rate
    heartbeat_at: Mapped[datetime | None] = mapped_column()  # the job's last sign of life (stale: taken over)
    error: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(String(500))
    sha256: Mapped[str | None] = mapped_column(String(64))
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rendered_at: Mapped[datetime | None] = mapped_column()


class BodycamDisclosure(Base):
    """A signed disclosure package (zip: redacted copies, manifest with both hashes, signature) shared with a
    prosecutor or a court by an expiring link. Only the link token's SHA-256 is stored."""

    __tablename__ = "bodycam_disclosures"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    redaction_ids: Mapped[list] = mapped_column(JSON)
    recipient: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class BodycamLiveFix(Base):
    """A GPS fix a patrol car's dash camera (or its in-car modem) posted while on the road: the live track of the
    device's shift (``shift_id`` None when it posted outside one). ``at`` is GPS time; one fix per device and time."""

    __tablename__ = "bodycam_live_fixes"
    __table_args__ = (Index("ix_bodycam_live_fixes_device_at", "device_id", "at", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("bodycam_devices.id", ondelete="CASCADE"))
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("bodycam_shifts.id", ondelete="SET NULL"), index=True)
    at: Mapped[datetime] = mapped_column()
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    speed_kmh: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class BodycamRedactionCheckpoint(Base):
    """Where a redaction job had got to: the boxes found since the previous checkpoint and the tracker's state at
    ``frame``, so a job taken over after a restart resumes there instead of at the first frame."""

    __tablename__ = "bodycam_redaction_checkpoints"
    __table_args__ = (Index("ix_bodycam_redaction_checkpoints_job", "redaction_id", "frame", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    redaction_id: Mapped[int] = mapped_column(ForeignKey("bodycam_redactions.id", ondelete="CASCADE"))
    frame: Mapped[int] = mapped_column(Integer)  # the next frame to look at
    state: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
