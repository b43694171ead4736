"""Cameras behind NAT push their stream to Kuzet: RTMP to nginx's RTMP module, RTSP ANNOUNCE/RECORD to a GStreamer
RTSP server that relays it (remuxed, not re-encoded) into the same nginx. Every camera has its own URL and secret key:

    rtmp://HOST:1935/push/<camera id>?key=<secret>       rtsp://HOST:8555/push/<camera id>/<secret>

Before a stream is accepted the server asks Kuzet (nginx's ``on_publish``, the relay's ANNOUNCE hook) at
``POST /api/v1/ingest/publish``; a wrong or missing key is refused and audited (``camera.push_refused``). The
recorder then pulls the camera's stream from nginx on the loopback interface (``rtmp://127.0.0.1:1935/push/<id>``,
which only loopback clients may play) like any other camera: one upstream, ``-c copy``.

Only the key's SHA-256 is stored; the key is shown once, when it is issued, and issuing a new one replaces it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy.orm import Session

from kuzet.config import Settings
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.store.db import utcnow
from kuzet.store.models import Camera
from kuzet.store.models.onboarding import CameraPush

PROTOCOLS = ("rtmp", "rtsp")
APPLICATION = "push"
KEY_ISSUED = "camera.push_key_issued"
PUBLISHED = "camera.push_started"
REFUSED = "camera.push_refused"


class PushError(ValueError):
    pass


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def relay_url(settings: Settings, camera_id: int) -> str:
    """Where the recorder reads a pushing camera: nginx on the loopback interface."""
    return f"rtmp://127.0.0.1:{settings.push.rtmp_port}/{APPLICATION}/{camera_id}"


def push_url(settings: Settings, camera_id: int, protocol: str, key: str, public_host: str | None = None) -> str:
    host = public_host or settings.push.public_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if protocol == "rtmp":
        return f"rtmp://{host}:{settings.push.rtmp_port}/{APPLICATION}/{camera_id}?key={key}"
    # RTSP clients append each stream's control to the URL: the key goes in the path, not in a query.
    return f"rtsp://{host}:{settings.push.rtsp_port}/{APPLICATION}/{camera_id}/{key}"


def issue_key(session: Session, actor: Actor, settings: Settings, camera: Camera, protocol: str = "rtmp",
              public_host: str | None = None) -> dict:
    """Make ``camera`` a pushing camera with a new secret key (replacing any earlier one); its stream URL becomes the
    relay's. Returns the URL to give the camera, key included — the only time the key is shown."""
    if protocol not in PROTOCOLS:
        raise PushError(f"unknown push protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    if public_host is not None and (not public_host or len(public_host) > 253 or any(
            c in public_host for c in "/?#@ \t\r\n")):
        raise PushError("public_host must be a host name or address")
    key = secrets.token_urlsafe(24)
    row = session.get(CameraPush, camera.id)
    if row is None:
        row = CameraPush(camera_id=camera.id, protocol=protocol, key_hash=key_hash(key))
        session.add(row)
    row.protocol, row.key_hash, row.key_issued_at = protocol, key_hash(key), utcnow()
    camera.main_url, camera.main_credentials = relay_url(settings, camera.id), None
    camera.sub_url, camera.sub_credentials = None, None
    session.flush()
    audit.append(session, actor, KEY_ISSUED, object_type="camera", object_id=camera.id, camera_id=camera.id,
                 details={"protocol": protocol})
    return {"camera_id": camera.id, "protocol": protocol, "push_url": push_url(settings, camera.id, protocol, key,
                                                                                 public_host),
            "key_issued_at": row.key_issued_at}


def status(session: Session, settings: Settings, camera: Camera) -> dict:
    row = session.get(CameraPush, camera.id)
    if row is None:
        return {"camera_id": camera.id, "pushes": False, "protocol": None, "push_url": None, "key_issued_at": None,
                "last_publish_at": None, "last_refused_at": None}
    return {"camera_id": camera.id, "pushes": True, "protocol": row.protocol,
            "push_url": push_url(settings, camera.id, row.protocol, "KEY"), "key_issued_at": row.key_issued_at,
            "last_publish_at": row.last_publish_at, "last_refused_at": row.last_refused_at}


def check_publish(session: Session, name: str, key: str | None, *, protocol: str, address: str | None,
                  now: datetime | None = None, audit_success: bool = True) -> int | None:
    """The camera id if ``key`` is the right one for stream ``name`` over ``protocol``, else None (audited).
    ``audit_success`` False: the RTSP relay handing on a stream whose ANNOUNCE was already checked and audited."""
    now = now or utcnow()
    camera_id = int(name) if name.isdigit() and len(name) < 10 else None
    row = session.get(CameraPush, camera_id) if camera_id is not None else None
    reason = None
    if row is None:
        reason = "no such pushing camera"
    elif not key:
        reason = "no key"
    elif not hmac.compare_digest(row.key_hash, key_hash(key)):
        reason = "wrong key"
    elif row.protocol != protocol:
        reason = f"this camera pushes {row.protocol}, not {protocol}"
    camera = session.get(Camera, camera_id) if row is not None else None
    if reason is None and camera is not None and not camera.enabled:
        reason = "camera disabled"
    actor = Actor(None, "push-ingest", address)
    if reason is not None:
        if row is not None:
            row.last_refused_at = now
        audit.append(session, actor, REFUSED, object_type="camera", object_id=camera_id if row else None,
                     camera_id=camera_id if row else None,
                     details={"protocol": protocol, "stream": name[:64], "reason": reason})
        return None
    assert row is not None and camera_id is not None
    row.last_publish_at = now
    if not audit_success:
        return camera_id
    audit.append(session, actor, PUBLISHED, object_type="camera", object_id=camera_id, camera_id=camera_id,
                 details={"protocol": protocol})
    return camera_id
