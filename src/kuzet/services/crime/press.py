"""A short press release in Russian, Kazakh and English, worded the way prosecutors' releases word it
(«…снизилось на 2,5 %…», «32 на 10 тысяч населения»).

Every sentence comes from the catalogue (``cr.press.*`` in ``web/i18n/crime.json``): counted nouns take the plural form
of the language (CLDR through Babel: «883 преступления», «1 crime was registered»), numbers and dates are formatted
for the language by Babel («с 1 января по 30 июня 2025 года», «From 1 January to 30 June 2025»).
"""

from __future__ import annotations

from datetime import date

from babel.dates import format_date
from babel.numbers import format_decimal

from kuzet.domain.vocabulary import Words


def number(value: float | None, lang: str, digits: int = 1) -> str:
    """1 234,5 in Russian and Kazakh (decimal comma, non-breaking thousands), 1,234.5 in English; at most ``digits``
    decimals."""
    if value is None:
        return "—"
    pattern = "#,##0." + "#" * digits if isinstance(value, float) and value != int(value) else "#,##0"
    return format_decimal(value, pattern, locale=lang)


def pct(value: float, lang: str) -> str:
    """The magnitude of a change with one decimal: «2,5 %» (ru, kk), «2.5%» (en)."""
    text = format_decimal(abs(value), "0.0", locale=lang)
    return f"{text}%" if lang == "en" else f"{text} %"


def period(start: date, end: date, lang: str, words: Words) -> str:
    """«с 1 января по 30 июня 2025 года», «2025 жылғы 1 қаңтар – 30 маусым аралығында», «from 1 January to …»."""
    return words.translate("cr.press.period", lang, start=format_date(start, "d MMMM", locale=lang),
                           end=format_date(end, "d MMMM", locale=lang), year=end.year)


def _direction(change: float, lang: str, words: Words) -> str:
    return words.translate("cr.press.fell" if change < 0 else "cr.press.rose", lang)


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def press_release(rep: dict, lang: str, words: Words, area: str | None = None) -> str:
    start, end = date.fromisoformat(rep["period"]["start"]), date.fromisoformat(rep["period"]["end"])
    total, grave = rep["total"], rep["grave_and_especially_grave"]
    area = area or rep.get("district")
    where = words.translate("cr.press.in_area", lang, area=area) if area else words.translate("cr.press.region", lang)
    parts = [words.translate_n("cr.press.registered", total["current"], lang,
                               period=_capitalised(period(start, end, lang, words)), where=where)]
    if total["change_pct"] is not None:
        parts.append(words.translate("cr.press.total_change", lang, direction=_direction(total["change"], lang, words),
                                     pct=pct(total["change_pct"], lang), previous=number(total["previous"], lang)))
    if grave["change_pct"] is not None:
        parts.append(words.translate("cr.press.grave_change", lang,
                                     direction=_direction(grave["change_pct"], lang, words),
                                     pct=pct(grave["change_pct"], lang)))
    for row in sorted(rep["by"]["offence_type"], key=lambda r: -r["previous"])[:3]:
        if row["change_pct"] is None or row["change_pct"] == 0:
            continue
        what = words.translate(f"cr.press.what.{row['key']}", lang)
        if what.startswith("cr.press.what."):  # a type without its own wording: its name
            what = words.label("offence_type", row["key"], lang)
        parts.append(words.translate("cr.press.type_change", lang, what=what,
                                     direction=_direction(row["change_pct"], lang, words),
                                     pct=pct(row["change_pct"], lang)))
    if rep.get("rate_per_10k") is not None:
        compare = rep.get("compare_rate_per_10k") or rep.get("city_rate_per_10k")
        text = words.translate("cr.press.rate", lang, rate=number(round(rep["rate_per_10k"]), lang))
        if compare:
            text += words.translate("cr.press.rate_compare", lang, compare=number(round(compare), lang))
        parts.append(text + ".")
    return " ".join(parts)
