"""Analytics and safe yards in words: counted nouns by each language's plural rules, the press release's grammar and
dates, the effect verdict in the page's language with its chart, coverage as a map layer, the planner's sites with
street names — on both database backends where the database is involved."""

from __future__ import annotations

import html
import re
import subprocess
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kuzet.installation import Installation
from kuzet.services.crime.press import press_release
from kuzet.store.models.crime import Offence
from kuzet.web import i18n
from tests.conftest import login

COUNTS = (1, 2, 5, 11, 21, 22, 25)
# The Russian forms every count must take: 1 and 21 «one», 2 and 22 «few», 5, 11 and 25 «many».
RU_FORM = {1: 0, 2: 1, 5: 2, 11: 2, 21: 0, 22: 1, 25: 2}
RU_NOUNS = {
    "cr.n_crimes": ("преступление", "преступления", "преступлений"),
    "cr.n_cameras": ("камера", "камеры", "камер"),
    "cr.n_cells": ("ячейка", "ячейки", "ячеек"),
    "cr.n_sites": ("место", "места", "мест"),
}
# Kazakh nouns after a numeral stay singular: one text for every count.
KK_NOUNS = {"cr.n_crimes": "қылмыс", "cr.n_cameras": "камера", "cr.n_cells": "ұяшық", "cr.n_sites": "орын"}


@pytest.mark.parametrize("n", COUNTS)
@pytest.mark.parametrize("key", sorted(RU_NOUNS))
def test_counted_nouns_in_russian_and_kazakh(key: str, n: int) -> None:
    assert i18n.translate_n(key, n, "ru") == f"{n} {RU_NOUNS[key][RU_FORM[n]]}"
    assert i18n.translate_n(key, n, "kk") == f"{n} {KK_NOUNS[key]}"


def _report(current: int, previous: int, start: date = date(2025, 1, 1), end: date = date(2025, 6, 30)) -> dict:
    rows = [{"key": "hooliganism", "current": 30, "previous": 20, "change": 10, "change_pct": 50.0},
            {"key": "theft", "current": 10, "previous": 20, "change": -10, "change_pct": -50.0}]
    return {"period": {"start": start.isoformat(), "end": end.isoformat()}, "district": None,
            "total": {"current": current, "previous": previous, "change": current - previous,
                      "change_pct": round((current - previous) * 100 / previous, 1)},
            "grave_and_especially_grave": {"current": 5, "previous": 10, "change_pct": -50.0},
            "by": {"offence_type": rows}, "rate_per_10k": None}


@pytest.mark.parametrize("n", (*COUNTS, 883))
def test_press_release_counts_crimes_by_the_plural_rules(n: int) -> None:
    ru = press_release(_report(n, 1000), "ru", i18n)
    assert f"зарегистрировано {n} {RU_NOUNS['cr.n_crimes'][RU_FORM.get(n, 1)]}." in ru
    assert f" {n} қылмыс тіркелді." in press_release(_report(n, 1000), "kk", i18n)
    en = press_release(_report(n, 1000), "en", i18n)
    assert ("1 crime was registered" in en) if n == 1 else (f"{n} crimes were registered" in en)


def test_press_release_words_and_dates_per_language() -> None:
    rep = _report(883, 900)
    ru, kk, en = (press_release(rep, lang, i18n) for lang in ("ru", "kk", "en"))
    assert ru.startswith("С 1 января по 30 июня 2025 года в регионе зарегистрировано 883 преступления.")
    assert "Число случаев хулиганства возросло на 50,0 %." in ru and "Число краж снизилось на 50,0 %." in ru
    assert "«" not in ru  # no category in quotes: each type has its own genitive
    assert kk.startswith("2025 жылғы 1 қаңтар – 30 маусым аралығында өңірде 883 қылмыс тіркелді.")
    assert "Бұзақылық фактілері саны 50,0 %-ға артты." in kk
    assert en.startswith("From 1 January to 30 June 2025, 883 crimes were registered in the region.")
    assert "Cases of hooliganism rose by 50.0%." in en
    for text in (ru, kk, en):
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), text  # no raw key
    district = {**rep, "district": "Северный район"}
    assert "года на территории «Северный район» зарегистрировано 883" in press_release(district, "ru", i18n)
    assert "аралығында «Северный район» аумағында 883 қылмыс" in press_release(district, "kk", i18n)
    assert "883 crimes were registered in Северный район." in press_release(district, "en", i18n)


@pytest.fixture(scope="module")
def crime_city(demo_inst: Installation, demo_client: TestClient) -> Installation:
    from kuzet.services.crime.demo import seed

    with demo_inst.db.session() as s:
        empty = not s.scalar(select(func.count()).select_from(Offence))
    if empty:
        seed(demo_inst, demo_inst.city)
    return demo_inst


@pytest.mark.parametrize(("lang", "words"), [("ru", ["Зона камер", "До", "После"]),
                                             ("kk", ["Камералар аймағы", "Дейін", "Кейін"]),
                                             ("en", ["Camera area", "Before", "After"])])
def test_effect_verdict_and_chart_in_the_pages_language(crime_city: Installation, demo_client: TestClient,
                                                        lang: str, words: list[str]) -> None:
    r = demo_client.get("/api/v1/crime/effect", params={"installed_from": "2024-05-01", "installed_to": "2024-05-01",
                                                        "lang": lang}, headers=login(demo_client, "analyst"))
    assert r.status_code == 200, r.text
    body = r.json()
    caveat = i18n.translate("cr.verdict.caveat", lang)
    assert body["verdict"].endswith(caveat) and body["verdict_code"] in ("fell", "rose", "not_significant", "undefined")
    assert set(body["areas"]) == {"treated", "buffer", "control"}
    svg = body["chart_svg"]
    assert svg.startswith("<svg") and "viewBox" in svg and all(w in svg for w in words)
    assert "<script" not in svg


def test_coverage_layer_and_planner_addresses(crime_city: Installation, demo_client: TestClient) -> None:
    headers = login(demo_client, "analyst")
    cover = demo_client.get("/api/v1/crime/coverage", headers=headers).json()
    assert cover["streets"]["type"] == "FeatureCollection" and len(cover["streets"]["features"]) == 4
    assert cover["covered"]["features"], "covered street segments for the map"
    covered_m = sum(f["properties"]["covered_m"] for f in cover["covered"]["features"])
    assert covered_m / 1000 == pytest.approx(cover["covered_km"], abs=0.002)
    names = {f["properties"]["name"] for f in cover["streets"]["features"]}
    assert names == {"ул. Абая", "ул. Желтоксан", "ул. Айтеке би", "пр. Абылай хана"}
    plan = demo_client.get("/api/v1/crime/plan", params={"from": "2025-01-01", "to": "2025-06-30", "cameras": 3},
                           headers=headers).json()
    assert [s["rank"] for s in plan["sites"]] == [1, 2, 3]
    assert all(s["street"] in names and s["street_distance_m"] <= 500 for s in plan["sites"])
    assert all(f["properties"]["street"] for f in plan["geojson"]["features"])


# --- safe yards -------------------------------------------------------------------------------------------------

SY_RU = {"sy.n_people": ("человек", "человека", "человек"), "sy.n_flats": ("квартира", "квартиры", "квартир"),
         "sy.n_yards": ("двор", "двора", "дворов"), "sy.n_records": ("запись", "записи", "записей")}
SY_KK = {"sy.n_people": "адам", "sy.n_flats": "пәтер", "sy.n_yards": "аула", "sy.n_records": "жазба"}
RAW_KEY = re.compile(r"\b[a-z]+_[a-z0-9_]+\b")


@pytest.mark.parametrize("n", COUNTS)
@pytest.mark.parametrize("key", sorted(SY_RU))
def test_passport_counted_nouns_in_russian_and_kazakh(key: str, n: int) -> None:
    assert i18n.translate_n(key, n, "ru") == f"{n} {SY_RU[key][RU_FORM[n]]}"
    assert i18n.translate_n(key, n, "kk") == f"{n} {SY_KK[key]}"


@pytest.fixture(scope="module")
def yards(demo_inst: Installation) -> list[int]:
    from kuzet.services.safeyard.demo import seed
    from kuzet.store.models.safeyard import SafeYard

    with demo_inst.db.session() as s:
        seeded = bool(s.scalars(select(SafeYard)).first())
    if not seeded:
        seed(demo_inst, demo_inst.city)
    with demo_inst.db.session() as s:
        return [y.id for y in s.scalars(select(SafeYard).order_by(SafeYard.id))]


def _pdf_words(pdf: bytes, tmp_path: Path) -> tuple[float, list[tuple[float, float, str]]]:
    """The page width and every word of the text layer with its left and right edge (poppler's pdftotext -bbox)."""
    path = tmp_path / "passport.pdf"
    path.write_bytes(pdf)
    xml = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    width = float(re.search(r'<page width="([0-9.]+)"', xml).group(1))
    words = [(float(a), float(b), html.unescape(w)) for a, b, w in
             re.findall(r'<word xMin="([0-9.]+)" yMin="[0-9.]+" xMax="([0-9.]+)" yMax="[0-9.]+">([^<]*)</word>', xml)]
    return width, words


@pytest.mark.parametrize("lang", ["ru", "kk"])
@pytest.mark.parametrize("personal", [False, True])
def test_printed_passport_fits_the_page_with_labelled_fields(demo_client: TestClient, yards: list[int],
                                                             tmp_path: Path, lang: str, personal: bool) -> None:
    params = {"lang": lang} | ({"personal": "true", "purpose": "печать паспорта"} if personal else {})
    r = demo_client.get(f"/api/v1/safe-yards/{yards[0]}/passport.pdf", params=params,
                        headers=login(demo_client, "inspector1"))
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    width, words = _pdf_words(r.content, tmp_path)
    assert words and all(left >= 0 and right <= width for left, right, _ in words), "a word beyond the page"
    text = " ".join(w for _, _, w in words)
    assert not RAW_KEY.findall(text), RAW_KEY.findall(text)
    assert "{" not in text and "None" not in text
    layout = subprocess.run(["pdftotext", "-layout", str(tmp_path / "passport.pdf"), "-"], capture_output=True,
                            text=True, timeout=60).stdout
    assert "ул. Абая, 11, Северный район (демо), Кызылорда (демо)" in layout  # the full address
    people = {"ru": "4 человека", "kk": "4 адам"}[lang]
    assert people in layout and {"ru": "Год постройки", "kk": "Салынған жылы"}[lang] in layout
    assert {"ru": "Схема двора", "kk": "Аула сызбасы"}[lang] in layout
    if personal:
        assert {"ru": "Квартира", "kk": "Пәтер"}[lang] in layout and "Охотник Демо" in layout
        assert {"ru": "Разрешение действует до", "kk": "Рұқсат мерзімі"}[lang] in layout


def test_passport_answers_with_full_address_and_readable_history(demo_client: TestClient, yards: list[int]) -> None:
    body = demo_client.get(f"/api/v1/safe-yards/{yards[0]}", headers=login(demo_client, "inspector1")).json()
    assert body["full_address"] == "ул. Абая, 11, Северный район (демо), Кызылорда (демо)"
    assert body["history"] and all(i18n.label("yard_action", h["action"], "ru") != h["action"]
                                   for h in body["history"])
    for key in body["characteristics"]:
        assert i18n.label("yard_field", key, "kk") != key


def test_full_address_never_has_an_empty_part(inst: Installation) -> None:
    from kuzet.services.audit import SYSTEM
    from kuzet.services.places import create_place
    from kuzet.services.safeyard.passport import yard_address

    with inst.db.session() as s:
        town = create_place(s, SYSTEM, "settlement", "Кызылорда")
        district = create_place(s, SYSTEM, "district", "Северный район", parent_id=town.id)
        street = create_place(s, SYSTEM, "street", "ул. Абая", parent_id=district.id)
        house = create_place(s, SYSTEM, "building", "Дом 1", parent_id=street.id, address="ул. Абая, 11")
        bare = create_place(s, SYSTEM, "building", "Дом 2", parent_id=street.id, address="  ")
        south = create_place(s, SYSTEM, "district", "Южный район")
        s.flush()
        lonely = create_place(s, SYSTEM, "yard", "Двор у реки", parent_id=south.id)
        with_address = create_place(s, SYSTEM, "yard", "Двор дома 1", parent_id=house.id)
        without = create_place(s, SYSTEM, "yard", "Двор дома 2", parent_id=bare.id)
        s.flush()
        assert yard_address(s, with_address) == "ул. Абая, 11, Северный район, Кызылорда"
        assert yard_address(s, without) == "Северный район, Кызылорда"  # no blank address, no dangling comma
        assert yard_address(s, lonely) == "Южный район"  # what the tree knows, nothing more
