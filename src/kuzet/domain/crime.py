"""Registered offences as the Criminal Code of Kazakhstan classes them (Art. 10–11), and the aliases Russian-language
police exports use for headers and values."""

from __future__ import annotations

from enum import StrEnum


class Gravity(StrEnum):
    MISDEMEANOUR = "misdemeanour"  # уголовный проступок
    MINOR = "minor"  # небольшой тяжести
    MEDIUM = "medium"  # средней тяжести
    GRAVE = "grave"  # тяжкое
    ESPECIALLY_GRAVE = "especially_grave"  # особо тяжкое


GRAVITY_ALIASES = {
    "уголовный проступок": Gravity.MISDEMEANOUR, "проступок": Gravity.MISDEMEANOUR,
    "небольшой тяжести": Gravity.MINOR, "небольшая": Gravity.MINOR,
    "средней тяжести": Gravity.MEDIUM, "средняя": Gravity.MEDIUM,
    "тяжкое": Gravity.GRAVE, "тяжкие": Gravity.GRAVE,
    "особо тяжкое": Gravity.ESPECIALLY_GRAVE, "особо тяжкие": Gravity.ESPECIALLY_GRAVE,
}

OFFENCE_TYPES = {
    "theft": ("кража", "ұрлық", "theft"),
    "robbery": ("грабёж", "тонау", "robbery"),
    "brigandage": ("разбой", "қарақшылық", "armed robbery"),
    "fraud": ("мошенничество", "алаяқтық", "fraud"),
    "hooliganism": ("хулиганство", "бұзақылық", "hooliganism"),
    "assault": ("причинение вреда здоровью", "денсаулыққа зиян келтіру", "assault"),
    "vehicle_theft": ("угон транспорта", "көлік айдап әкету", "vehicle theft"),
    "vandalism": ("вандализм", "вандализм", "vandalism"),
    "drugs": ("наркопреступление", "есірткі қылмысы", "drug offence"),
    "livestock_theft": ("кража скота", "мал ұрлығы", "livestock theft"),
    "other": ("иное", "басқа", "other"),
}
TYPE_ALIASES = {names[0]: key for key, names in OFFENCE_TYPES.items()} | {
    "грабеж": "robbery", "кражи": "theft", "угон": "vehicle_theft", "кража скота": "livestock_theft",
    "причинение вреда": "assault", "прочее": "other", "другое": "other"}

PLACE_TYPES = {
    "street": ("улица", "көше", "street"), "public_place": ("общественное место", "қоғамдық орын", "public place"),
    "entrance": ("подъезд", "кіреберіс", "entrance"), "yard": ("двор", "аула", "yard"),
    "school": ("школа", "мектеп", "school"), "shop": ("магазин", "дүкен", "shop"),
    "road": ("дорога", "жол", "road"), "apartment": ("квартира", "пәтер", "apartment"),
    "other": ("иное", "басқа", "other"),
}
PLACE_ALIASES = {names[0]: key for key, names in PLACE_TYPES.items()} | {"прочее": "other", "жилище": "apartment"}

HEADER_ALIASES = {
    "id": ("id", "номер", "№", "рег. номер", "ерн"),
    "registered_at": ("registered_at", "дата регистрации", "зарегистрировано"),
    "committed_at": ("committed_at", "дата совершения", "время совершения", "дата и время совершения"),
    "article": ("article", "статья", "статья ук"),
    "gravity": ("gravity", "тяжесть", "категория тяжести"),
    "offence_type": ("offence_type", "вид", "вид преступления"),
    "place_type": ("place_type", "место", "место совершения"),
    "district": ("district", "район"),
    "lat": ("lat", "широта"),
    "lon": ("lon", "долгота"),
    "status": ("status", "статус", "состояние"),
}
REQUIRED = ("id", "registered_at", "gravity", "offence_type", "district")


def header_key(raw: str) -> str | None:
    text = (raw or "").strip().lower()
    for key, aliases in HEADER_ALIASES.items():
        if text in aliases:
            return key
    return None
