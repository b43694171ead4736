"""Request dependencies: the installation, the authenticated user, the client address."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request, WebSocket

from kuzet.api.errors import ApiError
from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.audit import Actor
from kuzet.store.models import User

SESSION_COOKIE = "kuzet_session"
CSRF_HEADER = "x-requested-with"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def installation(request: Request) -> Installation:
    return request.app.state.installation


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def presented_token(request: Request) -> tuple[str | None, str]:
    """The token a request carries and how: ("…", "bearer") or ("…", "cookie")."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), "bearer"
    token = request.query_params.get("access_token") if request.scope.get("type") == "websocket" else None
    if token:
        return token, "bearer"
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, "cookie") if cookie else (None, "")


@dataclass
class Caller:
    user: User
    ip: str | None
    token: str
    via: str

    @property
    def actor(self) -> Actor:
        return Actor(self.user.id, self.user.username, self.ip)


def caller(request: Request, inst: Installation = Depends(installation)) -> Caller:
    return _authenticate(request, inst, presented_token(request))


def media_caller(request: Request, inst: Installation = Depends(installation)) -> Caller:
    """Like ``caller``, but also accepts ``?token=`` for players that cannot send headers (VLC, ffplay, TVs).

    Only media GET endpoints use it; the server's logs redact the token (cli/core.py SecretFilter).
    """
    token = request.query_params.get("token")
    return _authenticate(request, inst, (token, "query") if token else presented_token(request))


def _authenticate(request: Request, inst: Installation, presented: tuple[str | None, str]) -> Caller:
    token, via = presented
    if not token:
        raise ApiError(401, "authentication required", headers={"WWW-Authenticate": "Bearer"})
    with inst.db.session() as session:
        user = accounts.authenticate(session, token)
    if user is None:
        raise ApiError(401, "invalid, expired or revoked token", headers={"WWW-Authenticate": "Bearer"})
    # A cookie-authenticated change must come from our own pages (cross-site forms cannot set this header).
    if via == "cookie" and request.method not in SAFE_METHODS and request.headers.get(CSRF_HEADER) != "kuzet":
        raise ApiError(403, "missing X-Requested-With: kuzet header on a cookie-authenticated request")
    return Caller(user, client_ip(request), token, via)


def websocket_user(websocket: WebSocket) -> User | None:
    """The user behind a WebSocket: the session cookie, or ``?token=`` for clients that cannot send cookies."""
    inst: Installation = websocket.app.state.installation
    token = websocket.cookies.get(SESSION_COOKIE) or websocket.query_params.get("token")
    if not token:
        return None
    with inst.db.session() as session:
        return accounts.authenticate(session, token)
