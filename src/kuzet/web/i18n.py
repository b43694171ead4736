"""Texts of the web console in Russian, Kazakh and English.

Each capability keeps its strings in ``i18n/<capability>.json`` as ``{"key": {"ru": …, "kk": …, "en": …}}``; all files
are merged. A missing translation falls back to Russian, then to the key itself.

- **Counted nouns** have one text per plural category of the language (CLDR rules through Babel: Russian one / few /
  many, Kazakh and English one / other): ``{"yard.people": {"ru": {"one": "{n} житель", "few": "{n} жителя",
  "many": "{n} жителей"}, …}}``; ``translate_n(key, n, lang)`` picks the form, never string concatenation. The
  browser does the same with ``Intl.PluralRules`` (``tn()`` in ``static/js/api.js``).
- **Values the user sees** (camera kinds, states, categories, roles, …) are translated as ``label.<group>.<value>``
  (``label("camera_kind", "entrance")``); a value without a label shows as itself, which the console walk test reports.
- ``{name}`` placeholders are filled from keyword arguments.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from babel import Locale

LANGUAGES = ("ru", "kk", "en")
LANGUAGE_NAMES = {"ru": "Русский", "kk": "Қазақша", "en": "English"}


@functools.cache
def catalogue() -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for path in sorted((Path(__file__).parent / "i18n").glob("*.json")):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def _entry(key: str, lang: str) -> Any:
    return _entry_in(key, lang)[0]


def _entry_in(key: str, lang: str) -> tuple[Any, str]:
    """The text (or plural forms) of ``key`` and the language it is in (Russian when ``lang`` has none)."""
    entry = catalogue().get(key)
    if entry is None:
        return None, lang
    if entry.get(lang):
        return entry[lang], lang
    return entry.get("ru"), "ru"


def translate(key: str, lang: str, **values: Any) -> str:
    text = _entry(key, lang)
    if text is None:
        return key
    if isinstance(text, dict):  # a counted noun asked for without a count: its general form
        text = text.get("other") or text.get("many") or next(iter(text.values()))
    return text.format(**values) if values else text


@functools.cache
def _locale(lang: str) -> Locale:
    return Locale.parse(lang)


def plural_form(n: float, lang: str) -> str:
    """CLDR plural category of ``n`` in ``lang``: one, few, many or other."""
    return _locale(lang).plural_form(abs(n))


def translate_n(key: str, n: float, lang: str, **values: Any) -> str:
    """The form of ``key`` for the count ``n`` (``{n}`` is the count, formatted for the language)."""
    from babel.numbers import format_decimal

    forms, written_in = _entry_in(key, lang)
    if forms is None:
        return key
    if isinstance(forms, str):
        text = forms
    else:  # the forms are chosen by the rules of the language they are written in
        text = (forms.get(plural_form(n, written_in)) or forms.get("other") or forms.get("many")
                or next(iter(forms.values())))
    return text.format(n=format_decimal(n, locale=lang), **values)


def label(group: str, value: str, lang: str) -> str:
    """A value's name in ``lang`` (``label.<group>.<value>``); the value itself when there is none."""
    key = f"label.{group}.{value}"
    return translate(key, lang) if key in catalogue() else str(value)


def for_language(lang: str) -> dict[str, Any]:
    """All texts in one language (handed to the page's scripts; counted nouns as their plural forms)."""
    out: dict[str, Any] = {}
    for key in catalogue():
        entry = _entry(key, lang)
        out[key] = entry if isinstance(entry, dict) else translate(key, lang)
    return out


# Zones offered in the user's settings: Kazakhstan's, its neighbours', and UTC (any other IANA name is accepted by the
# API and shown as well).
TIME_ZONES = ("Asia/Almaty", "Asia/Qyzylorda", "Asia/Qostanay", "Asia/Aqtobe", "Asia/Aqtau", "Asia/Atyrau",
              "Asia/Oral", "Asia/Tashkent", "Asia/Bishkek", "Asia/Novosibirsk", "Asia/Omsk", "Asia/Yekaterinburg",
              "Europe/Samara", "Europe/Moscow", "Europe/Istanbul", "Europe/Berlin", "Europe/London", "UTC")


def zone_name(zone: str, lang: str) -> str:
    """A time zone as people read it: its city in the language and the offset now ("Алматы (UTC+5)")."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from babel.dates import get_timezone_location

    try:
        offset = datetime.now(ZoneInfo(zone)).utcoffset()
    except (ValueError, KeyError):
        return zone
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    shift = f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "") if minutes else "UTC"
    if zone in ("UTC", "Etc/UTC"):
        return "UTC"
    try:
        city = get_timezone_location(zone, locale=lang, return_city=True)
    except (LookupError, ValueError):
        city = zone.rsplit("/", 1)[-1].replace("_", " ")
    return f"{city} ({shift})"
