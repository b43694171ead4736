"""Billing: pro-rata invoices over a month with mid-month activations and suspensions, exact to the tiyn; invoice
exports with neutralised cells; payment imports all or nothing, naming every bad row, reactivating flats suspended
as unpaid; subscription states and the grants that follow them, on record. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kuzet.domain.cloud import FlatState, Period, billed_days, parse_tenge, pro_rata
from kuzet.installation import Installation
from kuzet.services import access
from kuzet.services.audit import SYSTEM
from kuzet.services.cloud import billing, subscriptions
from kuzet.services.cloud.payments import import_payments
from kuzet.services.cloud.plans import save_plan
from kuzet.services.cloud.tables import ImportRejected
from kuzet.store.models import AuditRecord, Camera, Grant, User
from kuzet.store.models.cloud import Contract, Flat
from tests.conftest import login

TZ = "Asia/Almaty"  # UTC+5


def local(day: date, hour: int = 12) -> datetime:
    """Noon of a local day, in UTC."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - timedelta(hours=5)


def test_days_and_amounts_are_integers_by_the_rule() -> None:
    march = Period.parse("2025-03")
    assert march.days == 31 and str(march) == "2025-03"
    # Activated on the 10th, suspended on the 20th: the 10th..19th, ten days.
    assert billed_days([(date(2025, 3, 10), "active"), (date(2025, 3, 20), "suspended")], march) == 10
    # Active before the month, suspended on the 5th, back on the 25th: 1..4 and 25..31.
    assert billed_days([(date(2025, 1, 1), "active"), (date(2025, 3, 5), "suspended"),
                        (date(2025, 3, 25), "active")], march) == 4 + 7
    assert billed_days([(date(2025, 3, 7), "active"), (date(2025, 3, 7), "suspended")], march) == 0
    assert billed_days([(date(2025, 4, 1), "active")], march) == 0
    assert billed_days([(date(2025, 2, 1), "trial")], march) == 0
    assert pro_rata(250_000, 10, 31) == 80_645  # 80 645.16… tiyn
    assert pro_rata(250_000, 31, 31) == 250_000
    assert pro_rata(1, 1, 2) == 1  # half a tiyn rounds up
    assert parse_tenge("1 500,50") == 150_050 and parse_tenge(1500.1) == 150_010 and parse_tenge("2500") == 250_000
    for bad in ("1500.001", "-5", "0", "abc", "nan", "inf", None, True):
        with pytest.raises(ValueError):
            parse_tenge(bad)
    for bad in ("2025-13", "25-03", "2025-3", "1999-12", ""):
        with pytest.raises(ValueError):
            Period.parse(bad)


def _demo(inst: Installation):  # noqa: ANN202
    from kuzet.services.demo import seed_demo_city

    with inst.db.session() as session:
        return seed_demo_city(session, inst.keys)


def test_an_invoice_run_bills_mid_month_activations_and_suspensions_exactly(inst: Installation) -> None:
    city = _demo(inst)
    march = Period(2025, 3)
    with inst.db.session() as session:
        plan = save_plan(session, SYSTEM, name="Тест", archive_days=14, clip_downloads_per_month=2,
                         price_tiyn=310_000)  # 3100 tenge: 100 tenge a day in March
        contract = subscriptions.create_contract(session, SYSTEM, None, number="T-1", building_id=city.buildings[2],
                                                 plan_id=plan.id, entrance_ids=[city.entrances[4]],
                                                 starts_on=date(2025, 1, 1))
        entrance = city.entrances[4]

        def flat(number: str, state: str, at: datetime) -> Flat:
            return subscriptions.add_flat(session, SYSTEM, contract, entrance_id=entrance, number=number,
                                          state=state, at=at)

        flat("1", "active", local(date(2025, 2, 1)))
        flat("2", "active", local(date(2025, 3, 10)))  # active from the 10th: 22 days
        stopped = flat("3", "active", local(date(2025, 2, 15)))
        subscriptions.change_state(session, SYSTEM, stopped, "suspended", "unpaid", at=local(date(2025, 3, 20)))
        back = flat("4", "active", local(date(2025, 1, 5)))
        subscriptions.change_state(session, SYSTEM, back, "suspended", "unpaid", at=local(date(2025, 3, 5)))
        subscriptions.change_state(session, SYSTEM, back, "active", "paid", at=local(date(2025, 3, 25)))
        trial = flat("5", "trial", local(date(2025, 3, 1)))
        subscriptions.change_state(session, SYSTEM, trial, "active", "trial_over", at=local(date(2025, 3, 15)))
        # 18:30 UTC on the 31st is 23:30 in Almaty: active at the end of March 31st, one day.
        flat("6", "active", datetime(2025, 3, 31, 18, 30, tzinfo=UTC))
        ended = flat("7", "active", local(date(2025, 2, 1)))
        subscriptions.change_state(session, SYSTEM, ended, "ended", "request", at=local(date(2025, 3, 1), 1))
        result = billing.run_invoices(session, SYSTEM, march, TZ, due_on=date(2025, 4, 15),
                                      contract_ids=[contract.id])
    expected = {"1": (31, 310_000), "2": (22, 220_000), "3": (19, 190_000), "4": (4 + 7, 110_000),
                "5": (17, 170_000), "6": (1, 10_000),
                "7": (0, 0)}
    with inst.db.session() as session:
        rows = {r[4]: r for r in billing.invoice_rows(session, march, [contract.id])}
        assert set(rows) == {k for k, (days, _) in expected.items() if days}, rows.keys()
        for number, (days, amount) in expected.items():
            if days:
                assert (rows[number][7], rows[number][9]) == (days, amount), number
        assert result.invoices == 6 and result.amount_tiyn == sum(a for _, a in expected.values()) == 1_010_000
        # On record: one audit record for the run with its totals.
        record = session.scalar(select(AuditRecord).where(AuditRecord.action == "cloud.invoices_run"))
        assert record.details["amount_tiyn"] == result.amount_tiyn and record.object_id == "2025-03"
        # Running it again is refused unless replaced, then gives the same.
        with pytest.raises(billing.CloudConflict):
            billing.run_invoices(session, SYSTEM, march, TZ, contract_ids=[contract.id])
        again = billing.run_invoices(session, SYSTEM, march, TZ, due_on=date(2025, 4, 15), replace=True,
                                     contract_ids=[contract.id])
        assert (again.invoices, again.amount_tiyn, again.replaced) == (6, result.amount_tiyn, 6)


def test_states_follow_the_rules_and_grants_follow_the_states(inst: Installation) -> None:
    city = _demo(inst)
    with inst.db.session() as session:
        resident = session.scalar(select(User).where(User.username == "resident1"))
        flat = subscriptions.flats_of(session, resident)[0]
        camera = session.get(Camera, city.cameras["b1e1"])
        yard = session.get(Camera, city.cameras["b1yard"])
        assert {r.value for r in access.camera_rights(session, resident, camera)} == {
            "view_live", "view_archive", "export"}
        grants = session.scalars(select(Grant).where(Grant.source == f"flat:{flat.id}",
                                                     Grant.revoked_at.is_(None))).all()
        assert len(grants) == 2 and {g.archive_days for g in grants} == {30}
        # The archive reaches back the plan's 30 days, no further.
        floor = access.archive_floor(session, resident, camera)
        assert timedelta(days=29, hours=23) < datetime.now(UTC) - floor <= timedelta(days=30, minutes=1)
        subscriptions.change_state(session, SYSTEM, flat, "suspended", "unpaid")
        assert access.camera_rights(session, resident, camera) == frozenset()
        assert access.camera_rights(session, resident, yard) == frozenset()
        with pytest.raises(subscriptions.CloudConflict, match="cannot become trial"):
            subscriptions.change_state(session, SYSTEM, flat, "trial", "x")
        subscriptions.change_state(session, SYSTEM, flat, "active", "paid")
        assert "view_live" in {r.value for r in access.camera_rights(session, resident, camera)}
        changes = session.scalars(select(AuditRecord).where(AuditRecord.action == "cloud.subscription_changed",
                                                            AuditRecord.object_id == str(flat.id))).all()
        assert [(r.details["from"], r.details["to"], r.details["reason"]) for r in changes] == [
            ("active", "suspended", "unpaid"), ("suspended", "active", "paid")]
        revoked = session.scalars(select(AuditRecord).where(AuditRecord.action == "grant.revoked")).all()
        assert len(revoked) == 2


def _csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def test_payment_imports_are_all_or_nothing_and_reactivate_unpaid_flats(inst: Installation, tmp_path: Path) -> None:
    _demo(inst)
    today = datetime.now(UTC).date()
    with inst.db.session() as session:
        resident = session.scalar(select(User).where(User.username == "resident1"))
        flat = subscriptions.flats_of(session, resident)[0]
        last = Period(today.year, today.month - 1) if today.month > 1 else Period(today.year - 1, 12)
        billing.run_invoices(session, SYSTEM, last, TZ, due_on=today - timedelta(days=1))
        owed = billing.balances(session, [flat.id])[flat.id]
        assert owed == 250_000  # the whole month on the demo's standard plan
        assert billing.enforce_payment(session, SYSTEM, TZ) == {"suspended": 2, "resumed": 0}
        account = flat.account
        assert flat.state == FlatState.SUSPENDED and flat.state_reason == "unpaid"
    bad = tmp_path / "bad.csv"
    bad.write_text(_csv([["лицевой счёт", "сумма", "дата", "номер платежа"],
                         [account, "1250,00", today.isoformat(), "P-1"],
                         ["no-such", "10", today.isoformat(), "P-2"],
                         [account, "12.345", today.isoformat(), "P-3"],
                         [account, "10", "31.02.2025", "P-4"],
                         [account, "10", today.isoformat(), "P-1"],
                         [account, "10", (today + timedelta(days=3)).isoformat(), ""]]), encoding="utf-8")
    with inst.db.session() as session:
        with pytest.raises(ImportRejected) as caught:
            import_payments(session, SYSTEM, bad, TZ)
    lines = {e.line: e.message for e in caught.value.errors}
    assert set(lines) == {3, 4, 5, 6, 7}, lines
    assert "unknown" in lines[3] and "two decimals" in lines[4] and "not a date" in lines[5]
    assert "repeats line 2" in lines[6] and "future" in lines[7] and "reference is empty" in lines[7]
    with inst.db.session() as session:
        assert billing.balances(session)[flat.id] == 250_000  # nothing was imported
    good = tmp_path / "good.csv"
    good.write_text(_csv([["account", "amount", "paid_on", "reference"],
                          [account, "1000", today.isoformat(), "P-10"],
                          [account, "1500.00", today.isoformat(), "P-11"]]), encoding="utf-8")
    with inst.db.session() as session:
        result = import_payments(session, SYSTEM, good, TZ)
    assert (result.rows, result.amount_tiyn, result.reactivated) == (2, 250_000, 1)
    with inst.db.session() as session:
        flat = session.get(Flat, flat.id)
        assert flat.state == FlatState.ACTIVE and flat.state_reason == "paid"
        with pytest.raises(ImportRejected, match="imported before"):
            import_payments(session, SYSTEM, good, TZ)


def test_invoice_exports_are_safe_to_open_and_the_api_keeps_to_the_business(demo_inst: Installation,
                                                                           demo_client: TestClient) -> None:
    import openpyxl

    city = demo_inst.city
    with demo_inst.db.session() as session:
        contract = session.scalar(select(Contract).where(Contract.building_id == city.buildings[3]))
        flat = subscriptions.add_flat(session, SYSTEM, contract, entrance_id=contract.entrance_ids[0],
                                      number="=HYPERLINK(1)", state="active", at=local(date(2024, 12, 1)))
    operator = login(demo_client, "operator")
    run = demo_client.post("/api/v1/cloud/invoices/run", headers=operator, json={"period": "2025-01"})
    assert run.status_code == 200 and run.json()["invoices"] >= 3, run.text
    assert demo_client.post("/api/v1/cloud/invoices/run", headers=operator,
                            json={"period": "2025-01"}).status_code == 409
    text = demo_client.get("/api/v1/cloud/invoices/export", headers=operator,
                           params={"period": "2025-01"}).content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    mine = [r for r in rows if r[0] == flat.account]
    assert mine and mine[0][4] == "'=HYPERLINK(1)" and mine[0][9] == "250000" and mine[0][10] == "2500.00"
    xlsx = demo_client.get("/api/v1/cloud/invoices/export", headers=operator,
                           params={"period": "2025-01", "format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert any(r[4] == "'=HYPERLINK(1)" and r[9] == 250000 for r in cells)
    # The resident, the police and the school see none of it.
    for name in ("resident1", "duty1", "school7", "auditor"):
        assert demo_client.get("/api/v1/cloud/invoices", headers=login(demo_client, name),
                               params={"period": "2025-01"}).status_code == 404
