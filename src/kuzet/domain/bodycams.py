"""Body-worn and dash cameras in the domain's words: duties in a unit, kinds of device, categories of recordings,
and how device clocks are corrected. No I/O here."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class Duty(StrEnum):
    """What a user does with body-worn video in a police unit (docs/bodycams.md)."""

    OFFICER = "officer"  # wears a device; sees the recordings they made
    SUPERVISOR = "supervisor"  # sees the unit's recordings, checks devices out and in
    CUSTODIAN = "custodian"  # the unit's evidence custodian: the same reach, keeps holds and disclosures


KEEPER_DUTIES = frozenset({Duty.SUPERVISOR, Duty.CUSTODIAN})


class DeviceKind(StrEnum):
    BODY = "body"
    DASH = "dash"


class Category(StrEnum):
    """The categories every installation starts with (their retention is set per installation)."""

    NO_EVENT = "no_event"
    TRAFFIC_STOP = "traffic_stop"
    COMPLAINT = "complaint"
    ARREST = "arrest"
    USE_OF_FORCE = "use_of_force"
    OTHER = "other"


class Action:
    """Audit action names of this capability."""

    DUTY_ASSIGNED = "bodycam.duty_assigned"
    DUTY_ENDED = "bodycam.duty_ended"
    DEVICE_REGISTERED = "bodycam.device_registered"
    DEVICE_RETIRED = "bodycam.device_retired"
    CHECKED_OUT = "bodycam.checked_out"
    CHECKED_IN = "bodycam.checked_in"
    UPLOAD_STARTED = "bodycam.upload_started"
    UPLOAD_CANCELLED = "bodycam.upload_cancelled"
    INGESTED = "bodycam.ingested"
    PLAYABLE_MADE = "bodycam.playable_made"
    CATEGORISED = "bodycam.categorised"
    CATEGORY_CHANGED = "bodycam.category_changed"
    HELD = "bodycam.held"
    HOLD_RELEASED = "bodycam.hold_released"
    DELETED = "bodycam.deleted"
    VIEWED = "bodycam.viewed"  # metadata of a recording read
    PLAYED = "bodycam.played"  # the video itself opened
    INCIDENT_LINKED = "bodycam.incident_linked"
    CREWS_VIEWED = "bodycam.crews_viewed"  # patrol cars' positions looked at on the map
    REDACTION_REQUESTED = "bodycam.redaction_requested"  # a background job queued to find the faces
    REDACTION_FAILED = "bodycam.redaction_failed"  # the job could not read the video
    REDACTION_PLANNED = "bodycam.redaction_planned"  # faces found and tracked: the plan the operator reviews
    REDACTION_EDITED = "bodycam.redaction_edited"  # tracks left unblurred, boxes added
    REDACTED = "bodycam.redacted"  # the redacted copy written, with its hash and the original's
    DISCLOSED = "bodycam.disclosed"  # a signed disclosure package and its expiring link
    DISCLOSURE_OPENED = "bodycam.disclosure_opened"  # the link opened (from where)


def corrected(device_time: datetime, clock_offset_ms: int | None) -> datetime:
    """A time written by a device's clock, as server time: the offset is the device's clock minus the server's."""
    if clock_offset_ms is None:
        return device_time
    return device_time - timedelta(milliseconds=clock_offset_ms)


def retention_end(started_at: datetime, retention_days: int | None) -> datetime | None:
    """When a recording of a category with this retention may be deleted (None: kept until deleted by hand)."""
    return None if retention_days is None else started_at + timedelta(days=retention_days)
