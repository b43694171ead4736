"""Login (session cookie or OAuth2 bearer token), logout, personal API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from kuzet.api.deps import SESSION_COOKIE, Caller, caller, client_ip, installation
from kuzet.api.errors import ApiError, not_found
from kuzet.api.schemas import LoginIn, PersonalTokenIn, TokenOut, UserOut
from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.store.models import ApiToken

router = APIRouter(prefix="/auth", tags=["auth"])


def _login(inst: Installation, username: str, password: str, ip: str | None, kind: str):  # noqa: ANN202
    try:
        return accounts.login(inst.db, username, password, inst.settings.security, ip=ip, kind=kind)
    except accounts.LoginThrottled as exc:
        raise ApiError(429, str(exc), exc.code, headers={"Retry-After": str(exc.retry_after)}) from None
    except accounts.BadCredentials as exc:
        raise ApiError(401, str(exc), exc.code) from None


@router.post("/token", response_model=TokenOut)
def token(request: Request, form: OAuth2PasswordRequestForm = Depends(),
          inst: Installation = Depends(installation)) -> TokenOut:
    """OAuth2 password flow: form fields ``username`` and ``password`` → a bearer token."""
    _user, issued = _login(inst, form.username, form.password, client_ip(request), "bearer")
    return TokenOut(access_token=issued.token, expires_at=issued.record.expires_at)


@router.post("/login", response_model=UserOut)
def login(body: LoginIn, request: Request, response: Response,
          inst: Installation = Depends(installation)) -> UserOut:
    """Web login: sets an HttpOnly session cookie."""
    user, issued = _login(inst, body.username, body.password, client_ip(request), "session")
    response.set_cookie(SESSION_COOKIE, issued.token, httponly=True, samesite="lax",
                        secure=inst.settings.http.secure_cookies,
                        max_age=int(inst.settings.security.session_hours * 3600), path="/")
    return UserOut.model_validate(user)


@router.post("/logout")
def logout(response: Response, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Revoke the token or session this request was made with."""
    with inst.db.session() as session:
        accounts.revoke(session, who.token, who.actor)
    response.delete_cookie(SESSION_COOKIE, path="/")
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
def delete_token(token_id: int, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        if not accounts.revoke_token_id(session, who.user, token_id, who.actor):
            raise not_found("token not found")
    return {"revoked": True}
