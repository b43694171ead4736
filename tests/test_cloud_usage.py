"""Usage per organisation: cameras, live sessions and hours, archive views and hours, from the audit log (both
backends); viewing sessions hand back their ends (services/watching/viewing.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

from kuzet.domain.audit import Action
from kuzet.domain.cloud import Period
from kuzet.installation import Installation
from kuzet.services import audit
from kuzet.services.audit import SYSTEM, Actor
from kuzet.services.cameras import create_camera
from kuzet.services.cloud.usage import usage
from kuzet.services.places import create_organisation, create_place
from kuzet.services.watching.viewing import Viewing, ViewingSessions, record_ended
from kuzet.store.db import utcnow


def test_usage_counts_live_and_archive_hours_of_each_owners_cameras(inst: Installation) -> None:
    now = utcnow()
    viewer = Actor(None, "duty1", "10.0.0.1")
    with inst.db.session() as session:
        place = create_place(session, SYSTEM, "district", "Район 1")
        telecom = create_organisation(session, SYSTEM, f"Telecom {uuid.uuid4().hex[:6]}", "telecom_operator")
        school = create_organisation(session, SYSTEM, f"School {uuid.uuid4().hex[:6]}", "school")
        cams = [create_camera(session, SYSTEM, inst.keys, name=f"c{i}", place_id=place.id,
                              main_url="rtsp://127.0.0.1:9/x", owner_org_id=org.id).id
                for i, org in enumerate((telecom, telecom, school))]
        for camera, minutes in ((cams[0], 90), (cams[1], 30), (cams[2], 6)):
            audit.append(session, viewer, Action.LIVE_VIEWED, object_type="camera", object_id=camera,
                         camera_id=camera)
            record_ended(session, _ended(viewer, camera, now - timedelta(minutes=minutes), now))
        audit.append(session, viewer, Action.ARCHIVE_VIEWED, object_type="camera", object_id=cams[0],
                     camera_id=cams[0], details={"start": (now - timedelta(hours=3)).isoformat(),
                                                 "end": (now - timedelta(hours=1)).isoformat()})
    tz = inst.settings.timezone
    with inst.db.session() as session:
        rows = {r["organisation_id"]: r for r in usage(session, Period.parse(now.astimezone(ZoneInfo(tz))
                                                                             .strftime("%Y-%m")), tz)}
    assert rows[telecom.id]["cameras"] == 2 and rows[school.id]["cameras"] == 1
    assert rows[telecom.id]["live_sessions"] == 2 and rows[telecom.id]["live_hours_viewed"] == 2.0
    assert rows[telecom.id]["archive_views"] == 1 and rows[telecom.id]["archive_hours_viewed"] == 2.0
    assert rows[school.id]["live_hours_viewed"] == 0.1 and rows[school.id]["archive_hours_viewed"] == 0.0


def _ended(actor: Actor, camera: int, start, end):  # noqa: ANN001, ANN202
    from kuzet.services.watching.viewing import EndedViewing

    return EndedViewing(Viewing(actor, camera, {"via": "websocket"}), start, end)


def test_viewing_sessions_end_after_the_idle_time_and_only_live_ones_are_handed_back() -> None:
    clock = [0.0]
    sessions = ViewingSessions(idle=60, clock=lambda: clock[0], limit=3)
    actor = Actor(1, "center")
    assert sessions.starts("token-a", 1, "live", "main", viewing=Viewing(actor, 1))
    assert sessions.starts("token-a", 2, "recording", 77)  # a recorded file: audited, no end written
    clock[0] = 30
    assert not sessions.starts("token-a", 1, "live", "main", viewing=Viewing(actor, 1))  # the same session
    assert sessions.ended() == []
    clock[0] = 95  # 65 s after the last request of each
    (done,) = sessions.ended()
    assert done.viewing.camera_id == 1 and done.ended_at >= done.started_at and len(sessions) == 0
    assert sessions.starts("token-a", 1, "live", "main", viewing=Viewing(actor, 1))  # a new session
    # over the limit the least recently seen are ended, not lost
    for token in ("b", "c", "d"):
        sessions.starts(token, 1, "live", "main", viewing=Viewing(actor, 1))
    assert len(sessions) == 3 and len(sessions.ended()) == 1
    assert len(sessions.ended(everything=True)) == 3 and len(sessions) == 0
