"""Crime analytics against hand-computed and independently computed values, on both database backends."""

from __future__ import annotations

import csv
import math
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kuzet.installation import Installation
from kuzet.services.crime import effect as fx
from kuzet.services.crime import hotspots as hs
from kuzet.services.crime import placement as mclp
from kuzet.services.crime.dynamics import report
from kuzet.services.crime.importing import ImportRejected, import_offences, import_population
from kuzet.services.crime.press import press_release
from kuzet.store.models.crime import Offence
from kuzet.web import i18n
from tests.conftest import login

HEADER = ["id", "registered_at", "committed_at", "article", "gravity", "offence_type", "place_type", "district",
          "lat", "lon", "status"]


def _write(path: Path, rows: list[list], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _rows(n: int, year: int, district: str = "Северный", kind: str = "theft", gravity: str = "minor",
          prefix: str = "A") -> list[list]:
    return [[f"{prefix}{year}-{i}", f"{year}-03-{1 + i % 28:02d}", "", "188", gravity, kind, "street", district,
             f"{44.85 + (i % 50) * 1e-4:.5f}", f"{65.48 + (i % 37) * 1e-4:.5f}", "registered"] for i in range(n)]


def _count(inst: Installation) -> int:
    with inst.db.session() as s:
        return s.scalar(select(func.count()).select_from(Offence)) or 0


def test_one_bad_row_among_thousands_imports_nothing(inst: Installation, tmp_path: Path) -> None:
    rows = _rows(3000, 2025)
    rows[1776][4] = "very grave"
    with pytest.raises(ImportRejected) as info, inst.db.session() as s:
        import_offences(s, _write(tmp_path / "o.csv", rows))
    assert [(e.line, "gravity" in e.message) for e in info.value.errors] == [(1778, True)]
    assert _count(inst) == 0


def test_reimport_updates_and_russian_headers_are_aliases(inst: Installation, tmp_path: Path) -> None:
    with inst.db.session() as s:
        result = import_offences(s, _write(tmp_path / "a.csv", _rows(10, 2025)))
    assert (result.created, result.updated) == (10, 0)
    ru_header = ["Номер", "Дата регистрации", "Дата совершения", "Статья", "Тяжесть", "Вид преступления",
                 "Место совершения", "Район", "Широта", "Долгота", "Статус"]
    rows = [["A2025-3", "03.03.2025", "02.03.2025 22:10", "190", "средней тяжести", "мошенничество", "улица",
             "Северный", "44,85", "65,48", "направлено в суд"]]
    with inst.db.session() as s:
        result = import_offences(s, _write(tmp_path / "b.csv", rows, ru_header))
    assert (result.created, result.updated) == (0, 1)
    assert _count(inst) == 10
    with inst.db.session() as s:
        o = s.get(Offence, "A2025-3")
    assert (o.gravity, o.offence_type, o.place_type, o.lat) == ("medium", "fraud", "street", 44.85)


def test_xlsx_import(inst: Installation, tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(HEADER)
    for row in _rows(5, 2024):
        wb.active.append(row)
    wb.save(tmp_path / "o.xlsx")
    with inst.db.session() as s:
        assert import_offences(s, tmp_path / "o.xlsx").created == 5


def test_report_reproduces_a_press_release_to_the_decimal(inst: Installation, tmp_path: Path) -> None:
    """1 000 crimes last year, 975 this year: «снизилось на 2,5 %»; 975 per 305 000 residents: «32 на 10 тысяч»."""
    rows = _rows(1000, 2024, gravity="minor") + _rows(975, 2025, gravity="minor")
    rows += _rows(40, 2024, kind="robbery", gravity="grave", prefix="G") + _rows(30, 2025, kind="robbery",
                                                                                 gravity="grave", prefix="G")
    # move the grave ones so totals stay 1000 / 975
    rows = rows[40:1000] + rows[1000:1975][30:] + rows[1975:]
    with inst.db.session() as s:
        import_offences(s, _write(tmp_path / "o.csv", rows))
        import_population(s, _write(tmp_path / "p.csv", [["Северный", 2025, 305000]], ["район", "год", "население"]))
        rep = report(s, date(2025, 1, 1), date(2025, 12, 31), compare_rate=57)
    assert rep["total"] == {"current": 975, "previous": 1000, "change": -25, "change_pct": -2.5}
    assert rep["grave_and_especially_grave"]["change_pct"] == -25.0
    assert rep["rate_per_10k"] == 32.0
    ru, kk, en = (press_release(rep, lang, i18n) for lang in ("ru", "kk", "en"))
    assert "снизилось на 2,5 %" in ru and "32 на 10 тысяч населения" in ru and "по республике — 57" in ru
    assert "2,5 %-ға азайды" in kk and "10 мың тұрғынға шаққанда 32" in kk
    assert "fell by 2.5%" in en and "32 per 10,000 residents" in en


def test_wdq_wdd_res_against_hand_computed_values() -> None:
    t, b, c = fx.Counts(100, 70), fx.Counts(80, 72), fx.Counts(500, 495)
    res = fx.relative_effect_size(t, c)
    assert res["res"] == pytest.approx(49500 / 35000, abs=1e-4)
    se = math.sqrt(1 / 100 + 1 / 70 + 1 / 500 + 1 / 495)
    assert res["ci"][0] == pytest.approx(math.exp(math.log(49500 / 35000) - 1.96 * se), abs=1e-4)
    q = fx.wdq(t, b, c)
    sm, dm = 70 / 495 - 100 / 500, 72 / 495 - 80 / 500
    assert q["wdq"] == pytest.approx(dm / sm, abs=1e-4) and q["wdq"] > 0
    assert "diffusion" in q["meaning"]
    d = fx.wdd(t, c, b, c)
    assert d["wdd"] == -28 and d["variance"] == 2312
    assert d["z"] == pytest.approx(-28 / math.sqrt(2312), abs=1e-4) and not d["significant"]
    result = {"res": res, "wdd": d}
    assert fx.verdict_code(res, d) == "not_significant"
    assert "not statistically significant" in fx.verdict(result, "en", i18n)
    assert "cannot rule out" in fx.verdict(result, "en", i18n)
    assert "статистически не значимо" in fx.verdict(result, "ru", i18n)
    assert "маңызды емес" in fx.verdict(result, "kk", i18n)
    assert fx.wdq(fx.Counts(10, 12), b, c)["wdq"] is None  # no success: not interpreted


def test_gi_star_matches_the_closed_form() -> None:
    rng = np.random.default_rng(3)
    counts = rng.poisson(2, size=(8, 9)).astype(float)
    counts[3:5, 4:6] += 12  # a hot spot
    result = hs.gi_star(counts, permutations=99)
    x = counts.ravel()
    n = x.size
    rows, cols = counts.shape
    z_expected = np.zeros(n)
    mean, s = x.mean(), math.sqrt((x ** 2).mean() - x.mean() ** 2)
    for i in range(n):
        r, c = divmod(i, cols)
        neighbours = [(rr, cc) for rr in range(r - 1, r + 2) for cc in range(c - 1, c + 2)
                      if 0 <= rr < rows and 0 <= cc < cols]
        w = len(neighbours)
        total = sum(counts[rr, cc] for rr, cc in neighbours)
        z_expected[i] = (total - mean * w) / (s * math.sqrt((n * w - w * w) / (n - 1)))
    assert np.allclose(result["z"].ravel(), z_expected, atol=1e-6)
    assert result["level"][3:5, 4:6].min() >= 2  # the planted spot is hot at 95 %


def test_gi_star_and_morans_i_reproduce_published_values() -> None:
    """Published figures: esda's documented Gi* example; Moran's I of Columbus crime with queen contiguity (0.500,
    Anselin's GeoDa workbook) and of St. Louis homicide rates 1988-93 with rook contiguity (0.2437, Rey & Anselin
    2007), both data sets shipped inside the libpysal wheel."""
    import libpysal
    from libpysal.examples import get_path

    points = [(10, 10), (20, 10), (40, 10), (15, 20), (30, 20), (30, 30)]
    z, _p = hs.local_gi_star(np.array([2, 3, 3.2, 5, 8, 7]), libpysal.weights.DistanceBand(points, threshold=15),
                             permutations=0)
    assert np.allclose(z, [-1.39727626, -0.28917762, 0.65064964, -0.28917762, 1.23452088, 2.02424331])
    crime = np.array(libpysal.io.open(get_path("columbus.dbf")).by_col("CRIME"))
    queen = libpysal.weights.Queen.from_iterable(libpysal.io.open(get_path("columbus.shp")))
    assert round(hs.global_moran(crime, queen, permutations=0)["I"], 3) == 0.500
    stl = libpysal.io.open(get_path("stl_hom.csv"))
    rook = libpysal.io.open(get_path("stl.gal")).read()
    moran = hs.global_moran(np.array(stl.by_col["HR8893"]), rook, permutations=99)
    assert round(moran["I"], 4) == 0.2437 and moran["p_sim"] <= 0.05
    assert moran["expected"] == pytest.approx(-1 / (len(stl.by_col["HR8893"]) - 1))


def test_quartic_kde_integrates_to_the_number_of_points() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 300, 400), rng.normal(0, 300, 400)
    kde = hs.quartic_kde(x, y)
    area_km2 = (kde["cell"] / 1000) ** 2
    assert kde["density_per_km2"].sum() * area_km2 == pytest.approx(400, rel=0.03)
    assert kde["bandwidth"] == pytest.approx(max(100.0, 0.9 * 300 * 400 ** (-0.2)), rel=0.15)


def test_exact_placement_never_worse_than_greedy_and_greedy_within_bound() -> None:
    rng = np.random.default_rng(7)
    for _ in range(5):
        demand = rng.uniform(0, 2000, (600, 2))
        demand[:150] = rng.normal(600, 80, (150, 2))  # a cluster
        candidates = rng.uniform(0, 2000, (120, 2))
        weights = rng.integers(1, 4, 600).astype(float)
        existing = rng.uniform(0, 2000, (3, 2))
        exact = mclp.plan(candidates, demand, weights, 6, 150, existing, "exact")
        greedy = mclp.plan(candidates, demand, weights, 6, 150, existing, "greedy")
        assert exact.covered_weight >= greedy.covered_weight - 1e-9
        assert greedy.covered_weight >= (1 - 1 / math.e) * exact.covered_weight
        assert greedy.upper_bound >= exact.covered_weight - 1e-9
        assert exact.already_covered_weight == greedy.already_covered_weight > 0


def test_street_coverage_share() -> None:
    from shapely.geometry import LineString

    from kuzet.services.crime.analysis import view_polygon

    street = LineString([(0, 0), (1000, 0)])
    full = view_polygon(500, 0, None, None, 100)
    assert street.intersection(full).length / street.length == pytest.approx(0.2, abs=0.002)
    east = view_polygon(500, 0, 90, 60, 100)  # looking east along the street
    assert street.intersection(east).length == pytest.approx(100, abs=1)


def test_api_scopes_by_role(demo_inst: Installation, demo_client: TestClient, tmp_path: Path) -> None:
    from kuzet.services.crime.demo import seed

    with demo_inst.db.session() as s:
        empty = (s.scalar(select(func.count()).select_from(Offence)) or 0) == 0
    if empty:
        seed(demo_inst, demo_inst.city)
    params = {"from": "2025-01-01", "to": "2025-06-30"}
    analyst = demo_client.get("/api/v1/crime/report", params=params, headers=login(demo_client, "analyst"))
    assert analyst.status_code == 200 and analyst.json()["total"]["current"] > 100
    assert len(analyst.json()["by"]["district"]) == 2
    duty = demo_client.get("/api/v1/crime/report", params=params, headers=login(demo_client, "duty1")).json()
    assert duty["district"] == "Северный район (демо)" and len(duty["by"]["district"]) == 1
    assert demo_client.get("/api/v1/crime/report", params={**params, "district": "Южный район (демо)"},
                           headers=login(demo_client, "duty1")).status_code == 404
    assert demo_client.get("/api/v1/crime/report", params=params,
                           headers=login(demo_client, "resident1")).status_code == 404
    # the Operational Control Centre watches the whole city: every district, as the analyst sees it
    centre = demo_client.get("/api/v1/crime/report", params=params, headers=login(demo_client, "center")).json()
    assert len(centre["by"]["district"]) == 2 and centre["total"] == analyst.json()["total"]
    hot = demo_client.get("/api/v1/crime/hotspots", params={**params, "later_from": "2025-07-01",
                                                            "later_to": "2025-12-31", "permutations": 99},
                          headers=login(demo_client, "analyst")).json()
    assert hot["gi_star"]["type"] == "FeatureCollection" and hot["pai"] is not None
    plan = demo_client.get("/api/v1/crime/plan", params={**params, "cameras": 3},
                           headers=login(demo_client, "analyst")).json()
    assert plan["method"] == "exact" and len(plan["sites"]) == 3
    effect = demo_client.get("/api/v1/crime/effect", params={"installed_from": "2024-05-01",
                                                             "installed_to": "2024-05-01"},
                             headers=login(demo_client, "analyst")).json()
    assert effect["counts"]["before"]["treated"] > 0 and "verdict" in effect
    cover = demo_client.get("/api/v1/crime/coverage", headers=login(demo_client, "analyst")).json()
    assert 0 < cover["covered_share_pct"] < 100
    assert demo_client.get("/api/v1/crime/plan", params={**params, "cameras": 3},
                           headers=login(demo_client, "duty1")).status_code == 404


def test_coverage_from_an_openstreetmap_extract(inst: Installation, tmp_path: Path) -> None:
    """A real .osm.pbf (written with pyosmium): 1 km of main street, a camera seeing 200 m of it, a footway ignored."""
    import osmium

    from kuzet.services.audit import SYSTEM
    from kuzet.services.cameras import create_camera
    from kuzet.services.crime.analysis import street_coverage
    from kuzet.services.crime.streets import read_streets
    from kuzet.services.places import create_place

    lat = 44.85
    dlon = 1000 / (111_320 * math.cos(math.radians(lat)))
    pbf = tmp_path / "city.osm.pbf"
    writer = osmium.SimpleWriter(str(pbf))
    for i, (lon, la) in enumerate([(65.48, lat), (65.48 + dlon, lat), (65.48, lat + 0.001), (65.481, lat + 0.001)],
                                  1):
        writer.add_node(osmium.osm.mutable.Node(id=i, location=(lon, la)))
    writer.add_way(osmium.osm.mutable.Way(id=10, nodes=[1, 2], tags={"highway": "primary", "name": "пр. Абая"}))
    writer.add_way(osmium.osm.mutable.Way(id=11, nodes=[3, 4], tags={"highway": "footway"}))
    writer.close()
    network = read_streets(pbf)
    assert [f["properties"]["name"] for f in network["features"]] == ["пр. Абая"]
    with inst.db.session() as s:
        place = create_place(s, SYSTEM, "district", "D")
        create_camera(s, SYSTEM, inst.keys, name="c", place_id=place.id, main_url="rtsp://10.0.0.1/x",
                      lat=lat, lon=65.48 + dlon / 2, view_radius_m=100)
        result = street_coverage(s, network)
    assert result["street_km"] == pytest.approx(1.0, abs=0.01)
    assert result["covered_share_pct"] == pytest.approx(20.0, abs=0.5)
