"""Login (session cookie or OAuth2 bearer token), logout, password change, personal API tokens.

Password checks cost argon2 work. These routes are ``async``: they wait for one of the process's login slots
(``security.password_hash_concurrency``) on the event loop, without a thread, and run the check in a worker thread
once they hold one, so a burst of logins neither blocks the loop nor fills the thread pool. Whoever gets no slot within
``accounts.HASH_WAIT_SECONDS`` hears 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy import select

from kuzet.api.deps import SESSION_COOKIE, Caller, caller, client_ip, installation, secure_cookies
from kuzet.api.errors import ApiError, not_found
from kuzet.api.routes.common import ERRORS, Id
from kuzet.api.schemas import LoginIn, PersonalTokenIn, TokenOut, UserOut
from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.store.models import ApiToken

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERRORS)

T = TypeVar("T")

# One queue of login slots per event loop (uvicorn runs one; tests may run several one after another).
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = weakref.WeakKeyDictionary()


def _login_slots(capacity: int) -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _slots.get(loop)
    if limiter is None:
        limiter = _slots[loop] = anyio.CapacityLimiter(capacity)
    elif limiter.total_tokens != capacity:
        limiter.total_tokens = capacity
    return limiter


def _busy() -> ApiError:
    return ApiError(503, str(accounts.HashingBusy()), accounts.HashingBusy.code,
                    headers={"Retry-After": str(accounts.HashingBusy.retry_after)})


async def _password_work(inst: Installation, work: Callable[[], T]) -> T:
    """Run ``work`` (which checks or hashes a password) in a thread once a login slot is free; map its refusals."""
    limiter = _login_slots(inst.settings.security.password_hash_concurrency)
    with anyio.move_on_after(accounts.HASH_WAIT_SECONDS) as waited:
        await limiter.acquire()
    if waited.cancelled_caught:
        raise _busy()
    try:
        return await anyio.to_thread.run_sync(work)
    except accounts.LoginThrottled as exc:
        raise ApiError(429, str(exc), exc.code, headers={"Retry-After": str(exc.retry_after)}) from None
    except accounts.HashingBusy:
        raise _busy() from None
    finally:
        limiter.release()


async def _login(request: Request, inst: Installation, username: str, password: str, kind: str):  # noqa: ANN202
    work = partial(accounts.login, inst.db, username, password, inst.settings.security, ip=client_ip(request),
                   kind=kind)
    try:
        return await _password_work(inst, work)
    except accounts.BadCredentials as exc:
        raise ApiError(401, str(exc), exc.code) from None


@router.post("/token", response_model=TokenOut, responses={429: {"description": "Too many failed logins"},
                                                          503: {"description": "Too many logins at once"}})
async def token(request: Request, form: OAuth2PasswordRequestForm = Depends(),
                inst: Installation = Depends(installation)) -> TokenOut:
    """OAuth2 password flow: form fields ``username`` and ``password`` → a bearer token."""
    _user, issued = await _login(request, inst, form.username, form.password, "bearer")
    return TokenOut(access_token=issued.token, expires_at=issued.record.expires_at)


def _set_session_cookie(request: Request, response: Response, inst: Installation, value: str) -> None:
    """HttpOnly, SameSite=Lax, and Secure whenever the request came over HTTPS (or ``http.secure_cookies``)."""
    response.set_cookie(SESSION_COOKIE, value, httponly=True, samesite="lax",
                        secure=secure_cookies(request, inst.settings.http),
                        max_age=int(inst.settings.security.session_hours * 3600), path="/")


@router.post("/login", response_model=UserOut, responses={429: {"description": "Too many failed logins"},
                                                         503: {"description": "Too many logins at once"}})
async def login(body: LoginIn, request: Request, response: Response,
                inst: Installation = Depends(installation)) -> UserOut:
    """Web login: sets an HttpOnly, SameSite=Lax session cookie (Secure over HTTPS). Takes no redirect target."""
    user, issued = await _login(request, inst, body.username, body.password, "session")
    _set_session_cookie(request, response, inst, issued.token)
    return UserOut.model_validate(user)


class PasswordChangeIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=accounts.MAX_PASSWORD_LENGTH)
    new_password: str = Field(min_length=accounts.DEMO_MIN_PASSWORD_LENGTH, max_length=accounts.MAX_PASSWORD_LENGTH,
                              description="At least security.min_password_length characters (10 by default; 4 only "
                                          "in the demo installation)")


@router.patch("/password", responses={403: {"description": "The current password is wrong"},
                                      429: {"description": "Too many failed attempts"},
                                      503: {"description": "Too many password checks at once"}})
async def change_password(body: PasswordChangeIn, request: Request, who: Caller = Depends(caller),
                          inst: Installation = Depends(installation)) -> dict:
    """Change your own password, proving the current one (a wrong one counts as a failed login). The new one must
    have at least ``security.min_password_length`` characters. Every other session and bearer token of yours is
    revoked; personal API tokens stay (``GET /auth/tokens``)."""
    work = partial(accounts.change_password, inst.db, who.user.id, body.current_password, body.new_password,
                   inst.settings.security, accounts.password_policy(inst.settings), ip=who.ip, keep_token=who.token)
    try:
        revoked = await _password_work(inst, work)
    except accounts.BadCredentials as exc:
        raise ApiError(403, str(exc), exc.code) from None
    except accounts.AccountError as exc:
        raise ApiError(422, str(exc), exc.code) from None
    return {"changed": True, "sessions_revoked": revoked}


@router.post("/logout")
def logout(request: Request, response: Response, who: Caller = Depends(caller),
           inst: Installation = Depends(installation)) -> dict:
    """Revoke the token or session this request was made with."""
    with inst.db.session() as session:
        accounts.revoke(session, who.token, who.actor)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=secure_cookies(request, inst.settings.http))
    return {"revoked": True}


@router.get("/me", response_model=UserOut)
def me(who: Caller = Depends(caller)) -> UserOut:
    return UserOut.model_validate(who.user)


@router.post("/tokens", status_code=201)
def create_token(body: PersonalTokenIn, who: Caller = Depends(caller),
                 inst: Installation = Depends(installation)) -> dict:
    """A personal API token. Its secret is shown once, here; only its hash is stored."""
    with inst.db.session() as session:
        issued = accounts.create_personal_token(session, who.user, body.name, days=body.days, ip=who.ip)
    return {"id": issued.record.id, "name": body.name, "token": issued.token, "expires_at": issued.record.expires_at}


@router.get("/tokens")
def list_tokens(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[dict]:
    with inst.db.session() as session:
        rows = session.scalars(select(ApiToken).where(ApiToken.user_id == who.user.id, ApiToken.kind == "personal",
                                                      ApiToken.revoked_at.is_(None))).all()
        return [{"id": t.id, "name": t.name, "created_at": t.created_at, "expires_at": t.expires_at,
                 "last_used_at": t.last_used_at} for t in rows]


@router.delete("/tokens/{token_id}")
def delete_token(token_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        if not accounts.revoke_token_id(session, who.user, token_id, who.actor):
            raise not_found("token not found")
    return {"revoked": True}
