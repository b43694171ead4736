"""The web console in real Chromium: live video plays, foreign cameras are not found, the archive seeks to an
instant, a 9-tile wall plays every tile, the language switch changes the texts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.browser_support import browser, kuzet_server, sign_in, wait_recording
from tests.recording_support import ThreadedSim
from tests.watching_support import streaming_demo

pytestmark = [pytest.mark.browser, pytest.mark.media]
WALL = ("b1e1", "b1e2", "b1yard", "b2e1", "b2e2", "b2yard", "d1school1", "d1school2", "d1street1", "b3e1")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    from tests.browser_support import require_chromium

    require_chromium()
    sim = ThreadedSim(6)
    inst = streaming_demo(tmp_path_factory.mktemp("browser") / "data", sim, live=WALL)
    city = inst.city
    inst.close()
    env = {"KUZET_RECORDER__FILE_SECONDS": "5", "KUZET_RECORDER__FRAGMENT_SECONDS": "0.5",
           "KUZET_STORAGE__MIN_FREE_BYTES": "0"}
    try:
        with kuzet_server(inst.settings.data_dir, env) as base:
            wait_recording(base, "center", [city.cameras[s] for s in WALL])
            time.sleep(8)  # an archive to seek in
            yield base, city
    finally:
        sim.close()


def _playing(page, selector: str = "video") -> bool:  # noqa: ANN001
    return page.evaluate(f"""async () => {{
        const v = document.querySelector({selector!r});
        const t0 = v.currentTime;
        await new Promise(r => setTimeout(r, 1200));
        return v.videoWidth > 0 && v.readyState >= 2 && v.currentTime > t0;
    }}""")


def test_resident_watches_own_camera_live_and_not_another(site) -> None:  # noqa: ANN001
    base, city = site
    with browser() as b:
        page = b.new_page()
        sign_in(page, base, "resident1")
        page.goto(f"{base}/cameras/{city.cameras['b1e1']}")
        page.wait_for_function("() => document.querySelector('video').currentTime > 0.5", timeout=20000)
        assert _playing(page)
        # a frame is really drawn: sample the picture through a canvas
        drawn = page.evaluate("""() => {
            const v = document.querySelector('video'); const c = document.createElement('canvas');
            c.width = 64; c.height = 36; const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 36);
            const d = g.getImageData(0, 0, 64, 36).data; let s = 0;
            for (let i = 0; i < d.length; i += 4) s += d[i] + d[i+1] + d[i+2];
            return s; }""")
        assert drawn > 0
        response = page.goto(f"{base}/cameras/{city.cameras['b3e1']}")
        assert response.status == 404
        assert page.locator("[data-testid=not-found]").is_visible()


def test_archive_seeks_to_a_chosen_instant(site) -> None:  # noqa: ANN001
    base, city = site
    with browser() as b:
        page = b.new_page()
        sign_in(page, base, "resident1")
        page.goto(f"{base}/cameras/{city.cameras['b1yard']}")
        page.wait_for_function("() => document.querySelector('video').currentTime > 0", timeout=20000)
        wanted = datetime.now(UTC) - timedelta(seconds=9)
        page.evaluate(f"window.KUZET.seek({wanted.isoformat()!r})")
        page.wait_for_function(
            "() => { const v = document.querySelector('video'); return window.KUZET.mode === 'archive' && "
            "window.KUZET.position && !v.paused && v.currentTime > 0; }", timeout=15000)
        page.wait_for_timeout(300)
        position = datetime.fromisoformat(page.evaluate("window.KUZET.position").replace("Z", "+00:00"))
        assert abs((position - wanted).total_seconds()) <= 2.0
        # clicking the timeline also starts archive playback there
        box = page.locator("#timeline").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.97, box["y"] + 30)
        page.wait_for_function("() => !document.querySelector('video').paused", timeout=15000)
        # 16× playback
        page.select_option("#speed", "16")
        assert page.evaluate("document.querySelector('video').playbackRate") == 16


def test_control_centre_nine_tile_wall_plays_every_tile(site) -> None:  # noqa: ANN001
    base, _city = site
    with browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        sign_in(page, base, "center")
        page.goto(f"{base}/wall?grid=9")
        page.wait_for_function("""() => { const vs = [...document.querySelectorAll('[data-testid=tile-video]')];
            return vs.length === 9 && vs.every(v => v.currentTime > 0.3 && v.videoWidth > 0); }""", timeout=45000)
        # save the layout and find it again
        page.fill("#layout-name", "Район 1")
        page.click("#save-layout")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#layouts option')].some(o => o.text === 'Район 1')")


def test_language_switch_changes_texts_and_is_remembered(site) -> None:  # noqa: ANN001
    base, _city = site
    with browser() as b:
        page = b.new_page()
        sign_in(page, base, "duty1")
        page.goto(f"{base}/cameras")
        assert page.locator("h1").inner_text() == "Камеры"
        page.select_option("[data-testid=language]", "kk")
        page.wait_for_function("() => document.querySelector('h1').innerText === 'Камералар'")
        page.select_option("[data-testid=language]", "en")
        page.wait_for_function("() => document.querySelector('h1').innerText === 'Cameras'")
        page.goto(f"{base}/wall")
        assert page.locator("h1").inner_text() == "Video wall"  # stored per user
        page.goto(f"{base}/map")
        page.wait_for_function("() => window.KUZET.mapFeatures > 10", timeout=15000)
        page.select_option("[data-testid=language]", "ru")
        page.wait_for_function("() => document.querySelector('h1').innerText === 'Карта камер'")


def test_a_stream_the_browser_cannot_play_says_so(site) -> None:  # noqa: ANN001
    """An H.265 camera in a browser without H.265: a clear message instead of a black box."""
    base, city = site
    with browser() as b:
        page = b.new_page()
        page.add_init_script("MediaSource.isTypeSupported = () => false;")
        sign_in(page, base, "resident1")
        page.goto(f"{base}/cameras/{city.cameras['b1e1']}")
        message = page.locator("#player-message")
        message.wait_for(state="visible", timeout=15000)
        assert "H.265" in message.inner_text()
