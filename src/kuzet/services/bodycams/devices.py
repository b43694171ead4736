"""The registry of body-worn and dash cameras, and shifts: a device checked out to an officer and checked in again.

Check-out and check-in are audited. At check-in the device's clock is compared with the server's (the docking station
reads it, or the custodian types what the device shows): ``clock_offset_ms`` = device − server, kept with the shift,
and every time the device wrote into its files during that shift is corrected by it.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.domain.access import POLICE_KINDS
from kuzet.domain.bodycams import Action, DeviceKind, Duty
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.services.bodycams.units import administers_unit, duties_of, kept_units, manages_device, sees_device
from kuzet.store.db import utcnow
from kuzet.store.models import Organisation, User
from kuzet.store.models.bodycams import BodycamDevice, BodycamShift

SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# A device whose clock is off by more than this is refused at check-in: the reading is wrong, not the clock.
MAX_OFFSET_MS = 366 * 86_400_000


class DeviceError(ValueError):
    """The request is wrong (422)."""


class DeviceDenied(Exception):
    """Outside the caller's reach (404) unless ``forbidden`` (403: seen, but not theirs to change)."""

    def __init__(self, message: str, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


class DeviceConflict(Exception):
    """The device's state does not allow it (409): already out, not out, retired."""


def register_device(session: Session, actor: Actor, by: User, *, serial: str, kind: str, organisation_id: int,
                    model: str = "") -> BodycamDevice:
    if not SERIAL.match(serial or ""):
        raise DeviceError("serial: 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    try:
        kind = DeviceKind(kind).value
    except ValueError:
        raise DeviceError(f"kind: {kind!r} is not one of {', '.join(k.value for k in DeviceKind)}") from None
    if not (administers_unit(by, organisation_id) or organisation_id in kept_units(session, by)):
        raise DeviceDenied("organisation not found")
    org = session.get(Organisation, organisation_id)
    if org is None:
        raise DeviceDenied("organisation not found")
    if org.kind not in POLICE_KINDS:
        raise DeviceError("body-worn and dash cameras belong to police units")
    if session.scalar(select(BodycamDevice.id).where(BodycamDevice.serial == serial)) is not None:
        raise DeviceConflict(f"a device with serial {serial!r} is already registered")
    device = BodycamDevice(serial=serial, kind=kind, model=model.strip(), organisation_id=organisation_id,
                           registered_by=by.id)
    session.add(device)
    session.flush()
    audit.append(session, actor, Action.DEVICE_REGISTERED, object_type="bodycam_device", object_id=device.id,
                 details={"serial": serial, "kind": kind, "organisation_id": organisation_id})
    return device


def device_for(session: Session, user: User, device_id: int, *, manage: bool = False) -> BodycamDevice:
    device = session.get(BodycamDevice, device_id)
    if device is None or not sees_device(session, user, device):
        raise DeviceDenied("device not found")
    if manage and not manages_device(session, user, device):
        raise DeviceDenied("only the unit's supervisors, custodians and admin manage its devices", forbidden=True)
    return device


def open_shift(session: Session, device_id: int) -> BodycamShift | None:
    return session.scalar(select(BodycamShift).where(BodycamShift.device_id == device_id,
                                                     BodycamShift.checked_in_at.is_(None)))


def open_shifts(session: Session, device_ids: list[int]) -> dict[int, BodycamShift]:
    """The open shift of each of ``device_ids`` that has one, in one statement (a list of devices)."""
    if not device_ids:
        return {}
    return {s.device_id: s for s in session.scalars(select(BodycamShift).where(
        BodycamShift.device_id.in_(device_ids), BodycamShift.checked_in_at.is_(None)))}


def check_out(session: Session, actor: Actor, by: User, device: BodycamDevice, officer_id: int) -> BodycamShift:
    if not manages_device(session, by, device):
        raise DeviceDenied("only the unit's supervisors, custodians and admin check devices out", forbidden=True)
    if device.retired_at is not None:
        raise DeviceConflict("the device is retired")
    current = open_shift(session, device.id)
    if current is not None:
        raise DeviceConflict(f"the device is checked out (shift {current.id}); check it in first")
    officer = session.get(User, officer_id)
    if officer is None or not officer.is_active or Duty.OFFICER not in duties_of(session, officer).get(
            device.organisation_id, set()):
        raise DeviceError("officer_id: not an active officer of the device's unit")
    shift = BodycamShift(device_id=device.id, officer_id=officer.id, checked_out_by=by.id)
    session.add(shift)
    session.flush()
    audit.append(session, actor, Action.CHECKED_OUT, object_type="bodycam_shift", object_id=shift.id,
                 details={"device_id": device.id, "serial": device.serial, "officer": officer.username,
                          "officer_id": officer.id})
    return shift


def check_in(session: Session, actor: Actor, by: User, device: BodycamDevice,
             device_clock: datetime | None = None, now: datetime | None = None) -> BodycamShift:
    """End the device's shift. ``device_clock`` is what the device's clock said at ``now`` (server time)."""
    if not manages_device(session, by, device):
        raise DeviceDenied("only the unit's supervisors, custodians and admin check devices in", forbidden=True)
    shift = open_shift(session, device.id)
    if shift is None:
        raise DeviceConflict("the device is not checked out")
    now = now or utcnow()
    offset = None
    if device_clock is not None:
        if device_clock.tzinfo is None:
            raise DeviceError("device_clock: give a time zone (e.g. 2026-01-31T22:00:00+05:00)")
        offset = round((device_clock - now).total_seconds() * 1000)
        if abs(offset) > MAX_OFFSET_MS:
            raise DeviceError("device_clock: more than a year away from the server's clock; read it again")
    shift.checked_in_at = now
    shift.checked_in_by = by.id
    shift.clock_offset_ms = offset
    audit.append(session, actor, Action.CHECKED_IN, object_type="bodycam_shift", object_id=shift.id,
                 details={"device_id": device.id, "serial": device.serial, "officer_id": shift.officer_id,
                          "clock_offset_ms": offset})
    return shift


def shift_at(session: Session, device_id: int, when: datetime) -> BodycamShift | None:
    """The shift the device was in at ``when`` (server time), if any."""
    return session.scalar(select(BodycamShift).where(
        BodycamShift.device_id == device_id, BodycamShift.checked_out_at <= when,
        (BodycamShift.checked_in_at.is_(None)) | (BodycamShift.checked_in_at >= when))
        .order_by(BodycamShift.checked_out_at.desc()).limit(1))


def latest_shift(session: Session, device_id: int) -> BodycamShift | None:
    return session.scalar(select(BodycamShift).where(BodycamShift.device_id == device_id)
                          .order_by(BodycamShift.checked_out_at.desc()).limit(1))


def visible_devices(session: Session, user: User) -> list[BodycamDevice]:
    from kuzet.services.bodycams.units import visible_units

    query = select(BodycamDevice).order_by(BodycamDevice.serial)
    units = visible_units(session, user)
    if units is not None:
        query = query.where(BodycamDevice.organisation_id.in_(units or {-1}))
    return list(session.scalars(query))


def shifts_of(session: Session, device: BodycamDevice, limit: int = 50) -> list[BodycamShift]:
    return list(session.scalars(select(BodycamShift).where(BodycamShift.device_id == device.id)
                                .order_by(BodycamShift.checked_out_at.desc()).limit(limit)))
