"""The cloud service's pages in real Chromium on the seeded demo: the resident portal at 360 px wide (no sideways
scrolling, the subscription, the routing of each camera, the access log's pages), signing up with a code from a
notice, the telecom's console (suspending a subscriber, compliance), agreements as the duty unit reads them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.browser_support import browser, kuzet_server, require_chromium, sign_in

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    data = tmp_path_factory.mktemp("cloud-pages") / "data"
    subprocess.run([sys.executable, "-m", "kuzet.cli.main", "demo", "--seed-only", "--data", str(data)], check=True,
                   capture_output=True, timeout=300)
    with kuzet_server(data, {"KUZET_RECORDER__ENABLED": "false"}) as url:
        yield url


def _no_sideways_scroll(page) -> None:  # noqa: ANN001
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px screen"


def test_the_resident_portal_on_a_phone(base: str) -> None:
    with browser() as b:
        page = b.new_page(viewport=PHONE)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, base, "resident1")
        page.goto(f"{base}/my")
        page.wait_for_selector("[data-testid=subscription]")
        page.wait_for_selector("[data-testid=route]")
        text = page.locator("main").inner_text()
        assert "2024-118-12" in text and "действует" in text
        assert "Выведена в ЦОУ" in text and "ДЧ-1/2024" in text
        page.wait_for_function("() => document.querySelectorAll('#access-log li').length > 0")
        _no_sideways_scroll(page)
        page.select_option("[data-testid=language]", "kk")
        page.wait_for_function("() => document.querySelector('main').innerText.includes('Менің камераларым')")
        page.wait_for_selector("[data-testid=subscription]")
        assert "белсенді" in page.locator("main").inner_text()
        _no_sideways_scroll(page)
        assert errors == []


def test_signing_up_with_the_code_of_a_notice(base: str) -> None:
    token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "operator", "password": "demo"}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    flats = httpx.get(f"{base}/api/v1/cloud/flats", headers=headers, params={"state": "active", "limit": 50}).json()
    flat = next(f for f in flats["items"] if not f["residents"])
    code = httpx.post(f"{base}/api/v1/cloud/flats/{flat['id']}/code", headers=headers).json()
    with browser() as b:
        page = b.new_page(viewport=PHONE)
        page.goto(code["url"].replace("http://127.0.0.1:8080", base))
        assert page.input_value("[data-testid=code]") == code["code"]
        page.fill("input[name=username]", "newneighbour")
        page.fill("input[name=password]", "demo")  # the demo's policy: 4 characters
        page.click("#activate-form button")
        page.wait_for_url(lambda url: url.endswith("/my"), timeout=15000)
        page.wait_for_selector("[data-testid=subscription]")
        assert flat["account"] in page.locator("main").inner_text()
        _no_sideways_scroll(page)


def test_the_telecoms_console_and_the_units_agreements(base: str) -> None:
    with browser() as b:
        page = b.new_page(viewport={"width": 1366, "height": 768})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, base, "operator")
        page.goto(f"{base}/cloud")
        page.wait_for_selector("#flats tr[data-state=active]")
        row = page.locator("#flats tr[data-state=active]").first
        account = row.locator("td").first.inner_text()
        row.locator("select").select_option("suspended")
        page.wait_for_function("(a) => document.querySelector('#flat-message').innerText.includes(a)", arg=account)
        page.click("[data-tab=compliance]")
        page.wait_for_selector("#compliance tr[data-short=true]")
        assert "Не хватает глубины архива" in page.locator("[data-testid=compliance-summary]").inner_text()
        page.click("[data-tab=contracts]")
        page.wait_for_selector("#contracts tr")
        assert errors == []
        sign_in(page, base, "duty1")
        page.goto(f"{base}/agreements")
        page.wait_for_selector("#agreements tr")
        text = page.locator("#agreements").inner_text()
        assert "ДЧ-1/2024" in text and "ДЧ-2/2024" not in text
        assert page.goto(f"{base}/cloud").status == 404
        sign_in(page, base, "resident2")
        assert page.goto(f"{base}/agreements").status == 404
