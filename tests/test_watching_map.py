"""The map's threshold between cameras one by one and clusters follows the zoom and the bounding box (issue 16):
a zoomed-out or tiny box gets counts, a screen-sized box or a street-level zoom gets the cameras themselves."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.audit import SYSTEM
from kuzet.services.places import create_place
from kuzet.services.watching import map as city_map
from kuzet.services.watching.map import BoundingBox, drawn_at_most
from kuzet.store.db import utcnow
from kuzet.store.models import Camera
from tests.conftest import login

PASSWORD = "a-long-enough-password"
COLUMNS, ROWS = 20, 15  # 300 cameras 0.0005° apart (about 40 m), from 44.83 N 65.48 E
CAMERAS = COLUMNS * ROWS
SCREEN_AT_16 = "65.4700,44.8200,65.5000,44.8400"  # about a 1366 × 768 screen at zoom 16 over the grid
TINY_AT_16 = "65.4795,44.8295,65.4905,44.8375"  # the whole grid in a box a sixth of that screen


@pytest.fixture
def grid(inst: Installation, client: TestClient) -> dict[str, str]:
    now = utcnow()
    with inst.db.session() as session:
        accounts.create_user(session, SYSTEM, "chief", PASSWORD, "platform_admin")
        district = create_place(session, SYSTEM, "district", "Grid", lat=44.83, lon=65.48)
        session.execute(insert(Camera), [
            {"name": f"Grid {i}", "kind": "street", "place_id": district.id, "main_url": "rtsp://127.0.0.1:9/x",
             "lat": 44.83 + (i // COLUMNS) * 0.0005, "lon": 65.48 + (i % COLUMNS) * 0.0005, "retention_days": 30,
             "enabled": False, "created_at": now, "updated_at": now} for i in range(CAMERAS)])
    return login(client, "chief", PASSWORD)


def _layers(client: TestClient, headers: dict[str, str], **params: object) -> tuple[int, list[int]]:
    response = client.get("/api/v1/map", params=params, headers=headers)
    assert response.status_code == 200, response.text
    features = response.json()["features"]
    cameras = sum(1 for f in features if f["properties"]["layer"] == "camera")
    return cameras, [f["properties"]["count"] for f in features if f["properties"]["layer"] == "cluster"]


def test_the_threshold_follows_zoom_and_box() -> None:
    screen = BoundingBox.parse(SCREEN_AT_16)
    assert drawn_at_most(None, 12) == city_map.CLUSTER_AT
    assert city_map.FEWEST_DRAWN < drawn_at_most(screen, 16) < city_map.MOST_DRAWN
    assert drawn_at_most(BoundingBox.parse(TINY_AT_16), 16) == city_map.FEWEST_DRAWN
    assert drawn_at_most(screen, 15) < drawn_at_most(screen, 16)  # the same box zoomed out: fewer one by one
    assert drawn_at_most(screen, city_map.STREET_ZOOM) == city_map.MOST_DRAWN
    # issue 16's district unit at zoom 13 (500 cameras in a 0.2° × 0.15° box) now gets clusters
    assert drawn_at_most(BoundingBox.parse("65.45,44.80,65.65,44.95"), 13) < 500


def test_zoomed_out_counts_zoomed_in_cameras(inst: Installation, client: TestClient, grid: dict[str, str]) -> None:
    # no box: the whole city, at most CLUSTER_AT one by one
    assert _layers(client, grid) == (CAMERAS, [])
    # the city in one corner of a zoomed-out screen: counts that add up to every camera
    cameras, counts = _layers(client, grid, bbox="65.0,44.5,66.0,45.0", zoom=10)
    assert cameras == 0 and sum(counts) == CAMERAS and len(counts) < CAMERAS
    # the same zoom: a screen-sized box has room for every camera, a tiny one does not
    assert _layers(client, grid, bbox=SCREEN_AT_16, zoom=16) == (CAMERAS, [])
    cameras, counts = _layers(client, grid, bbox=TINY_AT_16, zoom=16)
    assert cameras == 0 and sum(counts) == CAMERAS
    # street level: the cameras of the tiny box one by one, whatever their number
    assert _layers(client, grid, bbox=TINY_AT_16, zoom=city_map.STREET_ZOOM) == (CAMERAS, [])
    # part of the grid: only what is in the box
    cameras, counts = _layers(client, grid, bbox="65.4799,44.8299,65.4821,44.8311", zoom=18)
    assert (cameras, counts) == (5 * 3, [])


def test_the_answer_stays_bounded_at_street_level(inst: Installation, client: TestClient, grid: dict[str, str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(city_map, "MOST_DRAWN", CAMERAS - 1)
    cameras, counts = _layers(client, grid, bbox=TINY_AT_16, zoom=19)
    assert cameras == 0 and sum(counts) == CAMERAS


def test_every_camera_callers_count_from_memory_as_the_database_would(inst: Installation, client: TestClient,
                                                                     grid: dict[str, str]) -> None:
    """The control centre's clusters come from the positions kept in memory: the same cells, counts and centroids
    as the database's GROUP BY, and a camera added through this process counts at once."""
    import numpy as np

    from kuzet.services.watching.map import _sql_clusters, cell_degrees, grid_clusters, positions_of

    box = BoundingBox.parse("65.0,44.5,66.0,45.0")
    with inst.db.session() as session:
        lon, lat = positions_of(session).in_box(session, box)
        assert len(lon) == CAMERAS
        for zoom in (10, 14, 16):
            memory = sorted((round(c.lon, 9), round(c.lat, 9), c.count) for c in grid_clusters(lon, lat,
                                                                                             cell_degrees(zoom)))
            sql = sorted((round(c.lon, 9), round(c.lat, 9), c.count) for c in _sql_clusters(
                session, city_map._in_box(city_map.select(Camera), box), cell_degrees(zoom)))
            assert memory == sql
    assert grid_clusters(np.empty(0), np.empty(0), 0.01) == []
    cameras, counts = _layers(client, grid, bbox="65.0,44.5,66.0,45.0", zoom=10)
    assert cameras == 0 and sum(counts) == CAMERAS
    with inst.db.session() as session:
        place_id = session.scalar(city_map.select(Camera.place_id).limit(1))
        session.add(Camera(name="Added", kind="street", place_id=place_id, main_url="rtsp://127.0.0.1:9/y",
                           lat=44.9, lon=65.9, retention_days=30, enabled=False))
    cameras, counts = _layers(client, grid, bbox="65.0,44.5,66.0,45.0", zoom=10)
    assert cameras == 0 and sum(counts) == CAMERAS + 1


def test_bench_map_compares_memory_and_database_on_two_cities() -> None:
    """``kuzet bench map`` at a tiny size: both cities measured, the memory grid equal to the database's."""
    from kuzet.bench.map import ZOOMS, run_map_benchmark

    result = run_map_benchmark(0.005, 0.01, repeat=2)
    assert set(result["cities"]) == {"0.005", "0.01"}
    for city in result["cities"].values():
        for zoom in ZOOMS:
            figures = city[f"zoom{zoom}"]
            assert figures["same_as_database"] and figures["clusters"] > 0
            assert figures["memory_ms"] > 0 and figures["database_ms"] > 0
    assert set(result["growth"]) == {f"zoom{z}" for z in ZOOMS}
