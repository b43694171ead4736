"""The telecom's business in the demo city.

``seed_business`` runs inside ``seed_demo_city`` (every demo installation, tests included): plans, a contract per
building, the demo residents as subscribers of their flats (their access comes from the subscription), and the routing
agreements that give each duty unit its district and the control centre the city. ``seed`` (the full demo only) adds
history to look at: two months of invoices and payments, more subscribers in every state, activation codes, an
agreement about to expire and one renewed, required archive depths per camera kind.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.domain.cloud import FlatState, Period
from kuzet.installation import Installation
from kuzet.services.audit import SYSTEM
from kuzet.services.cloud import agreements, billing, subscriptions
from kuzet.services.cloud.activation import issue_codes
from kuzet.services.cloud.compliance import save_requirement
from kuzet.services.cloud.plans import save_plan
from kuzet.services.demo import DemoCity
from kuzet.store.models import Organisation, Place, User
from kuzet.store.models.cloud import Contract, Flat

TZ = "Asia/Almaty"
PLANS = [("Базовый (демо)", 7, 3, 1_500_00), ("Стандарт (демо)", 30, 10, 2_500_00),
         ("Расширенный (демо)", 90, 30, 4_000_00)]
CONTRACTS = ["2024-118", "2024-131", "2024-140", "2024-152"]  # buildings 1..4
RESIDENTS = {"resident1": (0, 0, "12"), "resident2": (1, 0, "7")}  # building index, entrance index, flat


def seed_business(session: Session, city: DemoCity, users: dict[str, User], since: datetime,
                  tz: str = TZ) -> None:
    plans = [save_plan(session, SYSTEM, name=name, archive_days=days, clip_downloads_per_month=clips,
                       price_tiyn=price) for name, days, clips, price in PLANS]
    telecom = city.organisations["telecom"]
    for b, building_id in enumerate(city.buildings):
        entrances = city.entrances[2 * b:2 * b + 2]
        subscriptions.create_contract(session, SYSTEM, None, number=CONTRACTS[b], building_id=building_id,
                                      plan_id=plans[1].id, entrance_ids=entrances, starts_on=since.date(),
                                      organisation_id=telecom)
    for username, (b, e, number) in RESIDENTS.items():
        contract = session.scalar(select(Contract).where(Contract.number == CONTRACTS[b]))
        flat = subscriptions.add_flat(session, SYSTEM, contract, entrance_id=city.entrances[2 * b + e],
                                      number=number, state=FlatState.ACTIVE, at=since)
        subscriptions.add_resident(session, SYSTEM, flat, users[username], via="operator")
    # Routing agreements: each district's cameras to its duty unit, the whole city to the control centre.
    ends = date(date.today().year + 2, 12, 31)
    for d, district_id in enumerate(city.districts, 1):
        agreements.create_agreement(session, SYSTEM, None, agreements.Terms(
            number=f"ДЧ-{d}/2024 (демо)", party_org_id=telecom, holder_org_id=city.organisations[f"duty{d}"],
            starts_on=since.date(), ends_on=ends, scope=["view_live", "view_archive", "export"],
            legal_basis=f"Соглашение о выводе камер района в дежурную часть № {d} (демо)",
            place_ids=[district_id], camera_ids=[], archive_days_required=30), tz)
    agreements.create_agreement(session, SYSTEM, None, agreements.Terms(
        number="ЦОУ-1/2024 (демо)", party_org_id=telecom, holder_org_id=city.organisations["centre"],
        starts_on=since.date(), ends_on=ends, scope=["view_live", "view_archive", "export", "ptz"],
        legal_basis="Приказ ДП о выводе камер в ЦОУ № 1 (демо)", place_ids=[city.city_id], camera_ids=[]), tz)


def seed(inst: Installation, city: DemoCity) -> None:
    tz = inst.settings.timezone
    now = datetime.now(UTC)
    with inst.db.session() as session:
        for kind, days, basis in (("entrance", 30, "Договор об оказании услуги (демо)"),
                                  ("school", 30, "Требования к видеонаблюдению в школах (демо)"),
                                  ("public_place", 30, "Требования к общественным местам (демо)"),
                                  ("road", 30, "Требования ДП к камерам на въездах (демо)")):
            save_requirement(session, SYSTEM, kind, days, basis)
        contracts = list(session.scalars(select(Contract).order_by(Contract.id)))
        flats_made = []
        # More subscribers of every state, without accounts: what the telecom's console lists and bills.
        for contract in contracts:
            for e, entrance_id in enumerate(contract.entrance_ids):
                for k in range(1, 4):
                    number = str(20 * e + 10 * k + contract.id)
                    if session.scalar(select(Flat.id).where(Flat.contract_id == contract.id,
                                                            Flat.number == number)):
                        continue
                    flats_made.append(subscriptions.add_flat(
                        session, SYSTEM, contract, entrance_id=entrance_id, number=number,
                        state=FlatState.ACTIVE if k < 3 else FlatState.TRIAL, at=now - timedelta(days=70)))
        # Two months of invoices and the payments for them (one flat has not paid: suspended for it).
        for back in (2, 1):
            year, month = now.year, now.month - back
            if month <= 0:
                year, month = year - 1, month + 12
            period = Period(year, month)
            billing.run_invoices(session, SYSTEM, period, tz, due_on=period.after + timedelta(days=14))
        unpaid = flats_made[0] if flats_made else None
        from kuzet.store.models.cloud import Invoice, Payment

        for n, invoice in enumerate(session.scalars(select(Invoice).order_by(Invoice.id)), 1):
            if unpaid is not None and invoice.flat_id == unpaid.id:
                continue
            session.add(Payment(flat_id=invoice.flat_id, amount_tiyn=invoice.amount_tiyn,
                                paid_on=min(invoice.due_on - timedelta(days=3), now.date()),
                                reference=f"DEMO-{invoice.period}-{n}", batch="demo"))
        session.flush()
        if unpaid is not None:
            subscriptions.change_state(session, SYSTEM, unpaid, FlatState.SUSPENDED, "unpaid")
        # Codes for the flats without residents, printable from the console.
        issue_codes(session, SYSTEM, inst.keys, [f for f in flats_made if f.state != FlatState.SUSPENDED][:6],
                    days=inst.settings.cloud.code_days)
        # A school routes its own cameras to the centre for a month (expiring soon), renewed for a year.
        school_org = session.get(Organisation, city.organisations["school2"])
        centre = city.organisations["centre"]
        school_place = session.get(Place, city.schools[1])
        if school_org is not None and school_place is not None:
            short = agreements.create_agreement(session, SYSTEM, None, agreements.Terms(
                number="Школа-12/ЦОУ (демо)", party_org_id=school_org.id, holder_org_id=centre,
                starts_on=(now - timedelta(days=20)).date(), ends_on=(now + timedelta(days=10)).date(),
                scope=["view_live"], legal_basis="Соглашение школы № 12 с ЦОУ (демо)",
                place_ids=[school_place.id], camera_ids=[], archive_days_required=30), tz)
            agreements.renew_agreement(session, SYSTEM, None, short, tz, number="Школа-12/ЦОУ-2 (демо)",
                                       ends_on=(now + timedelta(days=375)).date())
