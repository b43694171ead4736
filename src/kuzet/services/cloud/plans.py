"""Plans: archive depth, clip downloads per month, a monthly price in tiyn (KZT)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.domain.cloud import CURRENCY, CloudAction
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.services.cloud.common import CloudConflict, CloudError
from kuzet.store.models.cloud import Plan

MAX_ARCHIVE_DAYS = 3650
MAX_DOWNLOADS = 10_000
MAX_PRICE_TIYN = 10**12


def _check(name: str, archive_days: int, downloads: int, price_tiyn: int) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise CloudError("a plan needs a name of 1 to 100 characters")
    if not 1 <= archive_days <= MAX_ARCHIVE_DAYS:
        raise CloudError(f"archive_days must be 1..{MAX_ARCHIVE_DAYS}")
    if not 0 <= downloads <= MAX_DOWNLOADS:
        raise CloudError(f"clip_downloads_per_month must be 0..{MAX_DOWNLOADS}")
    if not 0 <= price_tiyn <= MAX_PRICE_TIYN:
        raise CloudError(f"price_tiyn must be 0..{MAX_PRICE_TIYN} (tiyn: 1 tenge = 100 tiyn)")
    return name


def save_plan(session: Session, actor: Actor, *, name: str, archive_days: int, clip_downloads_per_month: int,
              price_tiyn: int, plan: Plan | None = None, active: bool = True) -> Plan:
    """Create a plan, or change one (subscribers see the change from their next invoice; archive depth at once)."""
    name = _check(name, archive_days, clip_downloads_per_month, price_tiyn)
    clash = session.scalar(select(Plan).where(Plan.name == name))
    if clash is not None and clash is not plan:
        raise CloudConflict(f"a plan named {name!r} exists already")
    if plan is None:
        plan = Plan(name=name, currency=CURRENCY)
        session.add(plan)
    old_days = plan.archive_days
    plan.name, plan.archive_days = name, archive_days
    plan.clip_downloads_per_month, plan.price_tiyn, plan.active = clip_downloads_per_month, price_tiyn, active
    session.flush()
    audit.append(session, actor, CloudAction.PLAN_SAVED, object_type="plan", object_id=plan.id,
                 details={"name": name, "archive_days": archive_days, "clip_downloads_per_month":
                          clip_downloads_per_month, "price_tiyn": price_tiyn, "active": active})
    if old_days is not None and old_days != archive_days:
        from kuzet.services.cloud.subscriptions import regrant_plan

        regrant_plan(session, actor, plan)
    return plan


def list_plans(session: Session) -> list[Plan]:
    return list(session.scalars(select(Plan).order_by(Plan.price_tiyn, Plan.id)))
