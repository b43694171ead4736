"""The telecom's business (docs/cloud.md): plans, building contracts, subscribers and their states, activation codes
and printable notices, invoice runs and exports, payment imports, usage, the periodic checks.

Only platform admins and the telecom's operator admins (inside the places they manage) run it; to everyone else
these routes answer 404, as if they did not exist."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select
from starlette.concurrency import run_in_threadpool

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import not_found
from kuzet.api.limits import spool, suffix_of
from kuzet.api.routes.cloud_common import (
    IMPORT_REJECTED,
    Day,
    FlatStateName,
    PeriodText,
    Tiyn,
    business_of,
    rejected,
    service_errors,
)
from kuzet.api.routes.common import ERRORS, Id, Paging, errors, media
from kuzet.domain.cloud import CloudAction, Period
from kuzet.installation import Installation
from kuzet.services import audit
from kuzet.services.cloud import activation, billing, notices, payments, subscriptions, usage
from kuzet.services.cloud.common import Business, CloudNotFound
from kuzet.services.cloud.plans import list_plans, save_plan
from kuzet.services.cloud.tables import ImportRejected
from kuzet.store.db import load_by_ids
from kuzet.store.models import Place, User
from kuzet.store.models.cloud import Contract, Flat, Payment, Plan

router = APIRouter(prefix="/cloud", tags=["cloud"], responses=ERRORS)
MAX_PAYMENTS_FILE = 64 << 20


# --- plans ----------------------------------------------------------------------------------------------------------

class PlanIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    archive_days: int = Field(ge=1, le=3650)
    clip_downloads_per_month: int = Field(ge=0, le=10_000)
    price_tiyn: Tiyn
    active: bool = True


class PlanOut(BaseModel):
    id: int
    name: str
    archive_days: int
    clip_downloads_per_month: int
    price_tiyn: int
    currency: str
    active: bool


def _plan_out(p: Plan) -> PlanOut:
    return PlanOut(id=p.id, name=p.name, archive_days=p.archive_days, price_tiyn=p.price_tiyn, currency=p.currency,
                   clip_downloads_per_month=p.clip_downloads_per_month, active=p.active)


@router.get("/plans", response_model=list[PlanOut])
def get_plans(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[PlanOut]:
    with inst.db.session() as session:
        business_of(session, who.user)
        return [_plan_out(p) for p in list_plans(session)]


@router.post("/plans", response_model=PlanOut, status_code=201)
def post_plan(body: PlanIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> PlanOut:
    with inst.db.session() as session, service_errors():
        business_of(session, who.user)
        return _plan_out(save_plan(session, who.actor, **body.model_dump()))


@router.put("/plans/{plan_id}", response_model=PlanOut)
def put_plan(plan_id: Id, body: PlanIn, who: Caller = Depends(caller),
             inst: Installation = Depends(installation)) -> PlanOut:
    """Change a plan: the archive depth of its subscribers at once, the price from the next invoice run."""
    with inst.db.session() as session, service_errors():
        business_of(session, who.user)
        plan = session.get(Plan, plan_id)
        if plan is None:
            raise CloudNotFound("plan not found")
        return _plan_out(save_plan(session, who.actor, plan=plan, **body.model_dump()))


# --- contracts ------------------------------------------------------------------------------------------------------

class ContractIn(BaseModel):
    number: str = Field(min_length=1, max_length=64)
    building_id: Id
    plan_id: Id
    entrance_ids: list[Id] = Field(min_length=1, max_length=100)
    starts_on: Day
    ends_on: Day | None = None


class ContractOut(BaseModel):
    id: int
    number: str
    building_id: int
    building: str
    address: str | None
    plan_id: int
    plan: str
    entrance_ids: list[int]
    entrances: list[str]
    starts_on: date
    ends_on: date | None
    ended_at: datetime | None
    flats: int
    cameras: int


def _contract_out(session, c: Contract, counts: tuple[int, int] | None = None) -> ContractOut:  # noqa: ANN001
    """A contract as the API shows it. A list passes ``counts`` (``subscriptions.contract_counts``) and has loaded
    its places and plans (``load_by_ids``): a row then costs no statement of its own."""
    if counts is None:
        load_by_ids(session, Place, [c.building_id, *c.entrance_ids])
        counts = subscriptions.contract_counts(session, [c])[c.id]
    building = session.get(Place, c.building_id)
    names = {i: p.name for i in c.entrance_ids if (p := session.get(Place, i)) is not None}
    flats, cameras = counts
    return ContractOut(id=c.id, number=c.number, building_id=c.building_id, building=building.name,
                       address=building.address, plan_id=c.plan_id, plan=session.get(Plan, c.plan_id).name,
                       entrance_ids=list(c.entrance_ids), entrances=[names.get(i, "") for i in c.entrance_ids],
                       starts_on=c.starts_on, ends_on=c.ends_on, ended_at=c.ended_at, flats=flats, cameras=cameras)


def _contract(session, business: Business, contract_id: int) -> Contract:  # noqa: ANN001
    contract = session.get(Contract, contract_id)
    if contract is None or not business.covers(session.get(Place, contract.building_id)):
        raise not_found("contract not found")
    return contract


def _in_reach(session, business: Business):  # noqa: ANN001, ANN202
    ids = subscriptions.flats_in_reach(session, business)
    return None if ids is None else list(ids)


@router.get("/contracts", response_model=list[ContractOut])
def get_contracts(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[ContractOut]:
    with inst.db.session(readonly=True) as session:
        business = business_of(session, who.user)
        query = select(Contract).order_by(Contract.number)
        ids = _in_reach(session, business)
        if ids is not None:
            query = query.where(Contract.id.in_(ids))
        contracts = list(session.scalars(query))
        # every row's related objects and counts in a few statements, not a few a contract
        load_by_ids(session, Place, [p for c in contracts for p in (c.building_id, *c.entrance_ids)])
        load_by_ids(session, Plan, [c.plan_id for c in contracts])
        counts = subscriptions.contract_counts(session, contracts)
        return [_contract_out(session, c, counts[c.id]) for c in contracts]


@router.post("/contracts", response_model=ContractOut, status_code=201)
def post_contract(body: ContractIn, who: Caller = Depends(caller),
                  inst: Installation = Depends(installation)) -> ContractOut:
    """A building's contract: its entrances and plan. The cameras of those entrances and of the building's yards
    keep at least the plan's archive depth."""
    with inst.db.session() as session, service_errors():
        business = business_of(session, who.user)
        contract = subscriptions.create_contract(session, who.actor, business, **body.model_dump(),
                                                 organisation_id=who.user.organisation_id)
        return _contract_out(session, contract)


@router.get("/contracts/{contract_id}", response_model=ContractOut)
def get_contract(contract_id: Id, who: Caller = Depends(caller),
                 inst: Installation = Depends(installation)) -> ContractOut:
    with inst.db.session() as session:
        return _contract_out(session, _contract(session, business_of(session, who.user), contract_id))


@router.post("/contracts/{contract_id}/end", response_model=ContractOut)
def end_contract(contract_id: Id, who: Caller = Depends(caller),
                 inst: Installation = Depends(installation)) -> ContractOut:
    """End the contract: every subscriber of it ends, their residents lose access."""
    with inst.db.session() as session, service_errors():
        contract = _contract(session, business_of(session, who.user), contract_id)
        subscriptions.end_contract(session, who.actor, contract)
        return _contract_out(session, contract)


# --- subscribers ----------------------------------------------------------------------------------------------------

class FlatIn(BaseModel):
    entrance_id: Id
    number: str = Field(min_length=1, max_length=16)
    state: Literal["trial", "active"] = "trial"
    plan_id: Id | None = None
    resident_slots: int = Field(4, ge=1, le=20)


class ResidentOut(BaseModel):
    user_id: int
    username: str
    joined_at: datetime
    via: str


class FlatOut(BaseModel):
    id: int
    contract_id: int
    contract: str
    entrance_id: int
    number: str
    account: str
    plan_id: int
    plan: str
    state: str
    state_since: datetime
    state_reason: str | None
    trial_until: datetime | None
    resident_slots: int
    residents: list[ResidentOut]
    balance_tiyn: int
    code_expires_at: datetime | None


def _codes_of(session, flat_ids: list[int]) -> dict[int, datetime]:  # noqa: ANN001
    """When each flat's newest unrevoked activation code expires, in one statement (a page of flats)."""
    from kuzet.store.models.cloud import ActivationCode

    newest = select(func.max(ActivationCode.id)).where(ActivationCode.flat_id.in_(flat_ids),
                                                       ActivationCode.revoked_at.is_(None)) \
        .group_by(ActivationCode.flat_id)
    return dict(session.execute(select(ActivationCode.flat_id, ActivationCode.expires_at)
                                .where(ActivationCode.id.in_(newest))).all()) if flat_ids else {}


def _flat_out(session, flat: Flat, balances: dict[int, int] | None = None,  # noqa: ANN001
              page: tuple[dict, dict] | None = None) -> FlatOut:
    """A subscriber as the API shows it. A page passes ``balances`` and ``page`` (residents and activation codes of
    its flats) and has loaded its contracts, plans and users (``load_by_ids``): no statement a row."""
    plan = subscriptions.flat_plan(session, flat)
    residents_by_flat, codes = page if page is not None else (
        subscriptions.residents_of(session, [flat.id]), _codes_of(session, [flat.id]))
    residents = [ResidentOut(user_id=r.user_id, username=session.get(User, r.user_id).username, joined_at=r.joined_at,
                             via=r.via) for r in residents_by_flat.get(flat.id, [])]
    code = codes.get(flat.id)
    balance = (balances if balances is not None else billing.balances(session, [flat.id])).get(flat.id, 0)
    return FlatOut(id=flat.id, contract_id=flat.contract_id, contract=session.get(Contract, flat.contract_id).number,
                   entrance_id=flat.entrance_id, number=flat.number, account=flat.account, plan_id=plan.id,
                   plan=plan.name, state=flat.state, state_since=flat.state_since, state_reason=flat.state_reason,
                   trial_until=flat.trial_until, resident_slots=flat.resident_slots, residents=residents,
                   balance_tiyn=balance, code_expires_at=code)


def _flat(session, business: Business, flat_id: int) -> Flat:  # noqa: ANN001
    flat = session.get(Flat, flat_id)
    if flat is None:
        raise not_found("subscriber not found")
    _contract(session, business, flat.contract_id)
    return flat


class FlatPage(BaseModel):
    items: list[FlatOut]
    total: int
    limit: int
    offset: int


@router.get("/flats", response_model=FlatPage)
def get_flats(contract: Id | None = None, state: FlatStateName | None = None,
              q: str | None = Query(None, max_length=100, description="Account or flat number starts with"),
              paging: Paging = Depends(), who: Caller = Depends(caller),
              inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        business = business_of(session, who.user)
        query = select(Flat).order_by(Flat.contract_id, Flat.id)
        ids = _in_reach(session, business)
        if ids is not None:
            query = query.where(Flat.contract_id.in_(ids))
        if contract is not None:
            query = query.where(Flat.contract_id == contract)
        if state is not None:
            query = query.where(Flat.state == state)
        if q:
            query = query.where(or_(Flat.account.startswith(q, autoescape=True),
                                    Flat.number.startswith(q, autoescape=True)))
        page = paging.page(session, query)
        flats = page["items"]
        ids = [f.id for f in flats]
        owed = billing.balances(session, ids)
        contracts = load_by_ids(session, Contract, [f.contract_id for f in flats])
        load_by_ids(session, Plan, [f.plan_id or contracts[f.contract_id].plan_id for f in flats])
        residents = subscriptions.residents_of(session, ids)
        load_by_ids(session, User, [r.user_id for rs in residents.values() for r in rs])
        codes = _codes_of(session, ids)
        page["items"] = [_flat_out(session, f, owed, (residents, codes)) for f in flats]
        return page


@router.post("/contracts/{contract_id}/flats", response_model=FlatOut, status_code=201)
def post_flat(contract_id: Id, body: FlatIn, who: Caller = Depends(caller),
              inst: Installation = Depends(installation)) -> FlatOut:
    """A subscriber: a flat behind one of the contract's entrances, starting in trial (or active)."""
    with inst.db.session() as session, service_errors():
        contract = _contract(session, business_of(session, who.user), contract_id)
        flat = subscriptions.add_flat(session, who.actor, contract, trial_days=inst.settings.cloud.trial_days,
                                      **body.model_dump())
        return _flat_out(session, flat)


@router.get("/flats/{flat_id}", response_model=FlatOut)
def get_flat(flat_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> FlatOut:
    with inst.db.session() as session:
        return _flat_out(session, _flat(session, business_of(session, who.user), flat_id))


class StateIn(BaseModel):
    state: FlatStateName
    reason: str = Field("operator", min_length=1, max_length=32)


@router.post("/flats/{flat_id}/state", response_model=FlatOut)
def post_state(flat_id: Id, body: StateIn, who: Caller = Depends(caller),
               inst: Installation = Depends(installation)) -> FlatOut:
    """Move a subscriber to another state; its residents' grants follow at once (409 for a move the rules forbid)."""
    with inst.db.session() as session, service_errors():
        flat = _flat(session, business_of(session, who.user), flat_id)
        subscriptions.change_state(session, who.actor, flat, body.state, body.reason)
        return _flat_out(session, flat)


@router.delete("/flats/{flat_id}/residents/{user_id}", response_model=FlatOut)
def delete_resident(flat_id: Id, user_id: Id, who: Caller = Depends(caller),
                    inst: Installation = Depends(installation)) -> FlatOut:
    """A resident leaves the flat (moved out): their grants from it end."""
    with inst.db.session() as session, service_errors():
        flat = _flat(session, business_of(session, who.user), flat_id)
        subscriptions.remove_resident(session, who.actor, flat, user_id)
        return _flat_out(session, flat)


class CodeOut(BaseModel):
    flat_id: int
    code: str
    url: str
    expires_at: datetime


@router.post("/flats/{flat_id}/code", response_model=CodeOut, status_code=201)
def post_code(flat_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> CodeOut:
    """A new activation code for the flat (its earlier codes are revoked); shown once here, printable again."""
    with inst.db.session() as session, service_errors():
        flat = _flat(session, business_of(session, who.user), flat_id)
        issued = activation.issue_codes(session, who.actor, inst.keys, [flat], days=inst.settings.cloud.code_days)[0]
        return CodeOut(flat_id=flat.id, code=issued.code, expires_at=issued.expires_at,
                       url=notices.signup_url(inst.settings.cloud.portal_url, issued.code))


@router.delete("/flats/{flat_id}/code", status_code=204)
def delete_code(flat_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> Response:
    """Revoke the flat's activation codes (a lost notice)."""
    with inst.db.session() as session:
        flat = _flat(session, business_of(session, who.user), flat_id)
        activation.revoke_codes(session, who.actor, flat)
    return Response(status_code=204)


@router.post("/entrances/{place_id}/notices.pdf", response_class=Response, responses=media("application/pdf"))
def entrance_notices(place_id: Id, reissue: bool = False, who: Caller = Depends(caller),
                     inst: Installation = Depends(installation)) -> Response:
    """The entrance's printable notice: a card per subscriber with its activation code and QR code (Russian and
    Kazakh). Flats without a code in force get one; ``reissue`` replaces every code."""
    with inst.db.session() as session, service_errors():
        business = business_of(session, who.user)
        entrance = session.get(Place, place_id)
        if entrance is None or entrance.kind != "entrance" or not business.covers(entrance):
            raise CloudNotFound("entrance not found")
        building = session.get(Place, entrance.parent_id)
        flats = [f for f in session.scalars(select(Flat).where(Flat.entrance_id == entrance.id,
                                                               Flat.state != "ended"))]
        flats.sort(key=lambda f: (len(f.number), f.number))
        cards, fresh = [], []
        for flat in flats:
            code = None if reissue else activation.current_code(session, inst.keys, flat)
            if code is None:
                fresh.append(flat)
        issued = {i.flat_id: i for i in activation.issue_codes(session, who.actor, inst.keys, fresh,
                                                               days=inst.settings.cloud.code_days)} if fresh else {}
        for flat in flats:
            code = issued.get(flat.id) or activation.current_code(session, inst.keys, flat)
            free = max(0, flat.resident_slots - len(subscriptions.current_residents(session, flat)))
            cards.append(notices.Card(address=(building.address or building.name) if building else "",
                                      entrance=entrance.name, flat=flat.number, code=code.code,
                                      expires_at=code.expires_at, slots=free))
        audit.append(session, who.actor, CloudAction.CODES_ISSUED, object_type="entrance", object_id=entrance.id,
                     details={"printed": len(cards), "new": len(fresh)})
        body = notices.notices_pdf(cards, inst.settings.cloud.portal_url, inst.settings.timezone)
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="notices-{place_id}.pdf"'})


# --- billing --------------------------------------------------------------------------------------------------------

class RunIn(BaseModel):
    period: PeriodText
    due_on: Day | None = None
    replace: bool = False


class RunOut(BaseModel):
    period: str
    invoices: int
    amount_tiyn: int
    subscribers: int
    due_on: date
    replaced: int


@router.post("/invoices/run", response_model=RunOut)
def run_invoices(body: RunIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> RunOut:
    """Invoice every subscriber in reach for the month, pro rata by days active (409 if invoiced already, unless
    ``replace``)."""
    with inst.db.session() as session, service_errors():
        business = business_of(session, who.user)
        result = billing.run_invoices(session, who.actor, Period.parse(body.period), inst.settings.timezone,
                                      due_on=body.due_on, due_days=inst.settings.cloud.invoice_due_days,
                                      replace=body.replace, contract_ids=_in_reach(session, business))
        return RunOut(**result.__dict__)


class InvoiceOut(BaseModel):
    account: str
    contract: str
    address: str
    entrance: str
    flat: str
    plan: str
    price_tiyn: int
    days_active: int
    days_in_period: int
    amount_tiyn: int
    amount_kzt: str
    due_on: str


class InvoicePage(BaseModel):
    items: list[InvoiceOut]
    total: int
    amount_tiyn: int


@router.get("/invoices", response_model=InvoicePage)
def get_invoices(period: PeriodText, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=10**9),
                 who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        business = business_of(session, who.user)
        reach, month = _in_reach(session, business), Period.parse(period)
        rows = billing.invoice_rows(session, month, reach, limit=limit, offset=offset)
        total, amount = billing.invoice_totals(session, month, reach)
    return {"items": [dict(zip(billing.COLUMNS, r, strict=True)) for r in rows], "total": total,
            "amount_tiyn": amount}


@router.get("/invoices/export", response_class=Response,
            responses=media("text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
def export_invoices(period: PeriodText, format: Literal["csv", "xlsx"] = "csv", who: Caller = Depends(caller),
                    inst: Installation = Depends(installation)) -> Response:
    """The month's invoices for the billing system or the bank: CSV or XLSX, cells safe from formulas."""
    with inst.db.session() as session:
        business = business_of(session, who.user)
        rows = billing.invoice_rows(session, Period.parse(period), _in_reach(session, business))
        audit.append(session, who.actor, CloudAction.INVOICES_EXPORTED, object_type="period", object_id=period,
                     details={"format": format, "rows": len(rows)})
    name = f"invoices-{period}.{format}"
    if format == "xlsx":
        return Response(billing.invoices_xlsx(rows, period),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return Response(billing.invoices_csv(rows).encode("utf-8-sig"), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


class PaymentsOut(BaseModel):
    batch: str
    rows: int
    amount_tiyn: int
    reactivated: int


@router.post("/payments/import", response_model=PaymentsOut, responses=errors(413) | IMPORT_REJECTED)
async def import_payments(file: UploadFile = File(...), who: Caller = Depends(caller),
                          inst: Installation = Depends(installation)):  # noqa: ANN201
    """The bank's register (CSV or XLSX; columns account, amount in tenge, paid_on, reference; Russian headers
    accepted): every row valid or nothing imported, each bad row named. Flats suspended as unpaid whose overdue debt
    is paid are active again at once."""
    suffix = suffix_of(file.filename, ".csv")
    with await spool(file, min(MAX_PAYMENTS_FILE, inst.settings.http.max_upload_bytes), suffix) as tmp:
        def work():  # noqa: ANN202 - in a worker thread, never on the event loop
            with inst.db.session() as session:
                business = business_of(session, who.user)
                reach = _in_reach(session, business)
                flats = None if reach is None else set(session.scalars(
                    select(Flat.id).where(Flat.contract_id.in_(reach))))
                return payments.import_payments(session, who.actor, Path(tmp.name), inst.settings.timezone,
                                                grace_days=inst.settings.cloud.grace_days, flat_ids_in_reach=flats)

        try:
            result = await run_in_threadpool(work)
        except ImportRejected as exc:
            return rejected(exc)
    return PaymentsOut(**result.__dict__)


class PaymentOut(BaseModel):
    account: str
    amount_tiyn: int
    paid_on: date
    reference: str
    imported_at: datetime


@router.get("/payments", response_model=list[PaymentOut])
def get_payments(flat: Id | None = None, limit: int = Query(100, ge=1, le=1000), who: Caller = Depends(caller),
                 inst: Installation = Depends(installation)) -> list[PaymentOut]:
    with inst.db.session() as session:
        business = business_of(session, who.user)
        query = select(Payment, Flat.account).join(Flat, Flat.id == Payment.flat_id) \
            .order_by(Payment.id.desc()).limit(limit)
        reach = _in_reach(session, business)
        if reach is not None:
            query = query.where(Flat.contract_id.in_(reach))
        if flat is not None:
            query = query.where(Payment.flat_id == flat)
        return [PaymentOut(account=account, amount_tiyn=p.amount_tiyn, paid_on=p.paid_on, reference=p.reference,
                           imported_at=p.imported_at) for p, account in session.execute(query)]


class UsageOut(BaseModel):
    organisation_id: int | None
    organisation: str | None
    cameras: int
    bytes_stored: int
    archive_hours_viewed: float
    archive_views: int
    live_sessions: int
    live_hours_viewed: float


@router.get("/usage", response_model=list[UsageOut])
def get_usage(period: PeriodText, who: Caller = Depends(caller),
              inst: Installation = Depends(installation)) -> list[dict]:
    """Per organisation owning cameras: cameras, bytes their archive holds, archive hours viewed and live sessions
    in the month (from the audit log)."""
    with inst.db.session() as session:
        business_of(session, who.user)
        return usage.usage(session, Period.parse(period), inst.settings.timezone)


class ChecksOut(BaseModel):
    agreements_expired: int
    trials_ended: int
    suspended: int
    resumed: int


@router.post("/checks", response_model=ChecksOut)
def run_checks(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Now, rather than at the next minute: expire agreements, end trials, suspend flats with overdue debt and
    resume those that paid."""
    from kuzet.services.cloud.runtime import check_once

    with inst.db.session() as session:
        business_of(session, who.user)  # the checks are the service's own rules: whoever runs it may ask sooner
    return check_once(inst)
