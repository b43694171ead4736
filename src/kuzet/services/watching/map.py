"""What the map shows of a caller's cameras: the cameras inside a bounding box, or clusters of them when there are
too many to draw one by one (a control centre zoomed out over a city of 10,000 cameras).

Clusters are counted by the database on a grid whose cells shrink as the zoom grows (about 64 screen pixels a cell),
so the answer's size is bounded by the screen, not by the city.

When to cluster follows the screen too (``drawn_at_most``): with a bounding box, about one camera per grid cell the
box covers at that zoom is drawn one by one (a 1366 × 768 screen is ~250 cells), never fewer than ``FEWEST_DRAWN``;
from ``STREET_ZOOM`` on (a few streets on the screen, where clusters would stand for a building or two) up to
``MOST_DRAWN``, which also bounds the answer at any zoom. Without a box (the whole city asked at once) the fixed
``CLUSTER_AT`` stays.

**Callers who see every camera** (the control centre, platform admins) zoomed out over the whole city: counting and
gridding every camera in the box in SQL costs O(cameras) per request (measured: 239 → 70 req/s from 1,000 to 10,000
cameras). Their answer does not depend on who asks, so every camera's position is kept in memory once per process
(``CameraPositions``: two float arrays, 160 KB at 10,000 cameras) and the grid is counted with numpy (~0.3 ms at
10,000). The arrays are read again after ``POSITIONS_MAX_AGE`` seconds, and at once after this process commits a
change to a camera; a camera added, moved or removed by another process shows in these counts within that age. Only
counts and centroids come from memory: cameras drawn one by one (few enough in the box) always come from the
database with the caller's access condition.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
from sqlalchemy import Select, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from kuzet.services import access
from kuzet.store.models import Camera, Place, User

CLUSTER_AT = 500  # no bounding box: more cameras than this come as clusters
CELLS_PER_TILE = 4  # a 256-pixel tile is cut into 4 × 4 cells
CAMERAS_PER_CELL = 1  # with a box: about this many cameras per grid cell of the box are drawn one by one
FEWEST_DRAWN = 100  # … but never fewer than this (a phone's screen, a narrow box)
MOST_DRAWN = 1_000  # … and never more (the answer's size: ~2 KB of GeoJSON per camera with its view sector)
STREET_ZOOM = 17  # from here on cameras come one by one up to MOST_DRAWN
POSITIONS_MAX_AGE = 5.0  # seconds: how stale the in-memory positions of every camera may get (see the module's doc)


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
    ([], clusters). Three statements at most; the count stops at the threshold (it reads no further rows). For a
    caller who sees every camera the count and the grid come from memory (``CameraPositions``)."""
    threshold = drawn_at_most(box, zoom)
    cell = cell_degrees(zoom)
    if access.sees_every_camera(session, user):
        lon, lat = positions_of(session).in_box(session, box)
        if len(lon) > threshold:
            return [], grid_clusters(lon, lat, cell)
        visible = _in_box(select(Camera), box)
    else:
        visible = _in_box(access.visible_cameras(user, session=session), box)
        count = session.scalar(select(func.count()).select_from(
            visible.with_only_columns(Camera.id).limit(threshold + 1).subquery())) or 0
        if count > threshold:
            return [], _sql_clusters(session, visible, cell)
    rows = session.execute(visible.add_columns(Place.name).outerjoin(Place, Place.id == Camera.place_id)
                           .order_by(Camera.id).limit(threshold + 1)).all()
    if len(rows) > threshold:  # the positions in memory were older than a camera added since: count them here
        return [], _sql_clusters(session, visible, cell)
    return [(row[0], row[1]) for row in rows], []


def _sql_clusters(session: Session, visible: Select, cell: float) -> list[Cluster]:
    gx, gy = func.floor(Camera.lon / cell), func.floor(Camera.lat / cell)
    grid = visible.with_only_columns(func.avg(Camera.lon), func.avg(Camera.lat), func.count(Camera.id)).group_by(gx, gy)
    return [Cluster(lon=float(lon), lat=float(lat), count=int(n)) for lon, lat, n in session.execute(grid)]


def grid_clusters(lon: np.ndarray, lat: np.ndarray, cell: float) -> list[Cluster]:
    """Clusters of the points on a grid of ``cell`` degrees: each occupied cell's count and mean position (what the
    SQL ``GROUP BY floor(lon / cell), floor(lat / cell)`` gives)."""
    if len(lon) == 0:
        return []
    gx = np.floor(lon / cell).astype(np.int64)
    gy = np.floor(lat / cell).astype(np.int64)
    gx -= gx.min()
    gy -= gy.min()
    keys = gx * (int(gy.max()) + 1) + gy
    cells, which = np.unique(keys, return_inverse=True)
    counts = np.bincount(which, minlength=len(cells))
    sum_lon = np.bincount(which, weights=lon, minlength=len(cells))
    sum_lat = np.bincount(which, weights=lat, minlength=len(cells))
    return [Cluster(lon=float(x / n), lat=float(y / n), count=int(n))
            for x, y, n in zip(sum_lon, sum_lat, counts, strict=True)]


class CameraPositions:
    """Every camera's position (those that have one), read from the database at most every ``POSITIONS_MAX_AGE``
    seconds and after this process commits a change to a camera. Thread-safe; a reader gets consistent arrays."""

    def __init__(self, max_age: float = POSITIONS_MAX_AGE) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._loaded_at = -float("inf")
        self._generation = 0
        self._lon = np.empty(0)
        self._lat = np.empty(0)
        self.loads = 0

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._loaded_at = -float("inf")

    def arrays(self, session: Session) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if time.monotonic() - self._loaded_at <= self.max_age:
                return self._lon, self._lat
            generation = self._generation
        rows = session.execute(select(Camera.lon, Camera.lat)
                               .where(Camera.lat.is_not(None), Camera.lon.is_not(None))).all()
        lon = np.fromiter((r[0] for r in rows), dtype=np.float64, count=len(rows))
        lat = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
        with self._lock:
            if generation == self._generation:  # nothing committed meanwhile: keep them
                self._lon, self._lat, self._loaded_at = lon, lat, time.monotonic()
                self.loads += 1
        return lon, lat

    def in_box(self, session: Session, box: BoundingBox | None) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = self.arrays(session)
        if box is None:
            return lon, lat
        inside = (lon >= box.west) & (lon <= box.east) & (lat >= box.south) & (lat <= box.north)
        return lon[inside], lat[inside]


_positions: WeakKeyDictionary[Engine, CameraPositions] = WeakKeyDictionary()
_positions_lock = threading.Lock()
_CHANGED = "kuzet.cameras.changed"


def positions_of(session: Session) -> CameraPositions:
    """The positions of the database behind ``session`` (one per engine and process)."""
    engine = session.get_bind().engine
    with _positions_lock:
        positions = _positions.get(engine)
        if positions is None:
            positions = _positions[engine] = CameraPositions()
        return positions


@event.listens_for(Session, "after_flush")
def _camera_flushed(session: Session, _ctx: Any) -> None:
    if any(isinstance(o, Camera) for o in (*session.new, *session.dirty, *session.deleted)):
        session.info[_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _camera_statement(state: Any) -> None:
    if (state.is_insert or state.is_update or state.is_delete) and state.bind_mapper is not None \
            and state.bind_mapper.class_ is Camera:
        state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _camera_committed(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        with _positions_lock:
            positions = [p for engine, p in _positions.items()
                         if session.bind is None or engine is session.get_bind().engine]
        for p in positions:
            p.invalidate()
