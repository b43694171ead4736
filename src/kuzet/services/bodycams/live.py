"""Live video from patrol cars: a dash camera pushes over RTMP or RTSP through the push ingest of the cloud service
(services/onboarding/push.py) with its own secret key. The device gets a camera of kind ``road`` in its unit's area,
recorded and watched like any camera; the unit holds ``view_live``, ``view_archive`` and ``export`` on it through a
grant that only this device's live setting ends (source ``dashcam:<device id>``).

The push carries no GPS, so while the car streams its dash camera (or the in-car modem) posts its position with the
**same key**: JSON fixes or NMEA ``RMC`` sentences, in batches (a modem that lost its connection sends what it kept).
The fixes are the live track of the device's current shift; the map's crews move with the newest. Fixes are checked
(on the globe, not from the future, not older than a day), a fix already stored for that device and time is skipped,
and a device may post at most ``bodycams.position_posts_per_minute`` times a minute. Positions are personal data
(where an officer is): they are never written to the log; a refused key is audited without them."""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from kuzet.config import Settings
from kuzet.domain.bodycams import DeviceKind
from kuzet.services.audit import Actor
from kuzet.services.bodycams.devices import DeviceError
from kuzet.services.keys import Keyring
from kuzet.store.models import Camera, Organisation, User
from kuzet.store.models.bodycams import BodycamDevice


def enable_live(session: Session, actor: Actor, settings: Settings, keys: Keyring, device: BodycamDevice,
                protocol: str = "rtmp", public_host: str | None = None) -> dict:
    """A new push key for the device (its camera made on first use); the answer's ``push_url`` carries the key,
    shown only now. An earlier key stops working."""
    from kuzet.services.cameras import create_camera
    from kuzet.services.grants import create_grant
    from kuzet.services.onboarding.push import PushError, issue_key

    if device.kind != DeviceKind.DASH:
        raise DeviceError("live video comes from dash cameras (patrol cars), not body-worn ones")
    if device.retired_at is not None:
        raise DeviceError("the device is retired")
    camera = session.get(Camera, device.camera_id) if device.camera_id else None
    if camera is None:
        unit = session.get(Organisation, device.organisation_id)
        if unit.place_id is None:
            raise DeviceError("the unit has no area (place) to put its patrol car's camera in")
        camera = create_camera(session, actor, keys, name=f"{device.serial} (патрульный автомобиль)", kind="road",
                               place_id=unit.place_id, main_url="rtsp://127.0.0.1/pending-push")
        device.camera_id = camera.id
        create_grant(session, actor, organisation_id=device.organisation_id, camera_id=camera.id,
                     rights=["view_live", "view_archive", "export"],
                     legal_basis=f"Видеорегистратор патрульного автомобиля {device.serial}",
                     source=f"dashcam:{device.id}")
    try:
        out = issue_key(session, actor, settings, camera, protocol, public_host)
    except PushError as exc:
        raise DeviceError(str(exc)) from None
    return {**out, "device_id": device.id}


def crews(session: Session, user: User) -> list[dict]:
    """Patrol cars on the map: every dash camera that streams live (it has a camera) whose device the user sees (the
    unit's keepers and admin) or whose live video the user may watch (the unit, and whom it shared the camera with),
    at its latest GPS fix: the newest it posted live, or of its offloaded or embedded tracks. Cars without a fix are
    left out."""
    from sqlalchemy import select

    from kuzet.domain.access import Right
    from kuzet.services.access import visible_cameras
    from kuzet.services.bodycams.devices import visible_devices
    from kuzet.store.models.bodycams import BodycamLiveFix, BodycamRecording, BodycamTrackPoint

    watched = set(session.scalars(visible_cameras(user, Right.VIEW_LIVE).with_only_columns(Camera.id)))
    seen = {d.id for d in visible_devices(session, user)}
    out = []
    for device in session.scalars(select(BodycamDevice).where(
            BodycamDevice.kind == DeviceKind.DASH, BodycamDevice.camera_id.is_not(None),
            BodycamDevice.retired_at.is_(None)).order_by(BodycamDevice.serial)):
        if device.id not in seen and device.camera_id not in watched:
            continue
        fix = session.execute(select(BodycamTrackPoint).join(
            BodycamRecording, BodycamRecording.id == BodycamTrackPoint.recording_id).where(
            BodycamRecording.device_id == device.id).order_by(BodycamTrackPoint.at.desc()).limit(1)).scalar()
        posted = session.execute(select(BodycamLiveFix).where(BodycamLiveFix.device_id == device.id)
                                 .order_by(BodycamLiveFix.at.desc()).limit(1)).scalar()
        source = "recording"
        if posted is not None and (fix is None or posted.at >= fix.at):
            fix, source = posted, "live"
        if fix is None:
            continue
        out.append({"device_id": device.id, "serial": device.serial, "camera_id": device.camera_id,
                    "live": device.camera_id in watched, "at": fix.at, "lat": fix.lat, "lon": fix.lon,
                    "speed_kmh": fix.speed_kmh, "source": source})
    return out


# --- the car's position while it streams --------------------------------------------------------------------------

POSITION_REFUSED = "bodycam.position_refused"
OLDEST = timedelta(days=1)  # a modem keeps what it could not send; older than this is not "live"
FUTURE = timedelta(minutes=2)  # clocks drift a little; more is a wrong clock


class PositionError(ValueError):
    """The batch cannot be stored (422, naming the fix or sentence)."""


class PostingRate:
    """At most ``limit`` posts a minute per key (a sliding window, in this server's memory)."""

    def __init__(self) -> None:
        self._seen: dict[object, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_for(self, key: object, limit: int, now: float | None = None, count: bool = True) -> float:
        """0 when the post may go ahead (and it is counted unless ``count`` is False), else the seconds until it
        may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._seen.setdefault(key, deque())
            while times and now - times[0] >= 60:
                times.popleft()
            if len(times) >= limit:
                return 60 - (now - times[0])
            if count:
                times.append(now)
            if len(self._seen) > 10_000:  # forget keys that have gone quiet
                for stale in [k for k, v in self._seen.items() if not v or now - v[-1] >= 60]:
                    del self._seen[stale]
            return 0.0


def device_by_key(session: Session, device_id: int, key: str | None, address: str | None,
                  audit_refusal: bool = True) -> BodycamDevice | None:
    """The dash camera ``device_id`` if ``key`` is its current push key; else None (audited when the device exists,
    with nothing the request carried). The caller answers both cases alike (404), so ids cannot be probed."""
    from kuzet.services import audit
    from kuzet.services.onboarding.push import key_hash
    from kuzet.store.models.onboarding import CameraPush

    device = session.get(BodycamDevice, device_id) if 0 < device_id < 2**31 else None
    push = session.get(CameraPush, device.camera_id) if device is not None and device.camera_id else None
    reason = None
    if push is None or device.kind != DeviceKind.DASH:
        reason = "not a streaming dash camera"
    elif not key:
        reason = "no key"
    elif not hmac.compare_digest(push.key_hash, key_hash(key)):
        reason = "wrong key"
    elif device.retired_at is not None:
        reason = "retired"
    if reason is None:
        return device
    if device is not None and audit_refusal:
        audit.append(session, Actor(None, "dashcam", address), POSITION_REFUSED, object_type="bodycam_device",
                     object_id=device.id, details={"reason": reason})
    return None


def fixes_of(fixes: list[dict], nmea: str | None, now: datetime,
             max_fixes: int) -> list[tuple[datetime, float, float, float | None]]:
    """The batch's fixes (JSON ones, then the NMEA text's RMC fixes with status A), checked."""
    from datetime import UTC

    from kuzet.services.bodycams.tracks import TrackError, parse_nmea

    points: list[tuple[datetime, float, float, float | None]] = []
    for number, fix in enumerate(fixes):
        at = fix["at"]
        if at.tzinfo is None:
            raise PositionError(f"fixes[{number}].at: give a time zone (GPS time is UTC: ...Z)")
        points.append((at.astimezone(UTC), fix["lat"], fix["lon"], fix.get("speed_kmh")))
    if nmea:
        try:
            points += parse_nmea(nmea)
        except TrackError as exc:
            raise PositionError(f"nmea: {exc}") from None
    if len(points) > max_fixes:
        raise PositionError(f"more than {max_fixes} fixes in one post; send them in smaller batches")
    for number, (at, lat, lon, speed) in enumerate(points, 1):
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise PositionError(f"fix {number} of the batch: latitude -90..90 and longitude -180..180")
        if at > now + FUTURE:
            raise PositionError(f"fix {number} of the batch: its time is in the future (check the device's GPS time)")
        if at < now - OLDEST:
            raise PositionError(f"fix {number} of the batch: older than a day; offload old tracks with the "
                                "recordings instead")
        if speed is not None and not (0 <= speed <= 400):
            raise PositionError(f"fix {number} of the batch: speed_kmh 0..400")
    return points


def record_fixes(session: Session, device: BodycamDevice,
                 points: list[tuple[datetime, float, float, float | None]]) -> dict:
    """Store the fixes as the live track of the device's current shift (fixes it already has are skipped)."""
    from sqlalchemy import select

    from kuzet.services.bodycams.devices import open_shift
    from kuzet.store.models.bodycams import BodycamLiveFix

    fresh: dict[datetime, tuple] = {}
    for point in points:
        fresh.setdefault(point[0], point)
    if fresh:
        known = set(session.scalars(select(BodycamLiveFix.at).where(
            BodycamLiveFix.device_id == device.id, BodycamLiveFix.at.between(min(fresh), max(fresh)))))
        for at in known:
            fresh.pop(at, None)
    shift = open_shift(session, device.id)
    for at, lat, lon, speed in sorted(fresh.values()):
        session.add(BodycamLiveFix(device_id=device.id, shift_id=shift.id if shift else None, at=at, lat=lat,
                                   lon=lon, speed_kmh=speed))
    session.flush()
    return {"device_id": device.id, "shift_id": shift.id if shift else None, "stored": len(fresh),
            "skipped": len(points) - len(fresh), "latest": max(fresh) if fresh else None}


def live_track(session: Session, shift_id: int) -> list:
    from sqlalchemy import select

    from kuzet.store.models.bodycams import BodycamLiveFix

    return list(session.scalars(select(BodycamLiveFix).where(BodycamLiveFix.shift_id == shift_id)
                                .order_by(BodycamLiveFix.at)))
