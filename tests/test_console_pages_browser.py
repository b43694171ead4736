"""Safe-yard and analytics pages in real Chromium, on a seeded demo (no cameras needed)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.browser_support import browser, kuzet_server, require_chromium, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    data = tmp_path_factory.mktemp("pages") / "data"
    subprocess.run([sys.executable, "-m", "kuzet.cli.main", "demo", "--seed-only", "--data", str(data)], check=True,
                   capture_output=True, timeout=300)
    with kuzet_server(data, {"KUZET_RECORDER__ENABLED": "false"}) as url:
        yield url


def test_inspector_opens_a_passport_only_with_a_purpose(base: str) -> None:
    with browser() as b:
        page = b.new_page()
        sign_in(page, base, "inspector1")
        page.goto(f"{base}/safe-yards")
        page.wait_for_selector("#yards tbody tr")
        page.click("#yards tbody tr a")
        page.wait_for_selector("#people tbody tr")
        masked = page.locator("#people .person").all_inner_texts()
        assert masked and all("*" in n for n in masked)
        page.fill("#open-form input[name=purpose]", "проверка по заявлению")
        page.click("#open-form button")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#people .person')].some(n => n.innerText.includes('(демо)'))")
        page.select_option("[data-testid=language]", "kk")
        page.wait_for_function("() => document.querySelector('#people').innerText.includes('Тұрғындар')")
        # Kazakh numbers and numeric dates as Kazakh writes them, even where the browser's ICU lacks Kazakh
        number, day = page.evaluate("""async () => { const a = await import("/static/js/api.js");
            return [a.fmtNumber(1234.5), a.fmtTime("2026-03-01T06:00:00Z", {dateStyle: "short"})]; }""")
        assert number.replace("\u00a0", " ").replace("\u202f", " ") == "1 234,5" and day == "01.03.2026", (number, day)


def test_analyst_sees_dynamics_press_release_and_hot_spots(base: str) -> None:
    with browser() as b:
        page = b.new_page()
        sign_in(page, base, "analyst")
        page.goto(f"{base}/analytics")
        page.wait_for_function("() => document.querySelector('#press').innerText.includes('зарегистрировано')",
                               timeout=30000)
        page.wait_for_function("() => (window.KUZET.hotCells || 0) > 0", timeout=30000)
        page.click("#plan-form button")
        page.wait_for_function("() => document.querySelectorAll('#plan tbody tr').length === 3", timeout=30000)
        page.click("#effect-form button")
        page.wait_for_function("() => document.querySelector('#effect').innerText.includes('RES')", timeout=30000)
        assert "%" in page.locator("#coverage").inner_text()
        response = page.goto(f"{base}/analytics")
        assert response.status == 200
        sign_in(page, base, "resident1")
        assert page.goto(f"{base}/analytics").status == 404
