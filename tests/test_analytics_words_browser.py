"""Analytics (as ``analyst``) and safe yards (as ``inspector1``) in real Chromium, in Russian, Kazakh and English, on a
1366×768 screen and a 390×844 phone: no visible text that is a raw key, an enum value or JSON; tooltips in the page's
language; nothing wider than the screen; no page error. Screenshots of every page go to ``KUZET_SCREENSHOTS`` (or a
temporary directory named in the test's output) for people to look at."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_support import browser, kuzet_server, require_chromium, sign_in

pytestmark = pytest.mark.browser

VIEWPORTS = {"desktop": (1366, 768), "phone": (390, 844)}
LANGS = ("ru", "kk", "en")
RAW = [
    (re.compile(r"\b[a-z]+_[a-z0-9_]+\b"), "a snake_case key or enum value"),
    (re.compile(r"\b(?:cr|sy|label|common|nav)\.[a-z_]+(?:\.[a-z0-9_-]+)*\b"), "a catalogue key"),
    (re.compile(r"[{\[]\s*\""), "JSON"),
    (re.compile(r"\"\s*:\s*[\[{\"0-9]"), "JSON"),
    (re.compile(r"\b(?:undefined|null|NaN|None)\b|\[object Object\]"), "a programming value"),
]
CYRILLIC = re.compile(r"[А-Яа-яЁёӘәҒғҚқҢңӨөҰұҮүҺһІі]")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    data = tmp_path_factory.mktemp("words") / "data"
    subprocess.run([sys.executable, "-m", "kuzet.cli.main", "demo", "--seed-only", "--data", str(data)], check=True,
                   capture_output=True, timeout=300)
    with kuzet_server(data, {"KUZET_RECORDER__ENABLED": "false"}) as url:
        yield url


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = Path(os.environ.get("KUZET_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    directory.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {directory}")
    return directory


def _switch_language(page, lang: str) -> None:  # noqa: ANN001
    """The language chosen as a user chooses it (the selector saves it on the profile and reloads)."""
    if page.evaluate("document.documentElement.lang") == lang:
        return
    with page.expect_navigation():
        page.select_option("[data-testid=language]", lang)
    assert page.evaluate("document.documentElement.lang") == lang


def _check(page, lang: str, where: str, shots: Path, errors: list[str]) -> None:  # noqa: ANN001
    width = page.viewport_size["width"]
    page.screenshot(path=str(shots / f"{where}-{lang}-{width}.png"), full_page=True)
    text = page.evaluate("document.body.innerText")
    for pattern, what in RAW:
        found = pattern.findall(text)
        assert not found, f"{where} ({lang}, {width} px) shows {what}: {found[:5]}"
    tips = page.evaluate("[...document.querySelectorAll('[title]')].map((n) => n.title)")
    for tip in tips:
        assert tip and not any(p.search(tip) for p, _ in RAW[:2]), f"{where}: raw tooltip {tip!r}"
        if lang in ("ru", "kk") and len(tip) > 20:
            assert CYRILLIC.search(tip), f"{where} ({lang}): tooltip not in the page's language: {tip!r}"
    overflow = page.evaluate("""() => {
      const doc = document.documentElement;
      const wide = [...document.querySelectorAll('main *')].filter((n) => {
        const r = n.getBoundingClientRect();
        return r.width > 0 && r.right > doc.clientWidth + 1 && !n.closest('.leaflet-container');
      }).map((n) => n.tagName + (n.id ? '#' + n.id : '') + '.' + n.className);
      return {scroll: doc.scrollWidth, client: doc.clientWidth, wide: wide.slice(0, 5)};
    }""")
    assert overflow["scroll"] <= overflow["client"] and not overflow["wide"], f"{where} ({lang}, {width}): {overflow}"
    assert not errors, f"{where} ({lang}, {width} px): {errors}"


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_analytics_in_words(base: str, shots: Path, viewport: str) -> None:
    with browser() as b:
        context = b.new_context(viewport=dict(zip(("width", "height"), VIEWPORTS[viewport], strict=True)))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, base, "analyst")
        for lang in LANGS:
            page.goto(f"{base}/analytics")
            _switch_language(page, lang)
            page.wait_for_function("() => document.querySelector('#press').innerText.length > 0", timeout=60000)
            page.wait_for_function("() => document.querySelector('#hot-summary').innerText.length > 0", timeout=90000)
            page.wait_for_function("() => (window.KUZET.coveredSegments || 0) > 0", timeout=60000)
            page.click("#effect-form button")
            page.wait_for_selector("[data-testid=verdict]", timeout=60000)
            page.click("#plan-form button")
            page.wait_for_function("() => document.querySelectorAll('#plan tbody tr').length === 3", timeout=60000)
            verdict = page.inner_text("[data-testid=verdict]")
            figure = page.inner_text("[data-testid=coverage-figure]")
            press = page.inner_text("#press")
            if lang == "en":
                assert "cannot rule out" in verdict and "of streets" in figure and " km under cameras" in figure
                assert re.search(r"From \d+ January to \d+ [A-Z][a-z]+ \d{4}, [\d,]+ crimes? w", press)
            else:
                assert CYRILLIC.search(verdict) and "cannot" not in verdict
                assert {"ru": "улиц", "kk": "Көшелердің"}[lang] in figure and "км" in figure
            if lang in ("ru", "kk"):  # decimal commas, even where the browser's ICU data lacks Kazakh
                assert re.search(r"\d,\d", figure) and not re.search(r"\d\.\d", figure), figure
                forms = page.evaluate("""async () => {
                  const words = await import('/static/js/words.js');
                  return [1, 2, 5, 11, 21, 22, 25].map((n) => words.count('cr.n_crimes', n));
                }""")
                expected = {"ru": ["1 преступление", "2 преступления", "5 преступлений", "11 преступлений",
                                   "21 преступление", "22 преступления", "25 преступлений"],
                            "kk": [f"{n} қылмыс" for n in (1, 2, 5, 11, 21, 22, 25)]}[lang]
                assert forms == expected
            if lang == "ru":
                assert press.startswith("С 1 января по ")
                assert re.search(r"зарегистрировано [\d\s]+ преступлени", press)
            assert page.locator("[data-testid=effect-chart]").evaluate("(img) => img.complete && img.naturalWidth > 0")
            streets = page.locator("#plan tbody tr td:nth-child(2)").all_inner_texts()
            assert all(s.strip() for s in streets)
            terms = page.locator("[data-testid=terms] abbr").evaluate_all("(ns) => ns.map((n) => n.title)")
            assert len(terms) >= 5 and all(len(x) > 20 for x in terms)
            _check(page, lang, "analytics", shots, errors)
        context.close()


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_safe_yards_in_words(base: str, shots: Path, viewport: str, tmp_path: Path) -> None:
    with browser() as b:
        context = b.new_context(viewport=dict(zip(("width", "height"), VIEWPORTS[viewport], strict=True)))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, base, "inspector1")
        for lang in LANGS:
            page.goto(f"{base}/safe-yards")
            _switch_language(page, lang)
            page.wait_for_selector("#yards tbody tr")
            page.wait_for_selector("#dashboard table")
            _check(page, lang, "safe-yards", shots, errors)
            page.click("#yards tbody tr a")
            page.wait_for_selector("#people tbody tr")
            page.wait_for_selector("#history li")
            meta = page.inner_text("[data-testid=yard-meta]")
            assert "ул. Абая, 11, Северный район (демо), Кызылорда (демо)" in meta
            counts = page.inner_text("[data-testid=counts]")
            assert {"ru": "4 человека", "kk": "4 адам", "en": "4 people"}[lang] in counts
            page.fill("#open-form input[name=purpose]", "проверка по заявлению")
            page.click("#open-form button")
            page.wait_for_function(
                "() => [...document.querySelectorAll('#people .person')].some(n => n.innerText.includes('(демо)'))")
            details = page.inner_text("#people")
            permit = {"ru": "Разрешение действует до", "kk": "Рұқсат мерзімі", "en": "Permit valid until"}[lang]
            assert permit in details
            _check(page, lang, "passport", shots, errors)
        if viewport != "phone":  # the phone runs last: the import below changes the counts checked above
            context.close()
            return
        # the import speaks the page's language too: its file button and its result
        lists = tmp_path / "lists.csv"
        lists.write_text("Категория,ФИО,Квартира\nжитель,Проверочный Житель (демо),40\n"
                         "житель,Второй Житель (демо),41\n", encoding="utf-8")
        page.set_input_files("#import-form input[name=file]", str(lists))
        assert page.inner_text("#import-file") == "lists.csv"
        page.click("#import-form button")
        page.wait_for_function("() => document.querySelector('#import-result').innerText.length > 0")
        assert page.inner_text("#import-result") == "2 records imported"
        context.close()
