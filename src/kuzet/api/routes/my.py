"""The resident's portal (``/my``), signing up with an activation code, and shared clip links.

Every signed-in user may read their own subscriptions and cameras (empty when they have none); downloads and shares
are for cameras the caller watches through a subscription (404 for any other). Signing up and opening a shared link
need no account: the first is throttled per code and per address, the second is audited at every opening."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from kuzet.api.deps import Caller, caller, client_ip, installation
from kuzet.api.errors import ApiError, error_body, not_found
from kuzet.api.routes.cloud_common import aware, service_errors
from kuzet.api.routes.common import ERRORS, Id, archive_start, errors, media
from kuzet.api.routes.watching import audit_view
from kuzet.domain.access import Right
from kuzet.domain.audit import Action
from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.cloud import activation, portal, shares
from kuzet.services.recording.archive import plan_window, window_fmp4
from kuzet.services.recording.storage import archive_store

router = APIRouter(tags=["my"], responses=ERRORS)
MAX_DOWNLOAD = timedelta(minutes=30)


class PlanOut(BaseModel):
    id: int
    name: str
    archive_days: int
    clip_downloads_per_month: int
    price_tiyn: int
    currency: str


class ChangeOut(BaseModel):
    at: datetime
    from_state: str | None
    to_state: str
    reason: str


class MyInvoiceOut(BaseModel):
    period: str
    plan: str
    days_active: int
    days_in_period: int
    amount_tiyn: int
    due_on: date


class MyPaymentOut(BaseModel):
    paid_on: date
    amount_tiyn: int
    reference: str


class RecordOut(BaseModel):
    seq: int
    at: datetime
    action: str
    actor_name: str | None
    details: dict | None


class SubscriptionOut(BaseModel):
    id: int
    account: str
    contract: str
    address: str
    building: str
    entrance: str
    flat: str
    state: str
    state_since: datetime
    state_reason: str | None
    trial_until: datetime | None
    watching: bool
    plan: PlanOut
    period: str
    downloads_used: int
    downloads_left: int
    residents: int
    resident_slots: int
    balance_tiyn: int
    history: list[ChangeOut]
    invoices: list[MyInvoiceOut]
    payments: list[MyPaymentOut]
    audit: list[RecordOut]


@router.get("/my/subscriptions", response_model=list[SubscriptionOut])
def my_subscriptions(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[dict]:
    """My flats' subscriptions: state and its history (with the audit records of every change), plan, this month's
    downloads, invoices, payments, balance."""
    with inst.db.session(readonly=True) as session:
        return portal.my_subscriptions(session, who.user, inst.settings.timezone)


class RouteOut(BaseModel):
    agreement_id: int
    number: str
    holder: str
    party: str
    scope: list[str]
    starts_on: date
    ends_on: date | None
    legal_basis: str


class MyCameraOut(BaseModel):
    id: int
    name: str
    kind: str
    place: str
    rights: list[str]
    archive_from: datetime | None
    account: str | None
    routed_to: list[RouteOut]


@router.get("/my/cameras", response_model=list[MyCameraOut])
def my_cameras(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[dict]:
    """The cameras I watch, how far back I may look, and to which police unit each is routed, under which agreement."""
    with inst.db.session(readonly=True) as session:
        return portal.my_cameras(session, who.user, inst.settings.timezone)


class LogItemOut(BaseModel):
    seq: int
    at: datetime
    actor_name: str | None
    own: bool
    action: str
    camera_id: int | None
    camera: str
    legal_basis: str | None


class LogPage(BaseModel):
    items: list[LogItemOut]
    total: int
    limit: int
    offset: int


@router.get("/my/access-log", response_model=LogPage)
def my_access_log(include_own: bool = False, limit: int = Query(25, ge=1, le=200), offset: int = Query(0, ge=0,
                                                                                                        le=10**9),
                  who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Who viewed my cameras, when, on what legal basis — newest first, a page at a time, my own views hidden unless
    ``include_own``."""
    from kuzet.services import access

    with inst.db.session() as session:
        ids = [c.id for c in session.scalars(access.visible_cameras(who.user, Right.VIEW_LIVE))]
        return portal.access_log(session, who.user, ids, include_own=include_own, limit=limit, offset=offset)


@router.get("/my/cameras/{camera_id}/download.mp4", response_class=StreamingResponse,
            responses=media("video/mp4") | errors(409))
def my_download(camera_id: Id, start: datetime = Query(...), end: datetime = Query(...),
                who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> StreamingResponse:
    """A clip (at most 30 minutes) of a camera I watch through my subscription, as a file to keep: counted against
    my plan's clips per month (409 when they are used up), audited like every clip."""
    start, end = aware(start, "start"), aware(end, "end")
    if end <= start or end - start > MAX_DOWNLOAD:
        raise ApiError(422, "end must be after start, at most 30 minutes later")
    with inst.db.session() as session, service_errors():
        camera, flat = portal.subscribed_camera(session, who.user, camera_id)
        start = archive_start(session, who.user, camera, start, end)
        pieces = plan_window(session, archive_store(inst.settings), camera_id, start, end)
        if not pieces:
            raise not_found("nothing was recorded in this window")
        portal.take_download(session, who.user, flat, camera, start, end, inst.settings.timezone)
    audit_view(inst, who, who.user, camera, Action.CLIP_DOWNLOADED, Right.VIEW_ARCHIVE,
               {"start": start.isoformat(), "end": end.isoformat(), "via": "portal"})
    name = f"camera-{camera_id}-{start:%Y%m%dT%H%M%SZ}.mp4"
    return StreamingResponse(window_fmp4(pieces, start, end), media_type="video/mp4",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


# --- shared links ---------------------------------------------------------------------------------------------------

class ShareIn(BaseModel):
    camera_id: Id
    start: datetime
    end: datetime
    hours: int = Field(24, ge=1, le=24 * 90)
    note: str = Field("", max_length=200)


class ShareOut(BaseModel):
    id: int
    camera_id: int
    start: datetime
    end: datetime
    note: str
    expires_at: datetime
    revoked_at: datetime | None
    opened: int
    url: str | None = None  # only when made: the token is not kept


def _share_out(row, url: str | None = None) -> ShareOut:  # noqa: ANN001
    return ShareOut(id=row.id, camera_id=row.camera_id, start=row.start_at, end=row.end_at, note=row.note,
                    expires_at=row.expires_at, revoked_at=row.revoked_at, opened=row.opened, url=url)


@router.get("/my/shares", response_model=list[ShareOut])
def my_shares(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[ShareOut]:
    with inst.db.session() as session:
        return [_share_out(s) for s in shares.my_shares(session, who.user)]


@router.post("/my/shares", response_model=ShareOut, status_code=201, responses=errors(409))
def post_share(body: ShareIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> ShareOut:
    """Share a clip (at most 30 minutes) of a camera I watch by a link that expires after ``hours`` (at most
    ``cloud.share_max_hours``); it counts as one of my plan's clips this month. Each opening is audited."""
    start, end = aware(body.start, "start"), aware(body.end, "end")
    with inst.db.session() as session, service_errors():
        camera, flat = portal.subscribed_camera(session, who.user, body.camera_id)
        row, token = shares.create_share(session, who.actor, who.user, flat, camera, start, end, hours=body.hours,
                                         max_hours=inst.settings.cloud.share_max_hours, note=body.note,
                                         tz=inst.settings.timezone)
        return _share_out(row, f"{inst.settings.cloud.portal_url.rstrip('/')}/share/{token}")


@router.delete("/my/shares/{share_id}", response_model=ShareOut)
def delete_share(share_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> ShareOut:
    with inst.db.session() as session, service_errors():
        return _share_out(shares.revoke_share(session, who.actor, who.user, share_id))


@router.get("/shared/{token}.mp4", response_class=StreamingResponse, responses=media("video/mp4"))
def open_shared(token: str, request: Request, inst: Installation = Depends(installation)) -> StreamingResponse:
    """A shared clip, for whoever holds the link, until it expires or is revoked; every opening is an audit record
    on the camera (the residents see it in their access log)."""
    if len(token) > 100:
        raise not_found("this link is not valid (expired, revoked or unknown)")
    with inst.db.session() as session, service_errors():
        row = shares.open_share(session, token, client_ip(request))
        camera_id, start, end = row.camera_id, row.start_at, row.end_at
        pieces = plan_window(session, archive_store(inst.settings), camera_id, start, end)
    if not pieces:
        raise not_found("nothing was recorded in this window")
    return StreamingResponse(window_fmp4(pieces, start, end), media_type="video/mp4",
                             headers={"Content-Disposition": 'inline; filename="clip.mp4"',
                                      "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


# --- signing up with an activation code -----------------------------------------------------------------------------

class ActivationIn(BaseModel):
    code: str = Field(min_length=1, max_length=40)
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1024)
    full_name: str = Field("", max_length=200)
    language: str = Field("ru", pattern="^(ru|kk|en)$")


class ActivationOut(BaseModel):
    username: str
    flat: str
    watching: bool


@router.post("/activation", response_model=ActivationOut, status_code=201, responses=errors(429, 503))
def activate(body: ActivationIn, request: Request, inst: Installation = Depends(installation)):  # noqa: ANN201
    """Sign up as a resident with your flat's activation code (from the notice in your entrance): an account with a
    password of at least ``security.min_password_length`` characters, joined to the flat. Wrong codes are throttled per
    code and per address (429 with Retry-After)."""
    ip = client_ip(request)
    cfg = inst.settings.security
    policy = accounts.password_policy(inst.settings)
    failed_locator = None
    try:
        with inst.db.session() as session:
            try:
                user = activation.sign_up(session, code=body.code, username=body.username, password=body.password,
                                          full_name=body.full_name, language=body.language, ip=ip, cfg=cfg,
                                          policy=policy)
            except activation.ActivationFailed:
                from kuzet.domain.cloud import split_code

                parts = split_code(body.code)
                failed_locator = parts[0] if parts else ("".join(
                    ch for ch in body.code.upper() if ch.isalnum())[:4] or "?")
                raise
            from kuzet.services.cloud.subscriptions import flats_of

            flat = flats_of(session, user)[0]
            return ActivationOut(username=user.username, flat=flat.number,
                                 watching=flat.state in ("trial", "active"))
    except activation.ActivationThrottled as exc:
        return JSONResponse(error_body("too_many_attempts", str(exc)), status_code=429,
                            headers={"Retry-After": str(exc.retry_after)})
    except activation.ActivationFailed as exc:
        with inst.db.session() as session:
            activation.record_failure(session, failed_locator or "?", ip, cfg)
        raise ApiError(422, str(exc), code="invalid_code") from None
    except accounts.HashingBusy as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    except accounts.AccountError as exc:
        raise ApiError(422, str(exc)) from None
