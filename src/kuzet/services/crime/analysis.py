"""Analyses over the database: offences with coordinates joined to cameras, streets and places."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from shapely.geometry import Point, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.services.crime import effect as fx
from kuzet.services.crime import hotspots as hs
from kuzet.services.crime import limits
from kuzet.services.crime import placement as mclp
from kuzet.services.crime.geo import Projection
from kuzet.store.models import Camera, Place
from kuzet.store.models.crime import Offence


def offence_points(session: Session, start: date, end: date, district: str | None = None,
                   offence_type: str | None = None, place_type: str | None = None) -> np.ndarray:
    """(n, 2) array of lat, lon of offences registered in [start, end] that have coordinates."""
    query = select(Offence.lat, Offence.lon).where(Offence.registered_on >= start, Offence.registered_on <= end,
                                                   Offence.lat.is_not(None))
    if district:
        query = query.where(Offence.district == district)
    if offence_type:
        query = query.where(Offence.offence_type == offence_type)
    if place_type:
        query = query.where(Offence.place_type == place_type)
    rows = session.execute(query).all()
    return np.array(rows, dtype=float).reshape(-1, 2)


def hotspot_map(session: Session, start: date, end: date, *, district: str | None = None,
                later: tuple[date, date] | None = None, bandwidth: float | None = None, cell: float | None = None,
                permutations: int = 999) -> dict:
    limits.period(start, end)
    if later is not None:
        limits.period(later[0], later[1], "the later period")
    limits.within("permutations", permutations, limits.PERMUTATIONS)
    limits.within("bandwidth", bandwidth, limits.BANDWIDTH_M)
    limits.within("cell", cell, limits.CELL_M)
    pts = offence_points(session, start, end, district)
    if len(pts) < 5:
        raise ValueError("too few offences with coordinates in the period for a hot-spot map (need at least 5)")
    proj = Projection.for_points(pts[:, 0], pts[:, 1])
    x, y = proj.to_metres(pts[:, 1], pts[:, 0])
    kde = hs.quartic_kde(x, y, bandwidth, cell)
    gi_grid = hs.Grid(kde["grid"].x0, kde["grid"].y0, kde["cell"] * 2, (kde["grid"].cols + 1) // 2,
                      (kde["grid"].rows + 1) // 2)
    counts = gi_grid.counts(x, y)
    gi = hs.gi_star(counts, permutations)
    hot = gi["level"] >= 2
    result = {"offences": len(pts), "bandwidth_m": round(kde["bandwidth"], 1), "kde_cell_m": round(kde["cell"], 1),
              "gi_cell_m": round(gi_grid.cell, 1), "permutations": permutations,
              "hot_cells_95": int(hot.sum()), "cold_cells_95": int((gi["level"] <= -2).sum()),
              "moran": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in gi["moran"].items()},
              "kde": hs.cells_geojson(kde["grid"], proj, {"density_per_km2": kde["density_per_km2"]},
                                      keep=kde["density_per_km2"] > kde["density_per_km2"].max() * 0.05),
              "gi_star": hs.cells_geojson(gi_grid, proj, {"z": gi["z"], "p_sim": gi["p_sim"], "level": gi["level"],
                                                          "count": counts}, keep=counts > 0)}
    if later is not None:
        later_pts = offence_points(session, later[0], later[1], district)
        lx, ly = proj.to_metres(later_pts[:, 1], later_pts[:, 0]) if len(later_pts) else (np.array([]), np.array([]))
        result["pai"] = hs.pai(hot, gi_grid.counts(lx, ly) if len(later_pts) else np.zeros_like(counts))
        result["later_period"] = {"start": later[0].isoformat(), "end": later[1].isoformat(),
                                  "offences": len(later_pts)}
    return result


def _count_in(points: np.ndarray, area) -> int:  # noqa: ANN001
    from shapely import contains_xy

    if len(points) == 0 or area.is_empty:
        return 0
    return int(contains_xy(area, points[:, 0], points[:, 1]).sum())


def intervention_effect(session: Session, when: date, sites: list[tuple[float, float]], *, radius: float = 150,
                        months: int = 12, district: str | None = None, offence_type: str | None = None) -> dict:
    """Treated area: ``radius`` around each site (lat, lon); displacement ring: radius..2·radius; control: the rest of
    the study area (the district, or everything) beyond 2·radius. Equal periods before and after ``when``."""
    if not sites:
        raise ValueError("no intervention sites")
    limits.within("radius", radius, limits.RADIUS_M)
    limits.within("months", months, limits.MONTHS)
    try:
        before = (when - timedelta(days=30 * months), when - timedelta(days=1))
        after = (when + timedelta(days=1), when + timedelta(days=30 * months))
    except OverflowError:
        raise limits.LimitError(f"{months} months around {when} fall outside the calendar") from None
    lats = [s[0] for s in sites]
    lons = [s[1] for s in sites]
    proj = Projection.for_points(lats, lons)
    sx, sy = proj.to_metres(lons, lats)
    treated = unary_union([Point(x, y).buffer(radius) for x, y in zip(sx, sy, strict=True)])
    ring = unary_union([Point(x, y).buffer(2 * radius) for x, y in zip(sx, sy, strict=True)]).difference(treated)
    counts = {}
    for label, (a, b) in (("before", before), ("after", after)):
        pts = offence_points(session, a, b, district, offence_type)
        px, py = proj.to_metres(pts[:, 1], pts[:, 0]) if len(pts) else (np.array([]), np.array([]))
        xy = np.column_stack([px, py]) if len(pts) else np.empty((0, 2))
        t, r = _count_in(xy, treated), _count_in(xy, ring)
        counts[label] = {"treated": t, "buffer": r, "control": len(xy) - t - r}
    T = fx.Counts(counts["before"]["treated"], counts["after"]["treated"])
    B = fx.Counts(counts["before"]["buffer"], counts["after"]["buffer"])
    C = fx.Counts(counts["before"]["control"], counts["after"]["control"])
    res = fx.relative_effect_size(T, C)
    wdd = fx.wdd(T, C, B, C)
    return {"date": when.isoformat(), "sites": len(sites), "radius_m": radius, "months": months,
            "before": {"start": before[0].isoformat(), "end": before[1].isoformat()},
            "after": {"start": after[0].isoformat(), "end": after[1].isoformat()},
            "counts": counts,
            "treated_change_pct": round((T.after - T.before) * 100 / T.before, 1) if T.before else None,
            "res": res, "wdq": fx.wdq(T, B, C), "wdd": wdd, "verdict_code": fx.verdict_code(res, wdd),
            "areas": {name: fx.poisson_change(c) for name, c in (("treated", T), ("buffer", B), ("control", C))},
            "design": ("control = the rest of the study area beyond the displacement ring; "
                       "one control for both WDD terms")}


def cameras_installed(session: Session, start: date, end: date) -> tuple[date | None, list[tuple[float, float]]]:
    cams = session.scalars(select(Camera).where(Camera.installed_on >= start, Camera.installed_on <= end,
                                                Camera.lat.is_not(None))).all()
    if not cams:
        return None, []
    when = max(c.installed_on for c in cams)
    return when, [(c.lat, c.lon) for c in cams]


def safe_yards_joined(session: Session, start: date, end: date) -> tuple[date | None, list[tuple[float, float]]]:
    """Safe yards that joined the programme in [start, end]: the intervention date and their locations."""
    from kuzet.store.models.safeyard import SafeYard

    yards = session.execute(select(SafeYard.joined_on, Place.lat, Place.lon).join(Place, Place.id == SafeYard.place_id)
                            .where(SafeYard.joined_on >= start, SafeYard.joined_on <= end,
                                   Place.lat.is_not(None))).all()
    if not yards:
        return None, []
    return max(y[0] for y in yards), [(y[1], y[2]) for y in yards]


def view_polygon(x: float, y: float, bearing: float | None, fov: float | None, radius: float) -> Polygon:
    if bearing is None or fov is None or fov >= 360:
        return Point(x, y).buffer(radius)
    steps = max(8, int(fov / 5))
    pts = [(x, y)]
    for i in range(steps + 1):
        a = np.radians(bearing - fov / 2 + fov * i / steps)
        pts.append((x + radius * np.sin(a), y + radius * np.cos(a)))
    return Polygon(pts)


def street_name(name: str, district: str | None) -> str:
    """A street's name as people say it: «ул. Абая», not the registry's unique «ул. Абая (Северный район)»."""
    return name.removesuffix(f" ({district})") if district else name


def database_streets(session: Session) -> list[tuple[str, str, BaseGeometry]]:
    """(district, name, line) of every street with a geometry in the places database."""
    places = {p.id: p for p in session.scalars(select(Place))}
    out = []
    for p in places.values():
        if p.kind == "street" and p.geometry:
            district = next((places[int(i)].name for i in p.path.strip("/").split("/")
                             if int(i) in places and places[int(i)].kind == "district"), "—")
            out.append((district, street_name(p.name, district), shape(p.geometry)))
    return out


def _metric(proj: Projection, geom: BaseGeometry) -> BaseGeometry:
    import shapely

    return shapely.transform(geom, lambda xy: np.column_stack(proj.to_metres(xy[:, 0], xy[:, 1])))


def _lonlat(proj: Projection, geom: BaseGeometry) -> dict:
    """A projected geometry back in lon/lat as GeoJSON (6 decimals: 0.1 m)."""
    import shapely

    back = shapely.transform(geom, lambda xy: np.round(np.column_stack(proj.to_lonlat(xy[:, 0], xy[:, 1])), 6))
    return mapping(back)


def street_coverage(session: Session, streets_geojson: dict | None = None, default_radius: float = 50) -> dict:
    """Share of street length within the view of cameras, per district and city-wide, and the share of street
    offences that fall in view. Streets come from a GeoJSON file or from the places database. The streets and their
    covered pieces come back as GeoJSON for a map layer."""
    streets: list[tuple[str, str, BaseGeometry]] = []
    if streets_geojson is not None:
        for f in streets_geojson.get("features", []):
            geom = shape(f["geometry"])
            props = f.get("properties") or {}
            if geom.geom_type in ("LineString", "MultiLineString"):
                streets.append((props.get("district") or "—", props.get("name") or "", geom))
    else:
        streets = database_streets(session)
    if not streets:
        raise ValueError("no streets: import a street network (GeoJSON) or add streets with geometry")
    line = streets[0][2]
    first = line.coords[0] if line.geom_type == "LineString" else line.geoms[0].coords[0]
    proj = Projection(first[1], first[0])
    cams = session.scalars(select(Camera).where(Camera.lat.is_not(None), Camera.enabled.is_(True))).all()
    views = []
    for c in cams:
        cx, cy = proj.to_metres([c.lon], [c.lat])
        views.append(view_polygon(float(cx[0]), float(cy[0]), c.bearing, c.field_of_view,
                                  c.view_radius_m or default_radius))
    seen = unary_union(views) if views else Polygon()
    per_district: dict[str, list[float]] = {}
    street_features, covered_features = [], []
    for district, name, geom in streets:
        g = _metric(proj, geom)
        piece = g.intersection(seen) if views else None
        entry = per_district.setdefault(district, [0.0, 0.0])
        entry[0] += g.length
        entry[1] += piece.length if piece is not None else 0.0
        props = {"name": name, "district": district, "length_m": round(g.length, 1),
                 "covered_m": round(piece.length, 1) if piece is not None else 0.0}
        street_features.append({"type": "Feature", "properties": props, "geometry": mapping(geom)})
        if piece is not None and piece.length > 0:
            covered_features.append({"type": "Feature", "properties": props, "geometry": _lonlat(proj, piece)})
    total = sum(v[0] for v in per_district.values())
    covered = sum(v[1] for v in per_district.values())
    pts = session.execute(select(Offence.lat, Offence.lon).where(Offence.place_type == "street",
                                                                 Offence.lat.is_not(None))).all()
    in_view = 0
    if pts and views:
        arr = np.array(pts, dtype=float)
        px, py = proj.to_metres(arr[:, 1], arr[:, 0])
        in_view = _count_in(np.column_stack([px, py]), seen)
    return {"street_km": round(total / 1000, 3), "covered_km": round(covered / 1000, 3),
            "covered_share_pct": round(100 * covered / total, 1) if total else 0.0,
            "districts": [{"district": d, "street_km": round(v[0] / 1000, 3), "covered_km": round(v[1] / 1000, 3),
                           "covered_share_pct": round(100 * v[1] / v[0], 1) if v[0] else 0.0}
                          for d, v in sorted(per_district.items())],
            "street_offences": len(pts), "street_offences_in_view": in_view,
            "street_offences_in_view_pct": round(100 * in_view / len(pts), 1) if pts else None,
            "cameras": len(cams),
            "streets": {"type": "FeatureCollection", "features": street_features},
            "covered": {"type": "FeatureCollection", "features": covered_features}}


def nearest_streets(session: Session, sites: list[tuple[float, float]],
                    within_m: float = 500) -> list[tuple[str | None, float | None]]:
    """For each (lat, lon): the name of the nearest named street of the street network (places database) within
    ``within_m`` metres and the distance to it, or (None, None)."""
    streets = [(name, line) for _, name, line in database_streets(session) if name]
    if not streets or not sites:
        return [(None, None)] * len(sites)
    proj = Projection.for_points([s[0] for s in sites], [s[1] for s in sites])
    lines = [(name, _metric(proj, line)) for name, line in streets]
    out: list[tuple[str | None, float | None]] = []
    for lat, lon in sites:
        x, y = proj.to_metres([lon], [lat])
        here = Point(float(x[0]), float(y[0]))
        name, dist = min(((n, line.distance(here)) for n, line in lines), key=lambda item: item[1])
        out.append((name, round(dist)) if dist <= within_m else (None, None))
    return out


def candidate_sites(session: Session) -> list[tuple[float, float]]:
    """Street intersections and ends from the places database (lat, lon)."""
    lines = [shape(p.geometry) for p in session.scalars(select(Place).where(Place.kind == "street"))
             if p.geometry]
    sites: set[tuple[float, float]] = set()
    for i, a in enumerate(lines):
        for coord in (a.coords[0], a.coords[-1]):
            sites.add((round(coord[1], 6), round(coord[0], 6)))
        for b in lines[i + 1:]:
            inter = a.intersection(b)
            for p in getattr(inter, "geoms", [inter]):
                if p.geom_type == "Point":
                    sites.add((round(p.y, 6), round(p.x, 6)))
    return sorted(sites)


def plan_cameras(session: Session, k: int, start: date, end: date, *, radius: float = 100,
                 candidates: list[tuple[float, float]] | None = None, method: str = "auto") -> dict:
    limits.period(start, end)
    limits.within("cameras", k, limits.CAMERAS)
    limits.within("radius", radius, limits.RADIUS_M)
    if method not in ("auto", "exact", "greedy"):
        raise limits.LimitError(f"method is auto, exact or greedy (got {method!r})")
    pts = offence_points(session, start, end)
    if len(pts) == 0:
        raise ValueError("no offences with coordinates in the period")
    candidates = candidates or candidate_sites(session)
    if not candidates:  # fall back to a lattice over the offences
        lat0, lat1, lon0, lon1 = pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max()
        candidates = [(a, b) for a in np.linspace(lat0, lat1, 15) for b in np.linspace(lon0, lon1, 15)]
    proj = Projection.for_points(pts[:, 0], pts[:, 1])
    dx, dy = proj.to_metres(pts[:, 1], pts[:, 0])
    cand = np.array(candidates, dtype=float)
    cx, cy = proj.to_metres(cand[:, 1], cand[:, 0])
    cams = session.execute(select(Camera.lat, Camera.lon).where(Camera.lat.is_not(None))).all()
    if cams:
        arr = np.array(cams, dtype=float)
        ex, ey = proj.to_metres(arr[:, 1], arr[:, 0])
        existing = np.column_stack([ex, ey])
    else:
        existing = np.empty((0, 2))
    result = mclp.plan(np.column_stack([cx, cy]), np.column_stack([dx, dy]), np.ones(len(pts)), k, radius,
                       existing, method)
    out = result.as_dict()
    chosen = [candidates[j] for j in result.chosen]
    out["sites"] = [{"rank": n + 1, "lat": lat, "lon": lon, "street": street, "street_distance_m": dist}
                    for n, ((lat, lon), (street, dist)) in enumerate(zip(chosen, nearest_streets(session, chosen),
                                                                        strict=True))]
    out["geojson"] = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
         "properties": {"rank": s["rank"], "street": s["street"], "street_distance_m": s["street_distance_m"]}}
        for s in out["sites"]]}
    out.update({"candidates": len(candidates), "offences": len(pts), "radius_m": radius, "existing_cameras": len(cams)})
    return out
