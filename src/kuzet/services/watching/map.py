"""What the map shows of a caller's cameras: the cameras inside a bounding box, or clusters of them when there are
too many to draw one by one (a control centre zoomed out over a city of 10,000 cameras).

Clusters are counted by the database on a grid whose cells shrink as the zoom grows (about 64 screen pixels a cell),
so the answer's size is bounded by the screen, not by the city.

When to cluster follows the screen too (``drawn_at_most``): with a bounding box, about one camera per grid cell the
box covers at that zoom is drawn one by one (a 1366 × 768 screen is ~250 cells), never fewer than ``FEWEST_DRAWN``;
from ``STREET_ZOOM`` on (a few streets on the screen, where clusters would stand for a building or two) up to
``MOST_DRAWN``, which also bounds the answer at any zoom. Without a box (the whole city asked at once) the fixed
``CLUSTER_AT`` stays.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from kuzet.services import access
from kuzet.store.models import Camera, Place, User

CLUSTER_AT = 500  # no bounding box: more cameras than this come as clusters
CELLS_PER_TILE = 4  # a 256-pixel tile is cut into 4 × 4 cells
CAMERAS_PER_CELL = 1  # with a box: about this many cameras per grid cell of the box are drawn one by one
FEWEST_DRAWN = 100  # … but never fewer than this (a phone's screen, a narrow box)
MOST_DRAWN = 1_000  # … and never more (the answer's size: ~2 KB of GeoJSON per camera with its view sector)
STREET_ZOOM = 17  # from here on cameras come one by one up to MOST_DRAWN


@dataclass(frozen=True)
class BoundingBox:
    west: float
    south: float
    east: float
    north: float

    @classmethod
    def parse(cls, text: str) -> BoundingBox:
        """``west,south,east,north`` in degrees; ValueError naming what is wrong."""
        parts = text.split(",")
        if len(parts) != 4:
            raise ValueError("bbox must be west,south,east,north (four numbers in degrees)")
        try:
            west, south, east, north = (float(p) for p in parts)
        except ValueError:
            raise ValueError("bbox must be west,south,east,north (four numbers in degrees)") from None
        if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90):
            raise ValueError("bbox is outside -180..180 longitude or -90..90 latitude")
        if west > east or south > north:
            raise ValueError("bbox must have west ≤ east and south ≤ north")
        return cls(west, south, east, north)


@dataclass(frozen=True)
class Cluster:
    lon: float
    lat: float
    count: int


def cell_degrees(zoom: int) -> float:
    return 360.0 / (2 ** zoom) / CELLS_PER_TILE


def drawn_at_most(box: BoundingBox | None, zoom: int) -> int:
    """How many cameras in ``box`` at ``zoom`` are still drawn one by one; more come as clusters."""
    if box is None:
        return CLUSTER_AT
    if zoom >= STREET_ZOOM:
        return MOST_DRAWN
    cell = cell_degrees(zoom)
    cells = max(1.0, (box.east - box.west) / cell) * max(1.0, (box.north - box.south) / cell)
    return int(min(MOST_DRAWN, max(FEWEST_DRAWN, CAMERAS_PER_CELL * cells)))


def _in_box(query: Select, box: BoundingBox | None) -> Select:
    query = query.where(Camera.lat.is_not(None), Camera.lon.is_not(None))
    if box is None:
        return query
    return query.where(Camera.lon >= box.west, Camera.lon <= box.east,
                       Camera.lat >= box.south, Camera.lat <= box.north)


def cameras_on_map(session: Session, user: User, box: BoundingBox | None,
                   zoom: int) -> tuple[list[tuple[Camera, str | None]], list[Cluster]]:
    """(cameras with their place names, []) when at most ``drawn_at_most(box, zoom)`` fall in the box; else
    ([], clusters). Three statements at most; the count stops at the threshold (it reads no further rows)."""
    visible = _in_box(access.visible_cameras(user, session=session), box)
    threshold = drawn_at_most(box, zoom)
    count = session.scalar(select(func.count()).select_from(
        visible.with_only_columns(Camera.id).limit(threshold + 1).subquery())) or 0
    if count <= threshold:
        rows = session.execute(visible.add_columns(Place.name).outerjoin(Place, Place.id == Camera.place_id)
                               .order_by(Camera.id)).all()
        return [(row[0], row[1]) for row in rows], []
    cell = cell_degrees(zoom)
    gx, gy = func.floor(Camera.lon / cell), func.floor(Camera.lat / cell)
    grid = (visible.with_only_columns(func.avg(Camera.lon), func.avg(Camera.lat), func.count(Camera.id))
            .group_by(gx, gy))
    return [], [Cluster(lon=float(lon), lat=float(lat), count=int(n)) for lon, lat, n in session.execute(grid)]
