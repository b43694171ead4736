"""The onboarding console in Chromium against a real `kuzet serve`: the installation list (hostile names shown as text,
bad rows listed), ONVIF discovery of simulated cameras added from the page, and the field technician's phone page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser_support import browser, kuzet_server, require_chromium, sign_in
from tests.recording_support import ThreadedSim
from tests.watching_support import streaming_demo

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object, ThreadedSim, int, Path]]:
    require_chromium()
    sim = ThreadedSim(2)
    face = sim.start_onvif()
    inst = streaming_demo(tmp_path_factory.mktemp("onboarding") / "data", sim, live=("b1yard",))
    city = inst.city
    inst.close()
    env = {"KUZET_RECORDER__FILE_SECONDS": "5", "KUZET_RECORDER__FRAGMENT_SECONDS": "0.5",
           "KUZET_STORAGE__MIN_FREE_BYTES": "0", "KUZET_OPERATIONS__ENABLED": "false"}
    try:
        with kuzet_server(inst.settings.data_dir, env) as base:
            yield base, city, sim, face.discovery_port, inst.settings.data_dir
    finally:
        sim.close()


def _token(base: str, username: str) -> dict:
    r = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": "demo"})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_installation_list_and_onvif_from_the_page(site, tmp_path: Path) -> None:  # noqa: ANN001
    base, city, sim, discovery_port, _data = site
    good = tmp_path / "list.csv"
    good.write_text("parent,building,entrance,camera,main_url\n"
                    f"{city.streets[0]},Дом 77,Подъезд 1,\"{HOSTILE}\",rtsp://10.7.7.7/main\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("parent,building,entrance,camera,main_url\n"
                   f"{city.streets[0]},Дом 78,Подъезд 1,Камера,file:///etc/passwd\n"
                   f"Нет места,Дом 78,Подъезд 1,Камера 2,rtsp://10.7.7.8/main\n", encoding="utf-8")
    with browser() as b:
        page = b.new_page(viewport={"width": 1280, "height": 900})
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        sign_in(page, base, "operator")
        page.goto(f"{base}/onboarding")
        page.set_input_files("[data-testid=list-form] input[type=file]", str(bad))
        page.click("[data-testid=list-form] button[type=submit]")
        page.wait_for_selector("[data-testid=import-errors] li")
        lines = page.locator("[data-testid=import-errors] li").all_inner_texts()
        assert [x.split(":")[0] for x in lines] == ["строка 2", "строка 3"], lines
        page.set_input_files("[data-testid=list-form] input[type=file]", str(good))
        page.click("[data-testid=list-form] button[type=submit]")
        page.wait_for_selector("[data-testid=list-result] table")
        assert HOSTILE in page.locator("[data-testid=list-result] table").inner_text()
        assert page.locator("[data-testid=list-result] img").count() == 0 and not dialogs
        # ONVIF: discover the simulator's cameras by a unicast probe and add one from its profiles.
        page.fill("[data-testid=discover-form] input[name=addresses]", "127.0.0.1")
        page.fill("[data-testid=discover-form] input[name=port]", str(discovery_port))
        page.uncheck("[data-testid=discover-form] input[name=multicast]")
        page.click("[data-testid=discover-form] button[type=submit]")
        page.wait_for_selector("[data-testid=onvif-device]")
        assert page.locator("[data-testid=onvif-device]").count() == 2
        device = page.locator("[data-testid=onvif-device]", has_text="KuzetSim-cam1")
        device.locator("input[name=place_id]").fill(str(city.entrances[3]))
        device.locator("input[name=name]").fill("ONVIF с экрана")
        device.locator("button[type=submit]").click()
        device.locator("a", has_text="ONVIF с экрана").wait_for()
        page.screenshot(path=str(tmp_path / "onboarding.png"), full_page=True)
    cams = httpx.get(f"{base}/api/v1/cameras", params={"q": "ONVIF с экрана"}, headers=_token(base, "operator"))
    assert cams.json()["items"][0]["main_url"] == sim.url(1)


def test_field_page_on_a_phone(site, tmp_path: Path) -> None:  # noqa: ANN001
    base, city, _sim, _port, _data = site
    admin = _token(base, "admin")
    dead = httpx.post(f"{base}/api/v1/cameras", headers=admin, json={
        "name": f"Подъезд {HOSTILE}", "place_id": city.entrances[1], "kind": "entrance",
        "main_url": "rtsp://127.0.0.1:9/nothing-listens-here"})
    assert dead.status_code == 201, dead.text
    camera_id = dead.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the recorder picks the camera up, fails, and records a gap
        items = httpx.get(f"{base}/api/v1/field/offline", headers=admin).json()["items"]
        if any(i["camera_id"] == camera_id and i["reason"] != "never_connected" for i in items):
            break
        time.sleep(1)
    else:
        raise AssertionError("the dead camera never showed up as offline")
    with browser() as b:
        phone = b.new_page(viewport={"width": 360, "height": 740}, is_mobile=True)
        sign_in(phone, base, "operator")
        phone.goto(f"{base}/field")
        card = phone.locator(f"[data-testid=offline-camera][data-camera='{camera_id}']")
        card.wait_for()
        text = card.inner_text()
        assert HOSTILE in text and "Подъезд" in text and "нет связи" in text.lower()
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling on a phone
        phone.screenshot(path=str(tmp_path / "field-360.png"), full_page=True)
        # A resident manages nothing: the page is not theirs.
        resident = b.new_page()
        sign_in(resident, base, "resident1")
        assert resident.goto(f"{base}/field").status == 404
