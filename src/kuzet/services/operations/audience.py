"""Who may receive a message of the operations centre outside the console (webhooks, MQTT).

The same right the REST API asks for the same thing: an event reaches organisations holding ``view_archive`` on its
camera (``GET /events``), an alarm the organisations it was routed to that still hold ``view_live`` on its camera
(``GET /alarms``), an incident its unit and the routes of its alarms (``GET /incidents``). Computed when the message is
handed to an integration, so a grant revoked after the alarm was raised stops its later updates too.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy.orm import Session

from kuzet.domain.access import Right
from kuzet.services import access
from kuzet.services.operations.messages import ALARMS, EVENTS
from kuzet.store.models import Camera


def listed(payload: dict[str, Any]) -> set[int]:
    """The organisation ids a message names in ``organisations`` (malformed entries ignored)."""
    out: set[int] = set()
    raw = payload.get("organisations") or []
    for value in raw if isinstance(raw, list) else []:
        with contextlib.suppress(TypeError, ValueError):
            out.add(int(value))
    return out


def camera_of(subject: str, payload: dict[str, Any]) -> int | None:
    """The camera a message is about: the subject's last token for events, the alarm's camera for alarms."""
    if subject.startswith(EVENTS + "."):
        token = subject.rsplit(".", 1)[1]
        return int(token) if token.isdigit() else None
    alarm = payload.get("alarm")
    if not isinstance(alarm, dict):
        return None
    camera = alarm.get("camera_id")
    if camera is None and isinstance(alarm.get("camera"), dict):
        camera = alarm["camera"].get("id")
    try:
        return int(camera) if camera is not None else None
    except (TypeError, ValueError):
        return None


RIGHT_FOR = {EVENTS: Right.VIEW_ARCHIVE, ALARMS: Right.VIEW_LIVE}


def audience(session: Session, subject: str, payload: dict[str, Any]) -> set[int]:
    """The organisations among the message's ``organisations`` that may receive it now."""
    orgs = listed(payload)
    right = RIGHT_FOR.get(subject.rsplit(".", 1)[0])
    if right is None or not orgs:
        return orgs
    camera_id = camera_of(subject, payload)
    camera = session.get(Camera, camera_id) if camera_id is not None else None
    if camera is None:
        return set()
    return orgs & {o.id for o in access.organisations_seeing(session, camera, right)}
