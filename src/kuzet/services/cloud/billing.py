"""The monthly invoice run, its export (CSV, XLSX), balances, and suspension of unpaid flats.

Per subscriber and month: the plan (the flat's own, else its contract's), the days it was active — a day counts when
the flat is active at its end, in the installation's time zone (``domain.cloud.billed_days``) — and the amount
``price × days / days in month`` in whole tiyn, half a tiyn up. Trial, suspended and ended days cost nothing. Money is
integers of tiyn throughout; files show tenge with two decimals beside the exact tiyn.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from kuzet.domain.cloud import CloudAction, FlatState, Period, billed_days, format_tenge, pro_rata
from kuzet.domain.spreadsheets import csv_text, safe_cell
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.services.cloud.common import CloudConflict, end_of_day, local_date, today
from kuzet.store.db import utcnow
from kuzet.store.models import Place
from kuzet.store.models.cloud import Contract, Flat, Invoice, Payment, Plan, SubscriptionChange

BATCH = 20_000


@dataclass(frozen=True)
class RunResult:
    period: str
    invoices: int
    amount_tiyn: int
    subscribers: int
    due_on: date
    replaced: int


def run_invoices(session: Session, actor: Actor, period: Period, tz: str, *, due_on: date | None = None,
                 due_days: int = 15, replace: bool = False, contract_ids: list[int] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Invoice every subscriber (of ``contract_ids``, or all) for ``period``; one audit record for the run.

    A period already invoiced is refused (409) unless ``replace``: then its invoices are made again from the current
    history (a late correction of a state change)."""
    existing = select(Invoice.id).join(Flat, Flat.id == Invoice.flat_id).where(Invoice.period == str(period))
    if contract_ids is not None:
        existing = existing.where(Flat.contract_id.in_(contract_ids))
    replaced = session.scalar(select(func.count()).select_from(existing.subquery())) or 0
    if replaced and not replace:
        raise CloudConflict(f"{period} is invoiced already ({replaced} invoices); run it again with replace")
    if replaced:
        session.execute(delete(Invoice).where(Invoice.id.in_(existing)))
    due_on = due_on or today(tz) + timedelta(days=due_days)
    period_end = end_of_day(period.last, tz)
    plans = {p.id: p for p in session.scalars(select(Plan))}
    flat_query = select(Flat.id, Flat.plan_id, Contract.plan_id).join(Contract, Contract.id == Flat.contract_id) \
        .where(Flat.created_at < period_end)
    change_query = select(SubscriptionChange.flat_id, SubscriptionChange.at, SubscriptionChange.to_state) \
        .where(SubscriptionChange.at < period_end)
    if contract_ids is not None:
        flat_query = flat_query.where(Flat.contract_id.in_(contract_ids))
        change_query = change_query.join(Flat, Flat.id == SubscriptionChange.flat_id) \
            .where(Flat.contract_id.in_(contract_ids))
    flats = session.execute(flat_query).all()
    history: dict[int, list[tuple[date, str]]] = defaultdict(list)
    to_local = LocalDates(tz)
    for flat_id, at, to_state in session.execute(change_query.order_by(SubscriptionChange.flat_id,
                                                                       SubscriptionChange.at,
                                                                       SubscriptionChange.id)):
        history[flat_id].append((to_local(at), to_state))
    rows, total = [], 0
    now = utcnow()
    for n, (flat_id, own_plan, contract_plan) in enumerate(flats, 1):
        days = billed_days(history.get(flat_id, []), period)
        if days:
            plan = plans[own_plan or contract_plan]
            amount = pro_rata(plan.price_tiyn, days, period.days)
            total += amount
            rows.append({"flat_id": flat_id, "period": str(period), "plan_id": plan.id, "plan_name": plan.name,
                         "price_tiyn": plan.price_tiyn, "days_active": days, "days_in_period": period.days,
                         "amount_tiyn": amount, "due_on": due_on, "created_at": now})
        if len(rows) >= BATCH:
            session.connection().execute(insert(Invoice.__table__), rows)
            rows = []
            if progress:
                progress(n, len(flats))
    if rows:
        session.connection().execute(insert(Invoice.__table__), rows)
    if progress:
        progress(len(flats), len(flats))
    count = session.scalar(select(func.count()).select_from(Invoice).where(Invoice.period == str(period))) or 0
    audit.append(session, actor, CloudAction.INVOICES_RUN, object_type="period", object_id=str(period),
                 details={"invoices": count, "amount_tiyn": total, "subscribers": len(flats),
                          "due_on": due_on.isoformat(), "replaced": replaced})
    return RunResult(str(period), count, total, len(flats), due_on, replaced)


class LocalDates:
    """``local_date`` for many instants: the zone's offset is looked up once per UTC day (exactly, where the offset
    changes within that day)."""

    def __init__(self, tz: str) -> None:
        from kuzet.services.cloud.common import zone

        self.zone = zone(tz)
        self.offsets: dict[date, timedelta | None] = {}

    def __call__(self, moment: datetime) -> date:
        from datetime import UTC

        moment = moment.astimezone(UTC) if moment.tzinfo is not UTC else moment
        day = moment.date()
        offset = self.offsets.get(day, False)
        if offset is False:
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            before, after = self.zone.utcoffset(start), self.zone.utcoffset(start + timedelta(days=1))
            offset = self.offsets[day] = before if before == after else None
        if offset is None:
            return moment.astimezone(self.zone).date()
        return (moment + offset).date()


# --- reading and exporting ------------------------------------------------------------------------------------------

COLUMNS = ["account", "contract", "address", "entrance", "flat", "plan", "price_tiyn", "days_active",
           "days_in_period", "amount_tiyn", "amount_kzt", "due_on"]


def _period_invoices(query, period: Period, contract_ids: list[int] | None):  # noqa: ANN001, ANN202
    query = query.join(Flat, Flat.id == Invoice.flat_id).where(Invoice.period == str(period))
    return query if contract_ids is None else query.where(Flat.contract_id.in_(contract_ids))


def invoice_rows(session: Session, period: Period, contract_ids: list[int] | None = None, *,
                 limit: int | None = None, offset: int = 0) -> list[list]:
    """The period's invoices (of ``contract_ids``' flats), ``limit`` of them from ``offset``: one statement, the
    entrances' names joined (not the city's entrances loaded)."""
    from sqlalchemy.orm import aliased

    entrance = aliased(Place)
    query = _period_invoices(
        select(Flat.account, Contract.number, Place.address, entrance.name, Flat.number, Invoice.plan_name,
               Invoice.price_tiyn, Invoice.days_active, Invoice.days_in_period, Invoice.amount_tiyn, Invoice.due_on),
        period, contract_ids)
    query = (query.join(Contract, Contract.id == Flat.contract_id).join(Place, Place.id == Contract.building_id)
             .outerjoin(entrance, entrance.id == Flat.entrance_id).order_by(Contract.number, Flat.id))
    if limit is not None:
        query = query.limit(limit).offset(offset)
    return [[account, number, address or "", entrance_name or "", flat, plan, price, days, dim, amount,
             format_tenge(amount), due.isoformat()]
            for account, number, address, entrance_name, flat, plan, price, days, dim, amount, due in
            session.execute(query)]


def invoice_totals(session: Session, period: Period, contract_ids: list[int] | None = None) -> tuple[int, int]:
    """(how many invoices, their amount in tiyn) of the period: one statement."""
    from sqlalchemy import func

    count, amount = session.execute(_period_invoices(
        select(func.count(Invoice.id), func.coalesce(func.sum(Invoice.amount_tiyn), 0)), period,
        contract_ids)).one()
    return int(count), int(amount)


def invoices_csv(rows: list[list]) -> str:
    return csv_text(COLUMNS, rows)


def invoices_xlsx(rows: list[list], title: str) -> bytes:
    """Every cell through ``safe_cell``; amounts in tenge as numbers with two decimals, tiyn as integers."""
    from decimal import Decimal

    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(title[:31] or "invoices")
    sheet.append([safe_cell(c) for c in COLUMNS])
    for row in rows:
        out = [safe_cell(v) for v in row]
        out[10] = Decimal(row[10])
        sheet.append(out)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


# --- balances and non-payment ---------------------------------------------------------------------------------------

def balances(session: Session, flat_ids: list[int] | None = None) -> dict[int, int]:
    """Invoiced minus paid, per flat (tiyn; positive: owes)."""
    inv = select(Invoice.flat_id, func.sum(Invoice.amount_tiyn)).group_by(Invoice.flat_id)
    pay = select(Payment.flat_id, func.sum(Payment.amount_tiyn)).group_by(Payment.flat_id)
    if flat_ids is not None:
        inv, pay = inv.where(Invoice.flat_id.in_(flat_ids)), pay.where(Payment.flat_id.in_(flat_ids))
    out: dict[int, int] = defaultdict(int)
    for flat_id, amount in session.execute(inv):
        out[flat_id] += int(amount or 0)
    for flat_id, amount in session.execute(pay):
        out[flat_id] -= int(amount or 0)
    return dict(out)


def overdue(session: Session, on: date, grace_days: int = 0, flat_ids: list[int] | None = None) -> dict[int, int]:
    """Flats owing money of invoices due before ``on - grace_days``: flat → overdue debt in tiyn (> 0 only).

    Payments settle the oldest invoices first, so the overdue debt is the balance less what is not yet due."""
    limit = on - timedelta(days=grace_days)
    not_due = select(Invoice.flat_id, func.sum(Invoice.amount_tiyn)).where(Invoice.due_on >= limit) \
        .group_by(Invoice.flat_id)
    if flat_ids is not None:
        not_due = not_due.where(Invoice.flat_id.in_(flat_ids))
    pending = {flat_id: int(amount or 0) for flat_id, amount in session.execute(not_due)}
    return {flat_id: owed - pending.get(flat_id, 0) for flat_id, owed in balances(session, flat_ids).items()
            if owed - pending.get(flat_id, 0) > 0}


def enforce_payment(session: Session, actor: Actor, tz: str, grace_days: int = 0, now: datetime | None = None,
                    flat_ids: list[int] | None = None) -> dict[str, int]:
    """Suspend active flats with overdue debt ("unpaid"); make flats suspended as unpaid active again once nothing
    is overdue ("paid"). Returns how many of each."""
    from kuzet.services.cloud.subscriptions import change_state

    now = now or utcnow()
    debts = overdue(session, local_date(now, tz), grace_days, flat_ids)
    suspended = resumed = 0
    candidates = select(Flat).where(Flat.state.in_([FlatState.ACTIVE.value, FlatState.SUSPENDED.value]))
    if flat_ids is not None:
        candidates = candidates.where(Flat.id.in_(flat_ids))
    else:
        candidates = candidates.where((Flat.id.in_(list(debts)) & (Flat.state == FlatState.ACTIVE.value))
                                      | ((Flat.state == FlatState.SUSPENDED.value) & (Flat.state_reason == "unpaid")))
    for flat in session.scalars(candidates.order_by(Flat.id)):
        if flat.state == FlatState.ACTIVE and flat.id in debts:
            change_state(session, actor, flat, FlatState.SUSPENDED, "unpaid", at=now)
            suspended += 1
        elif flat.state == FlatState.SUSPENDED and flat.state_reason == "unpaid" and flat.id not in debts:
            change_state(session, actor, flat, FlatState.ACTIVE, "paid", at=now)
            resumed += 1
    return {"suspended": suspended, "resumed": resumed}


def end_trials(session: Session, actor: Actor, now: datetime | None = None) -> int:
    """Trials that ran out become active (billed from then on)."""
    from kuzet.services.cloud.subscriptions import change_state

    now = now or utcnow()
    flats = session.scalars(select(Flat).where(Flat.state == FlatState.TRIAL.value, Flat.trial_until.is_not(None),
                                               Flat.trial_until <= now)).all()
    for flat in flats:
        change_state(session, actor, flat, FlatState.ACTIVE, "trial_over", at=now)
    return len(flats)
