"""Importing payments (the bank's register as CSV or XLSX): every row valid or nothing imported, every bad row named;
flats suspended as unpaid are active again as soon as nothing they owe is overdue."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from kuzet.domain.cloud import CloudAction, FlatState, parse_tenge
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.services.cloud.billing import enforce_payment
from kuzet.services.cloud.tables import ImportRejected, RowError, columns, read_table
from kuzet.store.db import utcnow
from kuzet.store.models.cloud import Flat, Payment

ALIASES = {
    "account": {"лицевой счет", "лицевой счёт", "счет", "счёт", "дербес шот", "шот"},
    "amount": {"сумма", "сома", "amount_kzt", "тенге"},
    "paid_on": {"дата", "дата платежа", "күні", "date", "paid"},
    "reference": {"номер платежа", "референс", "ref", "reference_id", "төлем нөмірі", "id"},
}
REQUIRED = ["account", "amount", "paid_on", "reference"]
CHUNK = 5_000


@dataclass(frozen=True)
class PaymentsResult:
    batch: str
    rows: int
    amount_tiyn: int
    reactivated: int


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return _day_text(str(value or "").strip())


@functools.lru_cache(maxsize=4096)
def _day_text(text: str) -> date:
    """A register has few distinct dates: each is parsed once."""
    if len(text) == 10 and text[4] == "-":
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    for fmt in ("%Y-%m-%d", "%d.%m.%Y", "%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"paid_on {text!r} is not a date (YYYY-MM-DD or DD.MM.YYYY)")


def import_payments(session: Session, actor: Actor, path: Path, tz: str, *, grace_days: int = 0,
                    flat_ids_in_reach: set[int] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> PaymentsResult:
    """Validate every row (account known and in reach, amount in tenge > 0 with at most two decimals, a date not in
    the future, a reference not seen before in the file or the database), then insert all of them."""
    headers, rows = read_table(path)
    if not headers:
        raise ImportRejected([RowError(1, "the file is empty")])
    col = columns(headers, ALIASES, REQUIRED)
    accounts = dict(session.execute(select(Flat.account, Flat.id)).all())
    errors: list[RowError] = []
    parsed: list[dict] = []
    seen: dict[str, int] = {}
    lines_of: dict[str, int] = {}
    today = utcnow().date()
    for line, values in rows:
        def get(name: str, _values: list = values) -> Any:
            index = col[name]
            return _values[index] if index < len(_values) else None

        problems = []
        account = str(get("account") or "").strip()
        flat_id = accounts.get(account)
        if not account:
            problems.append("account is empty")
        elif flat_id is None or (flat_ids_in_reach is not None and flat_id not in flat_ids_in_reach):
            problems.append(f"account {account!r} is unknown")
        try:
            amount = parse_tenge(get("amount"))
        except ValueError as exc:
            problems.append(str(exc))
            amount = 0
        try:
            paid_on = _day(get("paid_on"))
            if paid_on > today:
                problems.append(f"paid_on {paid_on.isoformat()} is in the future")
        except ValueError as exc:
            problems.append(str(exc))
            paid_on = None
        reference = str(get("reference") or "").strip()
        if not reference:
            problems.append("reference is empty")
        elif len(reference) > 100:
            problems.append("reference is longer than 100 characters")
        elif reference in seen:
            problems.append(f"reference {reference!r} repeats line {seen[reference]}")
        else:
            seen[reference] = line
        if problems:
            errors.append(RowError(line, "; ".join(problems)))
        else:
            parsed.append({"flat_id": flat_id, "amount_tiyn": amount, "paid_on": paid_on, "reference": reference})
            lines_of[reference] = line
    refs = list(seen)
    for start in range(0, len(refs), CHUNK):
        for reference in session.scalars(select(Payment.reference).where(
                Payment.reference.in_(refs[start:start + CHUNK]))):
            errors.append(RowError(lines_of.get(reference, seen[reference]),
                                   f"reference {reference!r} was imported before"))
    if errors:
        raise ImportRejected(sorted(errors, key=lambda e: e.line))
    if not parsed:
        raise ImportRejected([RowError(1, "the file has no payments")])
    batch = secrets.token_hex(8)
    now = utcnow()
    for row in parsed:
        row["batch"], row["imported_at"] = batch, now
    for start in range(0, len(parsed), CHUNK):
        session.connection().execute(insert(Payment.__table__), parsed[start:start + CHUNK])
        if progress:
            progress(min(start + CHUNK, len(parsed)), len(parsed))
    total = sum(p["amount_tiyn"] for p in parsed)
    audit.append(session, actor, CloudAction.PAYMENTS_IMPORTED, object_type="payments", object_id=batch,
                 details={"rows": len(parsed), "amount_tiyn": total, "file": path.name[:100]})
    paid = {p["flat_id"] for p in parsed}
    waiting = [flat_id for flat_id in session.scalars(select(Flat.id).where(
        Flat.state == FlatState.SUSPENDED.value, Flat.state_reason == "unpaid")) if flat_id in paid]
    resumed = 0
    for start in range(0, len(waiting), CHUNK):
        resumed += enforce_payment(session, actor, tz, grace_days, flat_ids=waiting[start:start + CHUNK])["resumed"]
    return PaymentsResult(batch, len(parsed), total, resumed)
