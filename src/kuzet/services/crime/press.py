"""A short press release in Russian, Kazakh and English, worded the way prosecutors' releases word it
(«…снизилось на 2,5 %…», «32 на 10 тысяч населения»)."""

from __future__ import annotations

from datetime import date

from kuzet.domain.crime import OFFENCE_TYPES

MONTHS = {
    "ru": ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября", "ноября",
           "декабря"],
    "kk": ["қаңтар", "ақпан", "наурыз", "сәуір", "мамыр", "маусым", "шілде", "тамыз", "қыркүйек", "қазан", "қараша",
           "желтоқсан"],
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
}


def number(value: float, lang: str) -> str:
    """1 234,5 in Russian and Kazakh (decimal comma, thin thousands), 1,234.5 in English."""
    if value is None:
        return "—"
    text = f"{value:,.1f}" if isinstance(value, float) and value != int(value) else f"{int(value):,}"
    if lang in ("ru", "kk"):
        text = text.replace(",", " ").replace(".", ",")
    return text


def pct(value: float, lang: str) -> str:
    magnitude = abs(value)
    text = f"{magnitude:.1f}"
    return text.replace(".", ",") + " %" if lang in ("ru", "kk") else text + "%"


def _period(start: date, end: date, lang: str) -> str:
    m = MONTHS[lang]
    if lang == "ru":
        return f"с {start.day} {m[start.month - 1]} по {end.day} {m[end.month - 1]} {end.year} года"
    if lang == "kk":
        return f"{end.year} жылғы {start.day} {m[start.month - 1]} – {end.day} {m[end.month - 1]} аралығында"
    return f"from {start.day} {m[start.month - 1]} to {end.day} {m[end.month - 1]} {end.year}"


def _direction(change: float, lang: str) -> str:
    if lang == "ru":
        return "снизилось" if change < 0 else "возросло"
    if lang == "kk":
        return "азайды" if change < 0 else "артты"
    return "fell" if change < 0 else "rose"


def press_release(rep: dict, lang: str, area: str | None = None) -> str:
    start, end = date.fromisoformat(rep["period"]["start"]), date.fromisoformat(rep["period"]["end"])
    total, grave = rep["total"], rep["grave_and_especially_grave"]
    area = area or rep.get("district") or {"ru": "регионе", "kk": "өңірде", "en": "the region"}[lang]
    parts = []
    if lang == "ru":
        parts.append(f"{_period(start, end, lang).capitalize()} в {area} зарегистрировано "
                     f"{number(total['current'], lang)} преступлений.")
        if total["change_pct"] is not None:
            parts.append(f"По сравнению с аналогичным периодом прошлого года их число {_direction(total['change'], lang)} "
                         f"на {pct(total['change_pct'], lang)} (было {number(total['previous'], lang)}).")
        if grave["change_pct"] is not None:
            parts.append(f"Количество тяжких и особо тяжких преступлений {_direction(grave['change_pct'], lang)} "
                         f"на {pct(grave['change_pct'], lang)}.")
    elif lang == "kk":
        parts.append(f"{_period(start, end, lang).capitalize()} {area} {number(total['current'], lang)} қылмыс тіркелді.")
        if total["change_pct"] is not None:
            parts.append(f"Өткен жылдың сәйкес кезеңімен салыстырғанда олардың саны {pct(total['change_pct'], lang)}-ға "
                         f"{_direction(total['change'], lang)} (бұрын {number(total['previous'], lang)} болған).")
        if grave["change_pct"] is not None:
            parts.append(f"Ауыр және аса ауыр қылмыстар саны {pct(grave['change_pct'], lang)}-ға "
                         f"{_direction(grave['change_pct'], lang)}.")
    else:
        parts.append(f"{_period(start, end, lang).capitalize()}, {number(total['current'], lang)} crimes were "
                     f"registered in {area}.")
        if total["change_pct"] is not None:
            parts.append(f"Compared with the same period last year the number {_direction(total['change'], lang)} by "
                         f"{pct(total['change_pct'], lang)} (from {number(total['previous'], lang)}).")
        if grave["change_pct"] is not None:
            parts.append(f"Grave and especially grave crimes {_direction(grave['change_pct'], lang)} by "
                         f"{pct(grave['change_pct'], lang)}.")
    for row in sorted(rep["by"]["offence_type"], key=lambda r: -r["previous"])[:3]:
        if row["change_pct"] is None or row["change_pct"] == 0:
            continue
        name = OFFENCE_TYPES.get(row["key"], (row["key"],) * 3)[{"ru": 0, "kk": 1, "en": 2}[lang]]
        if lang == "ru":
            word = {"theft": "краж", "fraud": "мошенничеств", "robbery": "грабежей"}.get(row["key"], f"«{name}»")
            parts.append(f"Число {word} {_direction(row['change_pct'], lang)} на {pct(row['change_pct'], lang)}.")
        elif lang == "kk":
            parts.append(f"«{name.capitalize()}» саны {pct(row['change_pct'], lang)}-ға "
                         f"{_direction(row['change_pct'], lang)}.")
        else:
            parts.append(f"{name.capitalize()} {_direction(row['change_pct'], lang)} by {pct(row['change_pct'], lang)}.")
    if rep.get("rate_per_10k") is not None:
        rate = round(rep["rate_per_10k"])
        compare = rep.get("compare_rate_per_10k") or rep.get("city_rate_per_10k")
        if lang == "ru":
            text = f"Уровень преступности составил {rate} на 10 тысяч населения"
            text += f" (по республике — {round(compare)})." if compare else "."
        elif lang == "kk":
            text = f"Қылмыс деңгейі 10 мың тұрғынға шаққанда {rate} болды"
            text += f" (республика бойынша — {round(compare)})." if compare else "."
        else:
            text = f"The crime rate was {rate} per 10,000 residents"
            text += f" (country: {round(compare)})." if compare else "."
        parts.append(text)
    return " ".join(parts)
