"""The field technician's list: cameras offline now, with the address, the entrance and since when, to plan visits.

Read from the index, not from one recorder's memory, so it answers the same on every node: a camera is offline while
it has an open gap (``recording_gaps.end_at`` is None — unreachable, wrong password, stalled, …); an enabled camera
that never recorded anything and has no gap is listed as never connected, since it was added.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session

from kuzet.domain.places import PlaceKind
from kuzet.store.models import Camera, Place
from kuzet.store.models.recording import Gap, Recording

NEVER_CONNECTED = "never_connected"


def offline_cameras(session: Session, camera_ids: Collection[int] | Select | None,
                    now: datetime | None = None) -> list[dict]:
    """Enabled cameras (of ``camera_ids`` — ids, or a SELECT of them — or all) offline now, longest first.

    The database picks the offline ones (an open gap, or no recording at all: both by index), so the work follows
    the cameras that are down, not every camera of the city."""
    open_gap = exists().where(Gap.camera_id == Camera.id, Gap.end_at.is_(None))
    never_recorded = ~exists().where(Recording.camera_id == Camera.id)
    query = select(Camera).where(Camera.enabled.is_(True), or_(open_gap, never_recorded))
    if camera_ids is not None:
        query = query.where(Camera.id.in_(camera_ids if isinstance(camera_ids, Select) else list(camera_ids)))
    cameras = {c.id: c for c in session.scalars(query)}
    if not cameras:
        return []
    open_gaps: dict[int, Gap] = {}
    for gap in session.scalars(select(Gap).where(Gap.end_at.is_(None), Gap.camera_id.in_(list(cameras)))
                               .order_by(Gap.start_at)):
        open_gaps.setdefault(gap.camera_id, gap)
    last_seen = dict(session.execute(select(Recording.camera_id, func.max(Recording.end_at))
                                     .where(Recording.camera_id.in_([c for c in open_gaps]))
                                     .group_by(Recording.camera_id)).all()) if open_gaps else {}
    down = set(cameras)
    places = _places(session, {cameras[c].place_id for c in down})
    items = []
    for cid in down:
        camera, gap = cameras[cid], open_gaps.get(cid)
        chain = places.get(camera.place_id, [])
        building = next((p for p in reversed(chain) if p.kind == PlaceKind.BUILDING), None)
        entrance = next((p for p in reversed(chain) if p.kind in (PlaceKind.ENTRANCE, PlaceKind.YARD)), None)
        district = next((p for p in reversed(chain) if p.kind == PlaceKind.DISTRICT), None)
        since = gap.start_at if gap else camera.created_at
        items.append({
            "camera_id": cid, "name": camera.name, "kind": camera.kind, "place_id": camera.place_id,
            "address": (building.address or building.name) if building else (chain[-1].name if chain else None),
            "building": building.name if building else None,
            "entrance": entrance.name if entrance else None, "entrance_kind": entrance.kind if entrance else None,
            "district": district.name if district else None,
            "since": since, "reason": gap.reason if gap else NEVER_CONNECTED, "message": gap.message if gap else None,
            "last_recorded_at": last_seen.get(cid), "lat": camera.lat if camera.lat is not None else (
                building.lat if building else None),
            "lon": camera.lon if camera.lon is not None else (building.lon if building else None),
        })
    items.sort(key=lambda i: (i["since"], i["camera_id"]))
    return items


def _places(session: Session, place_ids: set[int]) -> dict[int, list[Place]]:
    """Each place's chain from the root down to it."""
    if not place_ids:
        return {}
    leaves = {p.id: p for p in session.scalars(select(Place).where(Place.id.in_(list(place_ids))))}
    ids = {int(x) for p in leaves.values() for x in p.path.strip("/").split("/") if x}
    by_id = {p.id: p for p in session.scalars(select(Place).where(Place.id.in_(list(ids))))}
    return {pid: [by_id[int(x)] for x in p.path.strip("/").split("/") if x and int(x) in by_id]
            for pid, p in leaves.items()}
