"""The resident's portal (``/my``): my subscriptions and payments, my cameras and to whom they are routed, who viewed
them (hiding my own views unless asked), and clip downloads within the plan's monthly allowance."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kuzet.domain.access import Right
from kuzet.domain.cloud import WATCHING_STATES, FlatState, Period
from kuzet.services import access
from kuzet.services.cloud import agreements
from kuzet.services.cloud.billing import balances
from kuzet.services.cloud.common import CloudConflict, CloudNotFound, local_date
from kuzet.services.cloud.subscriptions import current_residents, flat_plan, flats_of, watched_places
from kuzet.store.db import utcnow
from kuzet.store.models import AuditRecord, Camera, Organisation, Place, User
from kuzet.store.models.cloud import (
    ClipDownload,
    Contract,
    Flat,
    Invoice,
    Payment,
    SubscriptionChange,
)

HISTORY = 24


def period_of(moment: datetime, tz: str) -> Period:
    day = local_date(moment, tz)
    return Period(day.year, day.month)


def downloads_used(session: Session, flat: Flat, period: Period) -> int:
    return session.scalar(select(func.count()).select_from(ClipDownload).where(
        ClipDownload.flat_id == flat.id, ClipDownload.period == str(period))) or 0


def subscription_view(session: Session, flat: Flat, tz: str) -> dict:
    contract = session.get(Contract, flat.contract_id)
    building = session.get(Place, contract.building_id)
    entrance = session.get(Place, flat.entrance_id)
    plan = flat_plan(session, flat)
    period = period_of(utcnow(), tz)
    used = downloads_used(session, flat, period)
    history = session.scalars(select(SubscriptionChange).where(SubscriptionChange.flat_id == flat.id)
                              .order_by(SubscriptionChange.at.desc(), SubscriptionChange.id.desc()).limit(HISTORY))
    invoices = session.scalars(select(Invoice).where(Invoice.flat_id == flat.id)
                               .order_by(Invoice.period.desc()).limit(HISTORY))
    payments = session.scalars(select(Payment).where(Payment.flat_id == flat.id)
                               .order_by(Payment.paid_on.desc(), Payment.id.desc()).limit(HISTORY))
    records = session.scalars(select(AuditRecord).where(AuditRecord.object_type == "flat",
                                                        AuditRecord.object_id == str(flat.id))
                              .order_by(AuditRecord.seq.desc()).limit(HISTORY))
    return {
        "id": flat.id, "account": flat.account, "contract": contract.number,
        "address": building.address or building.name, "building": building.name,
        "entrance": entrance.name if entrance else "", "flat": flat.number, "state": flat.state,
        "state_since": flat.state_since, "state_reason": flat.state_reason, "trial_until": flat.trial_until,
        "watching": FlatState(flat.state) in WATCHING_STATES,
        "plan": {"id": plan.id, "name": plan.name, "archive_days": plan.archive_days,
                 "clip_downloads_per_month": plan.clip_downloads_per_month, "price_tiyn": plan.price_tiyn,
                 "currency": plan.currency},
        "period": str(period), "downloads_used": used,
        "downloads_left": max(0, plan.clip_downloads_per_month - used),
        "residents": len(current_residents(session, flat)), "resident_slots": flat.resident_slots,
        "balance_tiyn": balances(session, [flat.id]).get(flat.id, 0),
        "history": [{"at": c.at, "from_state": c.from_state, "to_state": c.to_state, "reason": c.reason}
                    for c in history],
        "invoices": [{"period": i.period, "plan": i.plan_name, "days_active": i.days_active,
                      "days_in_period": i.days_in_period, "amount_tiyn": i.amount_tiyn, "due_on": i.due_on}
                     for i in invoices],
        "payments": [{"paid_on": p.paid_on, "amount_tiyn": p.amount_tiyn, "reference": p.reference}
                     for p in payments],
        "audit": [{"seq": r.seq, "at": r.at, "action": r.action, "actor_name": r.actor_name, "details": r.details}
                  for r in records],
    }


def my_subscriptions(session: Session, user: User, tz: str) -> list[dict]:
    return [subscription_view(session, flat, tz) for flat in flats_of(session, user)]


def flat_for_camera(session: Session, user: User, camera: Camera) -> Flat | None:
    """The user's watching flat through which they see this camera (its entrance or the building's yards)."""
    for flat in flats_of(session, user):
        if FlatState(flat.state) in WATCHING_STATES and camera.place_id in watched_places(session, flat):
            return flat
    return None


def my_cameras(session: Session, user: User, tz: str) -> list[dict]:
    """The cameras I may watch live, each with the flat it comes with, how far back I may look, and the agreements
    that route it to police (to whom, which scope, until when, on what basis)."""
    cameras = session.scalars(access.visible_cameras(user, Right.VIEW_LIVE).order_by(Camera.id)).all()
    names = dict(session.execute(select(Organisation.id, Organisation.name)).all())
    places = dict(session.execute(select(Place.id, Place.name)).all())
    out = []
    for camera in cameras:
        flat = flat_for_camera(session, user, camera)
        rights = access.camera_rights(session, user, camera)
        out.append({
            "id": camera.id, "name": camera.name, "kind": camera.kind, "place": places.get(camera.place_id, ""),
            "rights": sorted(r.value for r in rights), "archive_from": access.archive_floor(session, user, camera),
            "account": flat.account if flat else None,
            "routed_to": [{"agreement_id": a.id, "number": a.number, "holder": names.get(a.holder_org_id, ""),
                           "party": names.get(a.party_org_id, ""), "scope": a.scope.split(","),
                           "starts_on": a.starts_on, "ends_on": a.ends_on, "legal_basis": a.legal_basis}
                          for a in agreements.covering(session, camera, tz)]})
    return out


def access_log(session: Session, user: User, camera_ids: list[int], *, include_own: bool, limit: int,
               offset: int) -> dict:
    """Views of my cameras, newest first, a page at a time; my own views only when asked for."""
    query = select(AuditRecord).where(AuditRecord.camera_id.in_(camera_ids), AuditRecord.action.startswith("video."))
    if not include_own:
        query = query.where((AuditRecord.actor_id.is_(None)) | (AuditRecord.actor_id != user.id))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    names = dict(session.execute(select(Camera.id, Camera.name).where(Camera.id.in_(camera_ids))).all())
    rows = session.scalars(query.order_by(AuditRecord.seq.desc()).limit(limit).offset(offset)).all()
    return {"items": [{"seq": r.seq, "at": r.at, "actor_name": r.actor_name, "own": r.actor_id == user.id,
                       "action": r.action, "camera_id": r.camera_id, "camera": names.get(r.camera_id, ""),
                       "legal_basis": r.legal_basis} for r in rows],
            "total": total, "limit": limit, "offset": offset}


def take_download(session: Session, user: User, flat: Flat, camera: Camera, start: datetime, end: datetime,
                  tz: str, kind: str = "download") -> ClipDownload:
    """Count one clip against the flat's monthly allowance; 409 when it is used up."""
    plan = flat_plan(session, flat)
    period = period_of(utcnow(), tz)
    used = downloads_used(session, flat, period)
    if used >= plan.clip_downloads_per_month:
        raise CloudConflict(f"your plan allows {plan.clip_downloads_per_month} clips a month and "
                            f"{used} were taken in {period}")
    row = ClipDownload(flat_id=flat.id, user_id=user.id, camera_id=camera.id, start_at=start, end_at=end,
                       period=str(period), kind=kind)
    session.add(row)
    session.flush()
    return row


def subscribed_camera(session: Session, user: User, camera_id: int) -> tuple[Camera, Flat]:
    """A camera the user watches through a subscription (404 otherwise, like any camera they may not see)."""
    camera = session.get(Camera, camera_id)
    if camera is None or Right.VIEW_ARCHIVE not in access.camera_rights(session, user, camera):
        raise CloudNotFound("camera not found")
    flat = flat_for_camera(session, user, camera)
    if flat is None:
        raise CloudNotFound("camera not found")
    return camera, flat
