"""Hostile input at the API: a clear 4xx that names the field and what it accepts, and nothing changed.

Ids and offsets beyond the database's INTEGER columns, negative ids, nulls in PATCH bodies, NaN and out-of-range
coordinates, absurd lengths; bodies and uploads over the limits (also without Content-Length, or with one that lies);
unbounded analysis parameters (API and CLI); camera URL schemes; CSV cells a spreadsheet would run as formulas.
Webhook targets are in ``test_webhook_targets.py``. Everything touching the database runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kuzet.domain.spreadsheets import csv_text, safe_cell
from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.audit import SYSTEM
from kuzet.services.crime import limits
from kuzet.services.crime import placement as mclp
from kuzet.services.places import create_place
from kuzet.store.models import Camera, User
from tests.conftest import login

PASSWORD = "correct horse battery"


def _admin(inst: Installation, client: TestClient) -> dict[str, str]:
    with inst.db.session() as session:
        accounts.create_user(session, SYSTEM, "root", PASSWORD, "platform_admin")
    return login(client, "root", PASSWORD)


def _district(inst: Installation) -> int:
    with inst.db.session() as session:
        return create_place(session, SYSTEM, "district", "D", lat=44.85, lon=65.5).id


def _cameras(inst: Installation) -> int:
    with inst.db.session() as session:
        return session.scalar(select(func.count()).select_from(Camera)) or 0


def _message(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]["message"]


# --- ids, offsets, nulls, numbers, lengths ----------------------------------------------------------------------------


def test_ids_and_offsets_beyond_the_columns_are_422_naming_field_and_range(inst: Installation,
                                                                          client: TestClient) -> None:
    headers = _admin(inst, client)
    for path in ("/api/v1/cameras/99999999999999999999", "/api/v1/cameras/2147483648", "/api/v1/cameras/-1",
                 "/api/v1/cameras/0", "/api/v1/users/9223372036854775808", "/api/v1/grants/-5"):
        method = client.delete if "grants" in path else client.get
        response = method(path, headers=headers)
        assert response.status_code == 422, (path, response.text)
        assert "_id: must be within 1..2147483647" in _message(response), path
    assert client.get("/api/v1/cameras/2147483647", headers=headers).status_code == 404  # the largest id: none such
    for params in ({"offset": 2**63}, {"offset": -1}, {"limit": 0}, {"limit": 10**6}, {"place_id": 2**40}):
        response = client.get("/api/v1/cameras", params=params, headers=headers)
        assert response.status_code == 422, (params, response.text)
        assert _message(response).startswith(f"{next(iter(params))}: must be within "), params
    page = client.get("/api/v1/cameras", params={"offset": 2**31 - 1}, headers=headers)
    assert page.status_code == 200 and page.json()["items"] == []
    body_id = client.post("/api/v1/grants", json={"rights": ["view_live"], "legal_basis": "x", "user_id": 2**31,
                                                  "camera_id": 1}, headers=headers)
    assert body_id.status_code == 422 and "user_id: must be within 1..2147483647" in _message(body_id)


def test_null_is_refused_where_a_value_is_required_and_clears_where_it_means_none(inst: Installation,
                                                                                 client: TestClient) -> None:
    headers = _admin(inst, client)
    me = client.get("/api/v1/auth/me", headers=headers).json()
    for body in ({"full_name": None}, {"language": None}, {"is_active": None}, {"language": "fr"},
                 {"full_name": "x" * 201}):
        response = client.patch(f"/api/v1/users/{me['id']}", json=body, headers=headers)
        assert response.status_code == 422, body
        assert _message(response).startswith(f"{next(iter(body))}: "), body
    assert "may not be null" in _message(client.patch(f"/api/v1/users/{me['id']}", json={"full_name": None},
                                                      headers=headers))
    with inst.db.session() as session:
        assert session.get(User, me["id"]).full_name == ""  # unchanged
    assert client.patch(f"/api/v1/users/{me['id']}", json={"full_name": "Root"}, headers=headers).json()[
        "full_name"] == "Root"

    place = _district(inst)
    camera = client.post("/api/v1/cameras", json={"name": "C", "place_id": place, "main_url": "rtsp://10.0.0.1/main",
                                                  "sub_url": "rtsp://10.0.0.1/sub", "lat": 44.8, "lon": 65.5},
                         headers=headers)
    assert camera.status_code == 201, camera.text
    cid = camera.json()["id"]
    for body in ({"name": None}, {"enabled": None}, {"retention_days": None}, {"place_id": None},
                 {"main_url": None}, {"kind": None}):
        response = client.patch(f"/api/v1/cameras/{cid}", json=body, headers=headers)
        assert response.status_code == 422 and "may not be null" in _message(response), body
    cleared = client.patch(f"/api/v1/cameras/{cid}", json={"sub_url": None, "lat": None, "lon": None},
                           headers=headers).json()
    assert cleared["has_sub_stream"] is False and cleared["lat"] is None and cleared["name"] == "C"


def test_coordinates_nan_infinity_and_out_of_range_change_nothing(inst: Installation, client: TestClient) -> None:
    headers = {**_admin(inst, client), "Content-Type": "application/json"}
    place = _district(inst)
    good = {"name": "C", "place_id": place, "main_url": "rtsp://10.0.0.1/main"}
    cases = [('"lat": NaN, "lon": 65', "lat: must be within -90..90"),
             ('"lat": 44, "lon": Infinity', "lon: must be within -180..180"),
             ('"lat": 91, "lon": 65', "lat: must be within -90..90 (got 91)"),
             ('"bearing": 360', "bearing: must be >= 0 and < 360 (got 360)"),
             ('"field_of_view": 0', "field_of_view: must be > 0 and <= 360"),
             ('"view_radius_m": -Infinity', "view_radius_m: must be > 0 and <= 10000"),
             ('"retention_days": 100000', "retention_days: must be within 1..3650"),
             (f'"name": "{"x" * 5000}"', "name: String should have at most 200 characters")]
    for extra, expected in cases:
        raw = json.dumps(good)[:-1] + ", " + extra + "}"
        response = client.post("/api/v1/cameras", content=raw, headers=headers)
        assert response.status_code == 422, (extra, response.text)
        assert expected in _message(response), (extra, _message(response))
    assert _cameras(inst) == 0


# --- sizes: bodies and uploads ----------------------------------------------------------------------------------------


def test_oversized_bodies_are_413_while_streaming(inst: Installation, client: TestClient) -> None:
    headers = _admin(inst, client)
    inst.settings.http.max_body_bytes = 4096
    big = {"name": "x" * 5000, "kind": "district"}
    declared = client.post("/api/v1/places", json=big, headers=headers)
    assert declared.status_code == 413 and "4 KiB (4096 bytes)" in _message(declared)
    assert declared.json()["error"]["code"] == "too_large"

    def chunks() -> Any:  # no Content-Length: chunked transfer
        yield b'{"name": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'", "kind": "district"}'

    chunked = client.post("/api/v1/places", content=chunks(), headers={**headers, "Content-Type": "application/json"})
    assert chunked.status_code == 413 and "4096 bytes" in _message(chunked)
    small = client.post("/api/v1/places", json={"name": "fits", "kind": "district"}, headers=headers)
    assert small.status_code == 201
    with inst.db.session() as session:
        from kuzet.store.models import Place

        assert [p.name for p in session.scalars(select(Place))] == ["fits"]


def test_a_content_length_that_lies_does_not_get_past_the_limit(inst: Installation) -> None:
    from kuzet.api.app import create_app

    inst.settings.http.max_body_bytes = 2048
    app = create_app(inst)
    sent: list[dict] = []
    pieces = [b'{"name": "', *[b"x" * 1000] * 5, b'", "kind": "district"}']

    async def receive() -> dict:
        if pieces:
            return {"type": "http.request", "body": pieces.pop(0), "more_body": bool(pieces)}
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/v1/places", "raw_path": b"/api/v1/places", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), (b"content-length", b"20"),
                         (b"authorization", b"Bearer nobody")], "client": ("127.0.0.1", 1), "server": ("x", 80)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    # The body is read before the route runs: the limit answers, whatever the (bad) token.
    assert start["status"] == 413 and json.loads(body)["error"]["code"] == "too_large"
    assert len(pieces) >= 2  # it stopped reading once past the limit


def test_oversized_uploads_are_413_and_import_nothing(inst: Installation, client: TestClient) -> None:
    headers = _admin(inst, client)
    place = _district(inst)
    inst.settings.http.max_upload_bytes = 8192
    rows = "name,place,main_url\n" + "".join(f"cam {i},{place},rtsp://10.0.0.{i % 250 + 1}/s\n" for i in range(400))
    assert len(rows) > 8192
    response = client.post("/api/v1/cameras/import", files={"file": ("cams.csv", rows.encode(), "text/csv")},
                           headers=headers)
    assert response.status_code == 413 and "8 KiB (8192 bytes)" in _message(response)
    assert _cameras(inst) == 0
    fits = client.post("/api/v1/cameras/import", files={"file": ("cams.csv", rows[:2000].rsplit("\n", 1)[0] + "\n",
                                                                  "text/csv")}, headers=headers)
    assert fits.status_code == 201 and len(fits.json()["created"]) == _cameras(inst) > 10


async def _spool_case(limit: int, size: int) -> int:
    from starlette.datastructures import UploadFile

    from kuzet.api.limits import BodyTooLarge, spool

    upload = UploadFile(io.BytesIO(b"z" * size), filename="x.csv")
    try:
        with await spool(upload, limit, ".csv") as copy:
            return len(copy.read())
    except BodyTooLarge:
        return -1


def test_uploads_are_copied_in_chunks_up_to_the_cap() -> None:
    assert asyncio.run(_spool_case(3 << 20, 3 << 20)) == 3 << 20
    assert asyncio.run(_spool_case(3 << 20, (3 << 20) + 1)) == -1


# --- analysis parameters ----------------------------------------------------------------------------------------------


def test_unbounded_analysis_parameters_are_422_with_the_allowed_range(demo_inst: Installation,
                                                                     demo_client: TestClient) -> None:
    headers = login(demo_client, "analyst")
    period = {"from": "2024-01-01", "to": "2025-12-31"}
    cases = [("/api/v1/crime/hotspots", {"cell": 1}, "cell: must be within 5..2000"),
             ("/api/v1/crime/hotspots", {"bandwidth": 1e9}, "bandwidth: must be within 10..5000"),
             ("/api/v1/crime/hotspots", {"permutations": 10**6}, "permutations: must be within 99..9999"),
             ("/api/v1/crime/plan", {"cameras": 5000}, "cameras: must be within 1..1000"),
             ("/api/v1/crime/plan", {"cameras": 3, "radius": 1e7}, "radius: must be within 10..5000"),
             ("/api/v1/crime/plan", {"cameras": 3, "method": "brute"}, "method: Input should be 'auto', 'exact'"),
             ("/api/v1/crime/report", {"compare_rate": "nan"}, "compare_rate: must be within 0..10000")]
    for path, params, expected in cases:
        response = demo_client.get(path, params={**period, **params}, headers=headers)
        assert response.status_code == 422, (path, params, response.text)
        assert expected in _message(response), (params, _message(response))
    long = demo_client.get("/api/v1/crime/report", params={"from": "1900-01-01", "to": "2025-12-31"}, headers=headers)
    assert long.status_code == 422 and "at most 3660 days" in _message(long)
    effect = demo_client.get("/api/v1/crime/effect", params={"installed_from": "2024-01-01",
                                                             "installed_to": "2024-12-31", "months": 600},
                             headers=headers)
    assert effect.status_code == 422 and "months: must be within 1..60" in _message(effect)


def test_the_services_hold_the_same_bounds_for_the_cli(demo_inst: Installation) -> None:
    from kuzet.services.crime.analysis import hotspot_map, plan_cameras

    start, end = datetime(2024, 1, 1).date(), datetime(2025, 12, 31).date()
    with demo_inst.db.session() as session:
        with pytest.raises(limits.LimitError, match=r"cell must be within 5\.\.2000 \(got 1\)"):
            hotspot_map(session, start, end, cell=1)
        with pytest.raises(limits.LimitError, match="cameras must be within 1..1000"):
            plan_cameras(session, 5000, start, end)
        with pytest.raises(limits.LimitError, match="at most 3660 days"):
            plan_cameras(session, 3, start - timedelta(days=4000), end)
    rng = np.random.default_rng(1)
    many = rng.uniform(0, 5000, (limits.EXACT_MAX_CANDIDATES + 1, 2))
    with pytest.raises(limits.LimitError, match="exact placement takes at most 2000 candidate sites"):
        mclp.plan(many, rng.uniform(0, 5000, (50, 2)), np.ones(50), 3, 100, method="exact")
    assert mclp.plan(many, rng.uniform(0, 5000, (50, 2)), np.ones(50), 3, 100).method == "greedy"


def test_a_grid_too_fine_for_the_area_is_refused_before_it_is_allocated() -> None:
    from kuzet.services.crime import hotspots as hs

    x = np.array([0.0, 20_000.0, 5_000.0, 7_000.0, 9_000.0])
    y = np.array([0.0, 20_000.0, 3_000.0, 1_000.0, 8_000.0])
    with pytest.raises(limits.LimitError, match=r"the grid would have \d+ cells of 10 m \(at most 250000\)"):
        hs.quartic_kde(x, y, 200, 10)
    assert hs.quartic_kde(x, y, 200, 100)["density_per_km2"].size <= limits.MAX_GRID_CELLS


def test_cli_reports_the_bound(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from kuzet.cli.main import app

    data = tmp_path / "data"
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--data", str(data)]).exit_code == 0
    result = runner.invoke(app, ["crime", "hotspots", "--from", "2024-01-01", "--to", "2024-12-31", "--cell", "1",
                                 "--data", str(data)])
    assert result.exit_code != 0 and "cell must be within 5..2000" in result.output


# --- camera URLs ------------------------------------------------------------------------------------------------------


def test_camera_urls_only_with_allowed_schemes(inst: Installation, client: TestClient) -> None:
    headers = _admin(inst, client)
    place = _district(inst)
    for url in ("file:///etc/passwd", "udp://10.0.0.1:5000", "gopher://10.0.0.1/", "tcp://10.0.0.1:554",
                "javascript:alert(1)", "rtsp://"):
        response = client.post("/api/v1/cameras", json={"name": "C", "place_id": place, "main_url": url},
                               headers=headers)
        assert response.status_code == 422, url
        message = _message(response)
        assert "allowed: http, https, rtmp, rtmps, rtsp, rtsps, srt" in message or "no host" in message, message
    assert _cameras(inst) == 0
    ok = client.post("/api/v1/cameras", json={"name": "C", "place_id": place, "main_url": "rtsps://cam.example/a"},
                     headers=headers)
    assert ok.status_code == 201
    edit = client.patch(f"/api/v1/cameras/{ok.json()['id']}", json={"sub_url": "file:///dev/zero"}, headers=headers)
    assert edit.status_code == 422 and "file:" in _message(edit)
    inst.settings.security.camera_url_schemes.append("file")  # a demo or a test that plays local videos
    local = client.patch(f"/api/v1/cameras/{ok.json()['id']}", json={"sub_url": "file:///srv/video.mp4"},
                         headers=headers)
    assert local.status_code == 200 and local.json()["has_sub_stream"]


def test_camera_import_names_every_bad_url_and_imports_nothing(inst: Installation, client: TestClient) -> None:
    headers = _admin(inst, client)
    place = _district(inst)
    rows = (f"name,place,main_url,sub_url\nA,{place},rtsp://10.0.0.1/a,\nB,{place},file:///etc/shadow,\n"
            f"C,{place},rtsp://10.0.0.3/c,udp://10.0.0.3:9\nD,{place},rtsp://10.0.0.4/d,\n")
    response = client.post("/api/v1/cameras/import", files={"file": ("c.csv", rows.encode(), "text/csv")},
                           headers=headers)
    assert response.status_code == 422
    bad = response.json()["error"]["rows"]
    assert [row["line"] for row in bad] == [3, 4] and all("not allowed here" in row["message"] for row in bad)
    assert _cameras(inst) == 0


# --- CSV exports ------------------------------------------------------------------------------------------------------


def test_formula_cells_are_neutralised_and_numbers_stay_numbers() -> None:
    for hostile in ("=HYPERLINK(\"http://evil\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "\t=1",
                    "\r=1"):
        assert safe_cell(hostile) == "'" + hostile
    for harmless in ("plain", "", "a=b", "−12", "-12.5", "+7", "1e-3", -12.5, -3, 0, None):
        assert safe_cell(harmless) == harmless
    text = csv_text(["name", "lat"], [["=1+1", -45.25], ["ok", 12]])
    assert list(csv.reader(io.StringIO(text))) == [["name", "lat"], ["'=1+1", "-45.25"], ["ok", "12"]]


def test_incident_export_neutralises_hostile_titles(inst: Installation, client: TestClient) -> None:
    headers = _admin(inst, client)
    created = client.post("/api/v1/incidents", json={
        "offence_type": "theft", "title": "=HYPERLINK(\"http://evil.example\",\"open\")",
        "description": "@SUM(A1)", "lat": -33.5, "lon": -70.25}, headers=headers)
    assert created.status_code == 201, created.text
    now = datetime.now(UTC)
    export = client.get("/api/v1/incidents/export", params={"start": (now - timedelta(days=1)).isoformat(),
                                                           "end": (now + timedelta(days=1)).isoformat(),
                                                           "format": "csv"}, headers=headers)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    [row] = list(csv.DictReader(io.StringIO(export.text)))
    assert row["title"] == "'=HYPERLINK(\"http://evil.example\",\"open\")"
    assert row["lat"] == "-33.5" and row["lon"] == "-70.25"  # numbers stay numbers
