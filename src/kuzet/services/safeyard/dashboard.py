"""The programme dashboard: safe yards per district and year, cameras online, incidents and registered offences in
each yard's area before and after joining, and what to check soon (permits and supervision ending)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.services.safeyard.passport import yard_cameras
from kuzet.store.models import Place
from kuzet.store.models.safeyard import PersonRecord, SafeYard

AREA_METRES = 300
WINDOW_DAYS = 365


def _offences_around(session: Session, place: Place, joined: date) -> dict | None:
    try:
        from kuzet.services.crime.analysis import offence_points
        from kuzet.services.crime.geo import Projection
    except ImportError:  # the crime analytics is optional
        return None
    if place.lat is None:
        return None
    proj = Projection(place.lat, place.lon)
    cx, cy = proj.to_metres([place.lon], [place.lat])
    out = {}
    for label, (a, b) in (("before", (joined - timedelta(days=WINDOW_DAYS), joined - timedelta(days=1))),
                          ("after", (joined, min(date.today(), joined + timedelta(days=WINDOW_DAYS - 1))))):
        pts = offence_points(session, a, b)
        if len(pts) == 0:
            out[label] = 0
            continue
        x, y = proj.to_metres(pts[:, 1], pts[:, 0])
        out[label] = int((((x - cx[0]) ** 2 + (y - cy[0]) ** 2) <= AREA_METRES ** 2).sum())
    out["radius_m"] = AREA_METRES
    out["days"] = WINDOW_DAYS
    return out


def _incidents_around(session: Session, place: Place, joined: date, today: date) -> dict | None:
    """Operations-centre incidents within the yard's area in the year before and since joining."""
    from datetime import UTC, datetime

    from kuzet.services.crime.geo import Projection
    from kuzet.store.models.operations import Incident

    if place.lat is None:
        return None
    proj = Projection(place.lat, place.lon)
    cx, cy = proj.to_metres([place.lon], [place.lat])
    start = datetime.combine(joined - timedelta(days=WINDOW_DAYS), datetime.min.time(), UTC)
    rows = session.execute(select(Incident.created_at, Incident.lat, Incident.lon).where(
        Incident.created_at >= start, Incident.lat.is_not(None), Incident.lon.is_not(None))).all()
    out = {"before": 0, "after": 0, "radius_m": AREA_METRES}
    for created, lat, lon in rows:
        x, y = proj.to_metres([lon], [lat])
        if (x[0] - cx[0]) ** 2 + (y[0] - cy[0]) ** 2 > AREA_METRES ** 2:
            continue
        day = created.date()
        if day < joined:
            out["before"] += 1
        elif day <= min(today, joined + timedelta(days=WINDOW_DAYS - 1)):
            out["after"] += 1
    return out


def dashboard(session: Session, yards: list[SafeYard], recorder=None, today: date | None = None) -> dict:  # noqa: ANN001
    today = today or date.today()
    places = {p.id: p for p in session.scalars(select(Place))}
    per_district: dict[str, dict[int, int]] = {}
    rows = []
    for yard in yards:
        district = places.get(yard.district_id)
        name = district.name if district else "—"
        per_district.setdefault(name, {})
        per_district[name][yard.joined_on.year] = per_district[name].get(yard.joined_on.year, 0) + 1
        cams = yard_cameras(session, yard, None, recorder)
        rows.append({"id": yard.id, "yard": places[yard.place_id].name, "district": name,
                     "joined_on": yard.joined_on.isoformat(), "cameras": len(cams),
                     "cameras_online": sum(1 for c in cams if c["state"] == "recording"),
                     "offences": _offences_around(session, places[yard.place_id], yard.joined_on),
                     "incidents": _incidents_around(session, places[yard.place_id], yard.joined_on, today)})
    soon = today + timedelta(days=60)
    checks = session.execute(select(PersonRecord.safe_yard_id, PersonRecord.category, PersonRecord.check_on)
                             .where(PersonRecord.check_on.is_not(None), PersonRecord.check_on <= soon,
                                    PersonRecord.safe_yard_id.in_([y.id for y in yards]))
                             .order_by(PersonRecord.check_on)).all()
    return {"yards": len(yards), "per_district_year": per_district, "items": rows,
            "to_check": [{"safe_yard_id": y, "category": c, "date": d.isoformat(), "overdue": d < today}
                         for y, c, d in checks]}
