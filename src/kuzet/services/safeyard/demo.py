"""A few safe yards with generated, clearly fake passports for the demo."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from kuzet.installation import Installation
from kuzet.services.audit import SYSTEM
from kuzet.services.demo import DemoCity
from kuzet.services.safeyard.assignments import assign
from kuzet.services.safeyard.passport import add_person, create_yard
from kuzet.services.safeyard.vault import Vault
from kuzet.store.models import User

FAKE = ["Демоев Тест (демо)", "Примерова Айгуль (демо)", "Фиктивный Ерлан (демо)", "Условная Сауле (демо)",
        "Образцов Нурлан (демо)", "Пробная Асель (демо)"]


def fake_iin(n: int) -> str:
    """A valid-looking generated national ID number (check digit computed), clearly not anyone's."""
    from kuzet.services.safeyard.vault import valid_iin

    base = f"900101{30000 + n:05d}"
    for last in range(10):
        if valid_iin(base + str(last)):
            return base + str(last)
    return fake_iin(n + 1)


def seed(inst: Installation, city: DemoCity) -> None:
    vault = Vault(inst.settings.keys_path)
    today = date.today()
    with inst.db.session() as session:
        inspectors = {u.username: u.id for u in session.scalars(select(User).where(User.role == "inspector"))}
        # Need to know: each inspector is assigned to their district by an order; the control centre's duty officer
        # supervises the city's inspectors.
        staff = {u.username: u.id for u in session.scalars(
            select(User).where(User.username.in_(["inspector1", "inspector2", "center"])))}
        for username, place_id, basis in (
                ("inspector1", city.districts[0], "Приказ о закреплении участкового инспектора № 14 (демо)"),
                ("inspector2", city.districts[1], "Приказ о закреплении участкового инспектора № 15 (демо)"),
                ("center", city.city_id, "Приказ о контроле ЦОУ за работой участковых № 3 (демо)")):
            if username in staff:
                assign(session, SYSTEM, None, user_id=staff[username], place_id=place_id, legal_basis=basis)
        for n, yard_place in enumerate(city.yards[:3]):
            yard = create_yard(session, SYSTEM, yard_place, date(2024 + n % 2, 3 + n, 1),
                               inspector_id=inspectors.get("inspector1" if n < 2 else "inspector2"),
                               characteristics={"floors": 9, "entrances": 2, "apartments": 72, "year_built": 1984,
                                                "management": "КСК «Демо»", "lighting": "да",
                                                "access_control": "домофон"},
                               notes="Сгенерированные данные (демо)")
            for k in range(4):
                add_person(session, vault, SYSTEM, yard, "resident", {
                    "name": FAKE[(n + k) % len(FAKE)], "apartment": str(10 + k), "phone": f"+7 700 000 00 {k:02d}",
                    "birth_date": "1990-01-01", "iin": fake_iin(n * 10 + k)})
            add_person(session, vault, SYSTEM, yard, "supervised", {
                "name": "Поднадзорный Демо", "apartment": "31", "basis": "ст. 48 УК (демо)",
                "supervision_from": (today - timedelta(days=300)).isoformat(),
                "supervision_to": (today + timedelta(days=20 + 30 * n)).isoformat()})
            add_person(session, vault, SYSTEM, yard, "firearm", {
                "name": "Охотник Демо", "apartment": "12", "weapon": "гладкоствольное (демо)",
                "permit_number": f"DEMO-{n}", "permit_expires": (today + timedelta(days=45)).isoformat()})
            add_person(session, vault, SYSTEM, yard, "rental", {"apartment": "7", "owner": "Хозяин Демо",
                                                                "tenant": "Жилец Демо"})
            add_person(session, vault, SYSTEM, yard, "volunteer", {"name": "Активист Демо", "phone": "+7 700 111 22 33",
                                                                   "role": "старший по дому"})
