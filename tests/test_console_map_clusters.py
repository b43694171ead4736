"""A city too large to draw camera by camera: the map shows the server's counts on a grid, and zoomed in, the cameras
of what the screen shows (Chromium, a real server)."""

from __future__ import annotations

from pathlib import Path

from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.audit import SYSTEM
from kuzet.services.cameras import create_camera
from kuzet.services.places import create_place
from kuzet.services.watching.map import CLUSTER_AT
from tests.browser_support import browser, kuzet_server, sign_in

PASSWORD = "a-long-enough-password"
CAMERAS = CLUSTER_AT + 100


def test_a_large_city_comes_as_counts_and_zooming_in_shows_cameras(tmp_path: Path) -> None:
    data = tmp_path / "data"
    inst = Installation.open(data)
    inst.init()
    with inst.db.session() as session:
        accounts.create_user(session, SYSTEM, "chief", PASSWORD, "platform_admin")
        district = create_place(session, SYSTEM, "district", "Район", lat=44.85, lon=65.50)
        for i in range(CAMERAS):  # a 25 × 24 grid about 4 km across, not recorded (no streams to reach)
            create_camera(session, SYSTEM, inst.keys, name=f"Камера {i}", place_id=district.id, enabled=False,
                          main_url="rtsp://127.0.0.1:9/x", lat=44.83 + (i // 25) * 0.0015,
                          lon=65.48 + (i % 25) * 0.0015)
    inst.close()
    with kuzet_server(data) as base, browser() as b:
        page = b.new_page(viewport={"width": 1366, "height": 768})
        sign_in(page, base, "chief", PASSWORD)
        page.goto(f"{base}/map")
        page.wait_for_function("() => window.KUZET.mapCounts > 0", timeout=30000)
        shown = page.eval_on_selector_all(".cam-count span", "els => els.map(e => e.textContent)")
        assert shown and sum(int("".join(ch for ch in s if ch.isdigit())) for s in shown) == CAMERAS
        assert page.evaluate("window.KUZET.mapCameras") == 0
        # zoomed in on one corner: the cameras themselves, asked for by the screen's bounding box
        page.evaluate("window.KUZET.map.setView([44.83, 65.48], 18)")
        page.wait_for_function("() => window.KUZET.mapGroup.getLayers().length > 0", timeout=30000)
        seen = page.evaluate("window.KUZET.mapGroup.getLayers().length")
        assert 0 < seen < CAMERAS
