"""The body-worn camera page in Debian's Chromium against a real `kuzet serve`: the officer sees their uncategorised
recording flagged and categorises it; the custodian plays a dash camera's recording (the browser-playable copy of an
AVI original) with its GPS track on the map, the marker following the video."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuzet.config import load_settings
from kuzet.installation import Installation
from tests.bodycams_support import make_clip
from tests.browser_support import browser, kuzet_server, require_chromium, sign_in

PASSWORD = "a-long-enough-password"


def _nmea(seconds: int) -> str:
    lines = []
    for s in range(seconds):
        body = f"GPRMC,1000{s:02d},A,4450.{928 + 3 * s:03d},N,06528.{938 + 5 * s:03d},E,022.4,084.4,010326,,"
        checksum = 0
        for ch in body:
            checksum ^= ord(ch)
        lines.append(f"${body}*{checksum:02X}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from kuzet.services import accounts
    from kuzet.services.audit import SYSTEM
    from kuzet.services.bodycams import devices, units
    from kuzet.services.bodycams.offload import scan_watch_folder
    from kuzet.services.bodycams.runtime import housekeeping
    from kuzet.services.places import create_organisation

    require_chromium()
    data = tmp_path_factory.mktemp("bodycams") / "data"
    dock = data.parent / "dock"
    inst = Installation.open(settings=load_settings(environ={"KUZET_DATA_DIR": str(data)}))
    inst.init()
    with inst.db.session() as session:
        org = create_organisation(session, SYSTEM, "Патруль", "police_duty_unit")
        admin = accounts.create_user(session, SYSTEM, "boss", PASSWORD, "platform_admin")
        keeper = accounts.create_user(session, SYSTEM, "keeper", PASSWORD, "police_operator", organisation=org.id)
        officer = accounts.create_user(session, SYSTEM, "officer", PASSWORD, "responder", organisation=org.id)
        units.assign_duty(session, SYSTEM, admin, user_id=keeper.id, duty="custodian", legal_basis="Приказ 1")
        units.assign_duty(session, SYSTEM, admin, user_id=officer.id, duty="officer", legal_basis="Приказ 1")
        device = devices.register_device(session, SYSTEM, admin, serial="DASH-1", kind="dash",
                                         organisation_id=org.id, model="DVR")
        devices.check_out(session, SYSTEM, admin, device, officer.id)
        devices.check_in(session, SYSTEM, admin, device)
    (dock / "DASH-1").mkdir(parents=True)
    make_clip(dock / "DASH-1" / "drive.avi", seconds=4)
    (dock / "DASH-1" / "drive.nmea").write_text(_nmea(4))
    inst.settings.bodycams.watch_dir = dock
    assert len(scan_watch_folder(inst, settle_seconds=0).ingested) == 1
    assert housekeeping(inst)["playable"] == 1
    _street_camera_and_live_car(inst, org.id, device.id)
    inst.close()
    with kuzet_server(data) as base:
        yield base


CAR: dict = {}  # the live patrol car: its device id and push URL (with its key)


def _street_camera_and_live_car(inst: Installation, org_id: int, device_id: int) -> None:
    """A street camera beside the dash camera's track whose archive (a real fragmented MP4, indexed as the recorder
    indexes its files) covers the recording's time; and the patrol car streaming live, so it shows on the map."""
    import subprocess
    from datetime import timedelta

    from sqlalchemy import select

    from kuzet.services.audit import SYSTEM
    from kuzet.services.bodycams.live import enable_live
    from kuzet.services.cameras import create_camera
    from kuzet.services.grants import create_grant
    from kuzet.services.places import create_place
    from kuzet.services.recording.ffmpeg import ffmpeg_binary
    from kuzet.services.recording.index import scan_file
    from kuzet.services.recording.segments import relative_path
    from kuzet.store.models import Organisation
    from kuzet.store.models.bodycams import BodycamDevice, BodycamRecording
    from kuzet.store.models.recording import Recording

    with inst.db.session() as session:
        recording = session.scalar(select(BodycamRecording))
        place = create_place(session, SYSTEM, "district", "Район")
        session.get(Organisation, org_id).place_id = place.id
        camera = create_camera(session, SYSTEM, inst.keys, name="Перекрёсток", place_id=place.id, lat=44.8490,
                               lon=65.4826, main_url="rtsp://192.0.2.1/x", enabled=False)
        create_grant(session, SYSTEM, organisation_id=org_id, camera_id=camera.id, rights=["view_archive"],
                     legal_basis="test")
        start = recording.started_at - timedelta(seconds=3)
        relative = relative_path(camera.id, start)
        path = inst.settings.recordings_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([ffmpeg_binary(), "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=320x240:rate=15:duration=12", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                        "-g", "15", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4",
                        str(path)], check=True, capture_output=True)
        values, _ = scan_file(path, start)
        session.add(Recording(camera_id=camera.id, stream="main", path=relative, start_at=start, **values))
        live = enable_live(session, SYSTEM, inst.settings, inst.keys, session.get(BodycamDevice, device_id))
        CAR.update(camera_id=camera.id, recording_id=recording.id, started_at=recording.started_at.isoformat())
    CAR.update(device_id=device_id, push_url=live["push_url"])


def test_officer_is_flagged_and_custodian_plays_with_the_track(site: str) -> None:
    with browser() as chromium:
        page = chromium.new_page()
        sign_in(page, site, "officer", PASSWORD)
        page.goto(f"{site}/bodycams")
        page.wait_for_function("() => window.KUZET.bodycamsReady === true")
        flag = page.get_by_test_id("bc-flag")
        assert flag.is_visible() and "1" in flag.text_content()
        page.locator("#bc-rows tr").first.click()
        page.wait_for_function("() => document.getElementById('bc-detail').hidden === false")
        page.select_option("#bc-set-category", "traffic_stop")
        page.click("#bc-categorise button")
        page.wait_for_function("() => document.getElementById('bc-flag').hidden === true")
        page.close()

        page = chromium.new_page()
        sign_in(page, site, "keeper", PASSWORD)
        page.goto(f"{site}/bodycams")
        page.wait_for_function("() => window.KUZET.bodycamsReady === true")
        assert page.get_by_test_id("bc-flag").is_hidden()  # the custodian made nothing
        assert "DASH-1" in page.get_by_test_id("bc-devices").text_content()
        page.locator("#bc-rows tr").first.click()
        page.wait_for_function("() => window.KUZET.bodycamTrack === 4")
        page.wait_for_function("() => document.getElementById('bc-video').readyState >= 1", timeout=20000)
        assert page.get_by_test_id("bc-map").is_visible()
        start = page.evaluate("() => window.KUZET.bodycamMarker.getLatLng().lat")
        page.evaluate("() => { const v = document.getElementById('bc-video'); v.currentTime = 3.5;"
                      " v.dispatchEvent(new Event('timeupdate')); }")
        moved = page.evaluate("() => window.KUZET.bodycamMarker.getLatLng().lat")
        assert moved > start  # the marker follows the video along the track
        facts = page.locator("#bc-facts").text_content()
        assert "SHA-256" in facts
        page.close()


def test_nothing_for_a_resident(site: str, tmp_path: Path) -> None:
    import httpx

    assert httpx.get(f"{site}/bodycams", follow_redirects=False).status_code in (302, 303, 307)


def test_custodian_reviews_redacts_and_discloses(site: str) -> None:
    with browser() as chromium:
        page = chromium.new_page()
        sign_in(page, site, "keeper", PASSWORD)
        page.goto(f"{site}/bodycams")
        page.wait_for_function("() => window.KUZET.bodycamsReady === true")
        page.locator("#bc-rows tr").first.click()
        page.wait_for_function("() => document.getElementById('bc-detail').hidden === false")
        page.click("#bc-redact-start")
        page.wait_for_function("() => window.KUZET.redaction && window.KUZET.redaction.state === 'planned'",
                               timeout=120000)
        # The job's progress was shown while it ran; a box drawn by hand over the picture is added to the plan.
        assert page.evaluate("() => window.KUZET.redactionJob.done === window.KUZET.redactionJob.total")
        page.get_by_test_id("bc-redact-boxes").scroll_into_view_if_needed()
        box = page.get_by_test_id("bc-redact-boxes").bounding_box()
        page.mouse.move(box["x"] + 10, box["y"] + 10)
        page.mouse.down()
        page.mouse.move(box["x"] + 60, box["y"] + 50)
        page.mouse.up()
        assert "1" in page.get_by_test_id("bc-added").text_content()
        page.click("#bc-redact-save")
        page.wait_for_function("() => document.getElementById('bc-added').textContent.includes('1')")
        page.click("#bc-redact-render")
        page.wait_for_function("() => window.KUZET.redaction.state === 'rendered'", timeout=120000)
        page.fill("#bc-disclose input[name=recipient]", "Прокуратура")
        page.fill("#bc-disclose input[name=reason]", "Запрос № 5")
        page.click("#bc-disclose button[type=submit]")
        link = page.get_by_test_id("bc-link-url")
        link.wait_for()
        assert "/api/v1/shared/bodycams/" in link.get_attribute("href")
        page.close()


def test_street_cameras_play_in_step_with_the_recording(site: str) -> None:
    """From the recording's page: the street camera beside its track that recorded meanwhile is offered, played
    beside it, and held at the same wall-clock instant when the recording is sought, paused and played."""
    with browser() as chromium:
        page = chromium.new_page()
        sign_in(page, site, "keeper", PASSWORD)
        page.goto(f"{site}/bodycams")
        page.wait_for_function("() => window.KUZET.bodycamsReady === true")
        page.locator("#bc-rows tr").first.click()
        nearby = page.get_by_test_id("bc-nearby")
        nearby.wait_for()
        assert "Перекрёсток" in nearby.text_content()
        page.click("#bc-nearby-list button")
        page.wait_for_function("() => window.KUZET.synced && window.KUZET.synced.length === 1"
                               " && window.KUZET.synced[0].at !== null", timeout=20000)
        for second in (1.0, 3.0):
            page.evaluate(f"() => {{ const v = document.getElementById('bc-video'); v.pause();"
                          f" v.currentTime = {second}; }}")
            page.wait_for_function(f"""() => {{
                const s = window.KUZET.synced[0];
                const v = document.getElementById('bc-video');
                return Math.abs(v.currentTime - {second}) < 0.01 && s.at !== null
                    && Math.abs(Date.parse(s.at) - Date.parse(window.KUZET.syncedAt)) < 400;
            }}""", timeout=20000)
        camera_video = page.locator("#bc-sync-tiles video")
        assert camera_video.evaluate("v => v.paused")  # paused with the recording
        page.evaluate("() => document.getElementById('bc-video').play()")
        page.wait_for_function("() => !document.querySelector('#bc-sync-tiles video').paused", timeout=10000)
        assert page.get_by_test_id("bc-sync-clock").text_content()
        page.close()


def test_the_patrol_car_is_on_the_console_map(site: str) -> None:
    with browser() as chromium:
        page = chromium.new_page()
        sign_in(page, site, "keeper", PASSWORD)
        page.goto(f"{site}/map")
        page.wait_for_function("() => Array.isArray(window.KUZET.mapCrews)", timeout=20000)
        crews = page.evaluate("() => window.KUZET.mapCrews")
        assert [c["serial"] for c in crews] == ["DASH-1"] and abs(crews[0]["lat"] - (44 + 50.937 / 60)) < 1e-6
        assert page.locator(".crew-marker").count() == 1
        # The car posts where it is now (with its push key); the map moves it at its next refresh.
        from urllib.parse import parse_qs, urlparse

        import httpx

        from kuzet.store.db import utcnow

        key = parse_qs(urlparse(CAR["push_url"]).query)["key"][0]
        posted = httpx.post(f"{site}/api/v1/bodycams/devices/{CAR['device_id']}/positions", timeout=10,
                            headers={"Authorization": f"Bearer {key}"},
                            json={"fixes": [{"at": utcnow().isoformat(), "lat": 44.9, "lon": 65.6}]})
        assert posted.status_code == 200, posted.text
        page.wait_for_function("() => window.KUZET.mapCrews[0].source === 'live'", timeout=20000)
        assert page.evaluate("() => window.KUZET.mapCrews[0].lat") == 44.9
        marker = page.evaluate("() => { const m = []; window.KUZET.map.eachLayer((l) => { if (l.getLatLng"
                               " && l.options.zIndexOffset === 1000) m.push(l.getLatLng()); }); return m; }")
        assert marker == [{"lat": 44.9, "lng": 65.6}] and page.locator(".crew-marker").count() == 1
        page.close()


def test_the_camera_timeline_has_a_lane_of_bodycam_recordings_played_in_step(site: str) -> None:
    """On the street camera's own page, the dash camera's recording made beside it shows as a lane of the timeline;
    clicking it opens the recording at the instant clicked, and the camera's archive at the same instant."""
    with browser() as chromium:
        page = chromium.new_page()
        sign_in(page, site, "keeper", PASSWORD)
        page.goto(f"{site}/cameras/{CAR['camera_id']}?at={CAR['started_at']}")
        page.wait_for_function(f"() => (window.KUZET.bodycamLane || []).includes({CAR['recording_id']})",
                               timeout=20000)
        assert page.get_by_test_id("bodycam-panel").is_hidden()
        legend = page.get_by_test_id("timeline-legend").text_content()
        assert "body/dash" in legend or "нагрудные" in legend or "кеуде" in legend
        # Click the lane 2.5 s into the recording.
        x = page.evaluate(f"() => window.KUZET.timeline.xAt(Date.parse('{CAR['started_at']}') + 2500)")
        page.get_by_test_id("timeline").click(position={"x": x, "y": 89})
        page.get_by_test_id("bodycam-panel").wait_for()
        page.wait_for_function("() => window.KUZET.bodycamAt && window.KUZET.position", timeout=20000)
        page.evaluate("() => document.getElementById('video').pause()")
        page.wait_for_function("""() => {
            const shown = document.getElementById('bodycam-video');
            return shown.paused && window.KUZET.bodycamShown && window.KUZET.position
                && Math.abs(Date.parse(window.KUZET.bodycamShown) - Date.parse(window.KUZET.position)) < 400;
        }""", timeout=20000)
        clicked = page.evaluate(f"() => window.KUZET.timeline.timeAt({x})")
        position = page.evaluate("() => Date.parse(window.KUZET.position)")
        assert abs(position - clicked) < 1500  # the camera went to the instant clicked (then played a little)
        page.close()
