"""``kuzet bench map``: the map of a caller who sees every camera (the control centre), zoomed out over the synthetic
city of ``kuzet bench api`` at two sizes, in-process.

For each city and zoom: the clusters from every camera's position kept in memory (what the API does for such callers,
``services/watching/map.py: CameraPositions``) against the database counting and gridding the same box (what it did
before, and still does for callers who see part of the city) — the ceiling of this benchmark is the database path
in the same run. The memory grid is still one pass over the positions (numpy, O(cameras) with a tiny constant), so
the goal is stated against the database in the same run: on the large city the memory path costs at most a tenth of
the database's, with the same clusters; both growths are reported.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BOX = "65.45,44.80,65.65,44.95"  # the bench city's districts (kuzet.bench.api.endpoints uses the same box)
ZOOMS = (11, 13)


def _median_ms(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 3)


def _measure_city(scale: float, repeat: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from kuzet.bench.api import generate_city
    from kuzet.config import load_settings
    from kuzet.installation import Installation
    from kuzet.services.watching import map as city_map
    from kuzet.store.models import Camera, User

    work = Path(tempfile.mkdtemp(prefix="kuzet-bench-map-"))
    try:
        inst = Installation.open(settings=load_settings(environ={"KUZET_DATA_DIR": str(work / "data")}))
        inst.init()
        city = generate_city(inst, scale)
        box = city_map.BoundingBox.parse(BOX)
        out: dict[str, Any] = {"cameras": city.counts["cameras"]}
        with inst.db.session(readonly=True) as session:
            center = session.scalar(select(User).where(User.username == "center"))
            for zoom in ZOOMS:
                cell = city_map.cell_degrees(zoom)
                visible = city_map._in_box(select(Camera), box)

                def database(visible=visible, cell=cell) -> object:  # noqa: ANN001
                    session.scalar(select(func.count()).select_from(visible.with_only_columns(Camera.id).subquery()))
                    return city_map._sql_clusters(session, visible, cell)

                def memory(cell=cell) -> list:  # noqa: ANN001
                    positions = city_map.positions_of(session)
                    return city_map.grid_clusters(*positions.in_box(session, box), cell)

                cams, _ = city_map.cameras_on_map(session, center, box, zoom)  # what the API answers there
                clusters = memory()
                same = sorted((round(c.lon, 9), round(c.lat, 9), c.count) for c in clusters) == \
                    sorted((round(c.lon, 9), round(c.lat, 9), c.count) for c in database())  # type: ignore[union-attr]
                out[f"zoom{zoom}"] = {"clusters": len(clusters), "api_draws_cameras": len(cams),
                                      "same_as_database": same,
                                      "memory_ms": _median_ms(memory, repeat),
                                      "database_ms": _median_ms(database, repeat)}
        inst.close()
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_map_benchmark(small: float = 0.1, large: float = 1.0, repeat: int = 60,
                      progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    say = progress or (lambda _m: None)
    with open("/proc/loadavg") as fh:
        load_before = fh.read().split()[0]
    cities = {}
    for scale in (small, large):
        say(f"city at scale {scale}: generating and measuring")
        cities[str(scale)] = _measure_city(scale, repeat)
    with open("/proc/loadavg") as fh:
        load_after = fh.read().split()[0]
    a, b = cities[str(small)], cities[str(large)]
    growth = {f"zoom{z}": {"memory": round(b[f"zoom{z}"]["memory_ms"] / a[f"zoom{z}"]["memory_ms"], 2),
                           "database": round(b[f"zoom{z}"]["database_ms"] / a[f"zoom{z}"]["database_ms"], 2)}
              for z in ZOOMS}
    met = all(b[f"zoom{z}"]["memory_ms"] <= 0.1 * b[f"zoom{z}"]["database_ms"] for z in ZOOMS) and \
        all(c[f"zoom{z}"]["same_as_database"] for c in cities.values() for z in ZOOMS)
    return {"box": BOX, "cities": cities, "growth": growth, "goal": "on the large city the memory path costs ≤ 0.1 "
            "of the database's count and GROUP BY in the same run, with the same clusters", "met": met,
            "loadavg": {"before": load_before, "after": load_after}}
