"""Video like a VMS, admin without ids and the operators' details, in real Chromium against a real `kuzet serve`
recording a real RTSP simulator, with NATS as its event bus: the camera page keeps its controls and timeline in view
at 1366×768 and on a phone and answers the keyboard; wall tiles fit and say what each camera does; the map clusters
its cameras; the admin page makes a grant by picking and shows it in words; repeated plate alarms arrive as one card
with a count and the latest picture; a crew's page receives a new call without a reload."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest

from kuzet.config import load_settings
from kuzet.installation import Installation
from tests.browser_support import browser, kuzet_server, require_chromium, sign_in, wait_recording
from tests.conftest import NATS_URL, _unavailable
from tests.recording_support import ThreadedSim
from tests.watching_support import streaming_demo

pytestmark = [pytest.mark.browser, pytest.mark.media]
DESKTOP = {"viewport": {"width": 1366, "height": 768}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
LIVE = ("b1e1", "b1yard", "d1street1", "d1road")
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


def _token(base: str, username: str) -> dict:
    token = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": "demo"}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object, Installation]]:
    require_chromium()
    from kuzet.store.bus import connect_bus

    try:
        asyncio.run(asyncio.wait_for(connect_bus(NATS_URL), 5))
    except Exception as exc:  # noqa: BLE001
        _unavailable("NATS", exc)
    sim = ThreadedSim(2)
    inst = streaming_demo(tmp_path_factory.mktemp("console-video") / "data", sim, live=LIVE)
    city = inst.city
    env = {"KUZET_RECORDER__FILE_SECONDS": "5", "KUZET_RECORDER__FRAGMENT_SECONDS": "0.5",
           "KUZET_STORAGE__MIN_FREE_BYTES": "0", "KUZET_OPERATIONS__ENABLED": "false", "KUZET_EVENTS_URL": NATS_URL}
    inst.settings = load_settings(environ={"KUZET_DATA_DIR": str(inst.settings.data_dir), **env})
    try:
        with kuzet_server(inst.settings.data_dir, env) as base:
            wait_recording(base, "duty1", [city.cameras[s] for s in LIVE])
            yield base, city, inst
    finally:
        inst.close()
        sim.close()


def _no_overflow(page) -> None:  # noqa: ANN001
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "sideways scrolling"


def _in_view(page, selector: str) -> None:  # noqa: ANN001
    box = page.locator(selector).bounding_box()
    height = page.viewport_size["height"]
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= height + 1, (selector, box, height)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_camera_page_keeps_controls_and_timeline_in_view_and_answers_the_keyboard(site, device: str) -> None:  # noqa: ANN001
    base, city, _ = site
    with browser() as b:
        page = b.new_context(**(DESKTOP if device == "desktop" else PHONE)).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        sign_in(page, base, "duty1")
        page.goto(f"{base}/cameras/{city.cameras['b1e1']}")
        page.wait_for_function("() => window.KUZET.position", timeout=20000)
        for selector in ("#video", "#controls", "#timeline", "#legend", "#fullscreen", "#position"):
            _in_view(page, selector)
        _no_overflow(page)
        assert page.locator("#fullscreen").is_visible()
        assert page.evaluate("document.fullscreenEnabled")
        # The legend's swatches are the timeline's own colours.
        colours = page.evaluate("""async () => {
          const {COLOURS} = await import('/static/js/timeline.js');
          const swatches = [...document.querySelectorAll('#legend li')].map((li) => [li.dataset.kind,
            li.querySelector('.swatch').dataset.colour]);
          return {COLOURS, swatches};
        }""")
        assert {k: v for k, v in colours["swatches"]} == colours["COLOURS"]
        # Keyboard: + zooms the timeline in, − out, ← steps back into the archive, space pauses, L back to live.
        page.locator("body").click(position={"x": 5, "y": 5})
        span = page.evaluate("window.KUZET.timeline.span")
        page.keyboard.press("+")
        assert page.evaluate("window.KUZET.timeline.span") == span / 2
        page.keyboard.press("-")
        assert page.evaluate("window.KUZET.timeline.span") == span
        page.wait_for_timeout(2500)  # some archive behind the live edge
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("() => window.KUZET.mode === 'archive'")
        page.wait_for_function("() => window.KUZET.position && !document.getElementById('video').paused", timeout=20000)
        page.keyboard.press(" ")
        page.wait_for_function("() => document.getElementById('video').paused")
        page.keyboard.press("l")
        page.wait_for_function("() => window.KUZET.mode === 'live'")
        # The export form is in the page's time zone, like the clock.
        page.click("#export-box summary")
        assert "Asia/Almaty" in page.locator("#export-zone").inner_text()
        start = page.input_value("#export-form input[name=start]")
        shown = page.evaluate("""() => new Intl.DateTimeFormat('en-GB', {timeZone: 'Asia/Almaty', hour: '2-digit',
          hourCycle: 'h23'}).format(new Date(Date.now() - 600000))""")
        assert start[11:13] == shown  # not the browser's UTC
        assert errors == []


def test_wall_tiles_fit_the_screen_and_name_each_camera_and_its_state(site) -> None:  # noqa: ANN001
    base, city, _ = site
    with browser() as b:
        page = b.new_context(**DESKTOP).new_page()
        sign_in(page, base, "duty1")
        page.goto(f"{base}/wall?grid=9")
        page.wait_for_function("""() => window.KUZET.wall
          && window.KUZET.wall.tiles().filter((t) => t.camera).length === 9
          && window.KUZET.wall.tiles().some((t) => t.latency !== null && t.latency !== undefined)""", timeout=30000)
        assert page.evaluate("document.documentElement.scrollHeight <= window.innerHeight + 1"), "the wall scrolls"
        _no_overflow(page)
        for i in range(9):
            _in_view(page, f"[data-tile='{i}']")
        tiles = page.evaluate("window.KUZET.wall.tiles()")
        names = page.eval_on_selector_all("[data-testid=tile-name]", "(n) => n.map((x) => x.textContent)")
        assert all(names) and len(names) == 9
        live = {city.cameras[s] for s in LIVE}
        page.wait_for_function("""(live) => window.KUZET.wall.tiles().every((t) =>
          live.includes(t.camera) ? t.state === 'recording' && !t.overlay : t.state === 'disabled' && t.overlay)""",
                               arg=sorted(live), timeout=20000)
        tiles = page.evaluate("window.KUZET.wall.tiles()")
        off = next(t for t in tiles if t["camera"] not in live)
        tile = page.locator(f"[data-tile][data-camera='{off['camera']}']")
        assert tile.get_attribute("data-overlay") == "offline"
        assert tile.locator("[data-testid=tile-overlay]").is_visible()
        assert tile.locator("[data-testid=tile-state]").inner_text().strip() != ""
        page.locator(f"[data-tile][data-camera='{city.cameras['b1e1']}']").dblclick()
        assert page.evaluate("window.KUZET.wall.enlarged") is not None
        assert page.locator("[data-tile].big").count() == 1 and page.locator("[data-tile]:visible").count() == 1
        assert page.locator("#wall-fullscreen").is_visible()


def test_map_clusters_cameras_and_shows_a_live_picture(site) -> None:  # noqa: ANN001
    base, city, _ = site
    with browser() as b:
        page = b.new_context(**DESKTOP).new_page()
        sign_in(page, base, "center")
        page.goto(f"{base}/map")
        page.wait_for_function("() => window.KUZET.map && window.KUZET.mapClustered", timeout=15000)
        assert page.locator(".marker-cluster").count() >= 1  # 22 cameras in a few streets: clustered
        assert page.evaluate("window.KUZET.mapData.tiles") is None
        assert "offline-map" in page.locator("#map").get_attribute("class")
        _no_overflow(page)
        # A camera's popup with its live picture (the snapshot endpoint).
        page.evaluate("""() => new Promise((resolve) => {
          const m = window.KUZET.mapMarkers.find((x) => x.options.title === "Дом 1, подъезд 1");
          window.KUZET.mapGroup.zoomToShowLayer(m, () => { m.openPopup(); resolve(); });
        })""")
        page.wait_for_selector("[data-testid=map-popup] img[data-testid=popup-picture]:not([hidden])", timeout=20000)
        assert page.locator("[data-testid=map-popup] a").inner_text() == "Дом 1, подъезд 1"


def test_admin_picks_a_grant_without_typing_an_id_and_reads_it_in_words(site) -> None:  # noqa: ANN001
    base, city, _ = site
    with browser() as b:
        page = b.new_context(**DESKTOP).new_page()
        sign_in(page, base, "admin")
        page.goto(f"{base}/admin#grants")
        page.wait_for_function("() => window.KUZET.admin.loaded")
        form = page.locator("[data-form=grant]")
        users = httpx.get(f"{base}/api/v1/users", headers=_token(base, "admin"), params={"limit": 100}).json()["items"]
        resident2 = next(u["id"] for u in users if u["username"] == "resident2")
        form.locator("[data-testid=grant-user]").select_option(value=str(resident2))
        form.locator("[data-testid=grant-place]").select_option(value=str(city.entrances[3]))
        form.locator("input[name=rights][value=view_archive]").check()
        form.locator("input[name=legal_basis]").fill("Подписка 2025-007")
        form.locator("button[type=submit]").click()
        message = form.locator("[data-message]")
        page.wait_for_function("() => document.querySelector('[data-form=grant] [data-message]').textContent")
        assert "resident2" in message.inner_text() and "Дом 2, подъезд 2" in message.inner_text()
        grant = page.locator("[data-testid=grant]", has_text="Подписка 2025-007")
        text = grant.inner_text()
        assert "resident2" in text and "→" in text and "«Дом 2, подъезд 2»" in text
        assert "прямой эфир" in text and "архив" in text and "бессрочно" in text
        assert "#" not in text and "_id" not in text and "view_live" not in text  # words, not ids or raw values
        # Revoking asks first; cancelled, nothing happens; confirmed, it is revoked.
        grant.locator("[data-act=revoke]").click()
        assert page.locator("#confirm").is_visible()
        assert "resident2" in page.locator("#confirm-text").inner_text()
        page.click("#confirm [data-cancel]")
        assert page.locator("[data-testid=grant]", has_text="Подписка 2025-007").count() == 1
        grant.locator("[data-act=revoke]").click()
        page.click("[data-testid=confirm-ok]")
        page.wait_for_function("""() => ![...document.querySelectorAll('[data-testid=grant]')]
          .some((g) => g.textContent.includes('Подписка 2025-007'))""")
        assert "отозван" in message.inner_text().lower()


def test_repeated_plate_alarms_arrive_as_one_card_with_a_count_and_the_latest_picture(site) -> None:  # noqa: ANN001
    base, city, inst = site
    from kuzet.services.operations.analysis import AnalysisService
    from kuzet.services.operations.observations import Observation
    from kuzet.store.bus import connect_bus
    from kuzet.store.db import utcnow

    center = _token(base, "center")
    hl = httpx.post(f"{base}/api/v1/hotlists", headers=center,
                    json={"name": "Угон (браузер)", "kind": "stolen", "priority": "critical"}).json()
    httpx.post(f"{base}/api/v1/hotlists/{hl['id']}/entries", headers=center, json={"plate": "321 BRW 11"})
    road = city.cameras["d1road"]
    service = AnalysisService(inst)
    t0 = utcnow() - timedelta(minutes=2)

    async def publish(messages: list) -> None:
        bus = await connect_bus(NATS_URL)
        for subject, payload in messages:
            await bus.publish(subject, payload)
        await asyncio.sleep(0.5)
        await bus.close()

    def sighting(i: int) -> list:
        start = t0 + timedelta(seconds=30 * i)
        kw = {"plate": "321BRW11", "label": "plate", "plate_region": "11", "score": 0.9, "crop": JPEG}
        out = service._persist(Observation(road, "plate", "start", f"browser-{i}", start, snapshot=JPEG, **kw))
        return out + service._persist(Observation(road, "plate", "end", f"browser-{i}", start, end=start, **kw))

    with browser() as b:
        page = b.new_context(**DESKTOP).new_page()
        sign_in(page, base, "duty1")
        page.goto(f"{base}/alarms")
        page.wait_for_function("() => window.KUZET.alarms.loaded && window.KUZET.feed === 'open'", timeout=15000)
        page.evaluate("window.__sameDocument = true")
        for i in range(3):  # three passes of the stolen car, published as the analysis service does
            with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's event loop
                pool.submit(lambda i=i: asyncio.run(publish(sighting(i)))).result(30)
        page.wait_for_function("""() => [...document.querySelectorAll('#alarms [data-alarm]')]
          .some((c) => c.querySelector('[data-testid=alarm-count-badge]')?.textContent.startsWith('×3'))""",
                               timeout=20000)
        cards = page.locator("#alarms [data-alarm]", has_text="321BRW11")
        assert cards.count() == 1 and page.evaluate("window.__sameDocument")
        alarm = httpx.get(f"{base}/api/v1/alarms/{cards.first.get_attribute('data-alarm')}",
                          headers=_token(base, "duty1")).json()
        assert alarm["occurrences"] == 3
        assert cards.first.locator("img.thumb").get_attribute("src") == alarm["crop_url"]  # the latest picture
        # The incident dialog starts with the type the alarm suggests.
        cards.first.locator("[data-act=incident]").click()
        page.wait_for_function("() => document.querySelector('#incident-form select[name=offence_type]').value")
        assert page.input_value("#incident-form select[name=offence_type]") == "vehicle_theft"


def test_a_crews_page_receives_a_new_call_without_a_reload(site) -> None:  # noqa: ANN001
    base, city, _ = site
    duty1 = _token(base, "duty1")
    with browser() as b:
        context = b.new_context(**PHONE)
        context.grant_permissions(["notifications"], origin=base)
        page = context.new_page()
        sign_in(page, base, "responder1")
        page.goto(f"{base}/respond")
        page.wait_for_function("() => window.KUZET.feed === 'open'", timeout=15000)
        page.evaluate("window.__sameDocument = true")
        before = page.locator("[data-testid=dispatch]").count()
        incident = httpx.post(f"{base}/api/v1/incidents", headers=duty1, json={
            "offence_type": "robbery", "title": "Грабёж у подъезда (браузер)", "place_id": city.entrances[0]}).json()
        responders = httpx.get(f"{base}/api/v1/incidents/{incident['id']}/responders", headers=duty1).json()
        responder = next(r for r in responders["items"] if r["username"] == "responder1")
        sent = httpx.post(f"{base}/api/v1/incidents/{incident['id']}/dispatches", headers=duty1,
                          json={"responder_ids": [responder["id"]]})
        assert sent.status_code == 201, sent.text
        page.wait_for_selector("[data-testid=dispatch]:has-text('Грабёж у подъезда (браузер)')", timeout=10000)
        assert page.evaluate("window.__sameDocument") is True
        assert page.locator("[data-testid=dispatch]").count() == before + 1
        page.wait_for_function("() => window.KUZET.respond.pushes >= 1")
        assert page.evaluate("window.KUZET.respond.notified") >= 1  # a browser notification
        _no_overflow(page)
        button = page.locator("[data-testid=dispatch]:has-text('Грабёж у подъезда (браузер)') button[data-step]").first
        box = button.bounding_box()
        assert box["height"] >= 48  # big enough for a thumb
