"""Users, passwords (argon2id), sessions and API tokens (stored as SHA-256), login throttling."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kuzet.config import SecurityConfig
from kuzet.domain.access import Role
from kuzet.domain.audit import Action
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.store.db import Database, utcnow
from kuzet.store.models import ApiToken, LoginAttempt, Organisation, User

# argon2-cffi's defaults are argon2id (RFC 9106 low-memory profile).
_hasher = PasswordHasher()
# Verifying against this keeps the time of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("kuzet-dummy-password")


class AccountError(Exception):
    code = "invalid"


class LoginThrottled(AccountError):
    code = "too_many_attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


class BadCredentials(AccountError):
    code = "bad_credentials"


def hash_password(password: str) -> str:
    if len(password) < 4:
        raise AccountError("password is too short (at least 4 characters)")
    return _hasher.hash(password)


def check_password(user: User | None, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
    except (VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_user(
    session: Session,
    actor: Actor,
    username: str,
    password: str,
    role: Role | str,
    *,
    full_name: str = "",
    organisation: str | int | None = None,
    place_id: int | None = None,
    language: str = "ru",
) -> User:
    role = Role(role)
    username = username.strip()
    if not username or len(username) > 100 or any(c.isspace() for c in username):
        raise AccountError(f"invalid username {username!r}")
    if session.scalar(select(User).where(User.username == username)):
        raise AccountError(f"user {username!r} already exists")
    org_id = None
    if organisation is not None:
        org = (session.get(Organisation, organisation) if isinstance(organisation, int)
               else session.scalar(select(Organisation).where(Organisation.name == organisation)))
        if org is None:
            raise AccountError(f"no organisation {organisation!r}")
        org_id = org.id
    if language not in ("ru", "kk", "en"):
        raise AccountError("language must be ru, kk or en")
    user = User(username=username, full_name=full_name, password_hash=hash_password(password), role=role.value,
                organisation_id=org_id, place_id=place_id, language=language)
    session.add(user)
    session.flush()
    audit.append(session, actor, Action.USER_CREATED, object_type="user", object_id=user.id,
                 details={"username": username, "role": role.value, "organisation_id": org_id})
    return user


def _throttle_check(session: Session, username: str, cfg: SecurityConfig, now: datetime) -> None:
    window_start = now - timedelta(minutes=cfg.failed_login_window_minutes)
    last_success = session.scalar(
        select(func.max(LoginAttempt.at)).where(LoginAttempt.username == username, LoginAttempt.success.is_(True))
    )
    since = max(window_start, last_success) if last_success else window_start
    failures = session.scalars(
        select(LoginAttempt.at).where(
            LoginAttempt.username == username, LoginAttempt.success.is_(False), LoginAttempt.at > since
        ).order_by(LoginAttempt.at.desc())
    ).all()
    if len(failures) >= cfg.max_failed_logins:
        # Lock grows with each further failure: 30 s, 60 s, 120 s … capped at the window.
        extra = len(failures) - cfg.max_failed_logins
        lock = min(30 * (2 ** extra), int(cfg.failed_login_window_minutes * 60))
        until = failures[0] + timedelta(seconds=lock)
        if now < until:
            raise LoginThrottled(max(1, int((until - now).total_seconds()) + 1))


@dataclass
class IssuedToken:
    token: str
    record: ApiToken


def _issue(session: Session, user: User, kind: str, *, name: str = "", lifetime: timedelta | None) -> IssuedToken:
    token = secrets.token_urlsafe(32)
    rec = ApiToken(user_id=user.id, kind=kind, name=name, token_hash=token_digest(token),
                   expires_at=utcnow() + lifetime if lifetime else None)
    session.add(rec)
    session.flush()
    return IssuedToken(token, rec)


def login(
    db: Database, username: str, password: str, cfg: SecurityConfig, *, ip: str | None, kind: str = "bearer"
) -> tuple[User, IssuedToken]:
    """Check a password and issue a session or bearer token.

    Every attempt, failed or not, is recorded (for throttling and in the audit log) in its own committed unit of
    work before the caller hears the outcome.
    """
    failure: AccountError | None = None
    with db.session() as session:
        now = utcnow()
        try:
            _throttle_check(session, username, cfg, now)
        except LoginThrottled as exc:
            failure = exc
        if failure is None:
            user = session.scalar(select(User).where(User.username == username))
            ok = check_password(user, password) and user is not None and user.is_active
            session.add(LoginAttempt(username=username, ip=ip, at=now, success=ok))
            if ok:
                issued = _issue(session, user, kind, lifetime=timedelta(hours=cfg.session_hours))
                audit.append(session, Actor.of(user, ip), Action.LOGIN, object_type="user", object_id=user.id,
                             details={"kind": kind})
                return user, issued
            audit.append(session, Actor(user.id if user else None, username, ip), Action.LOGIN_FAILED,
                         object_type="user", object_id=user.id if user else None)
            failure = BadCredentials("wrong username or password")
    raise failure


def create_personal_token(session: Session, user: User, name: str, *, days: int | None = None,
                          ip: str | None = None) -> IssuedToken:
    issued = _issue(session, user, "personal", name=name, lifetime=timedelta(days=days) if days else None)
    audit.append(session, Actor.of(user, ip), Action.TOKEN_CREATED, object_type="token",
                 object_id=issued.record.id, details={"name": name})
    return issued


def authenticate(session: Session, token: str) -> User | None:
    """The user behind a presented token, or None if it is unknown, expired or revoked."""
    rec = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    now = utcnow()
    if rec is None or rec.revoked_at is not None or (rec.expires_at is not None and rec.expires_at <= now):
        return None
    user = session.get(User, rec.user_id)
    if user is None or not user.is_active:
        return None
    if rec.last_used_at is None or (now - rec.last_used_at) > timedelta(minutes=1):
        rec.last_used_at = now
    return user


def revoke(session: Session, token: str, actor: Actor) -> bool:
    rec = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if rec is None or rec.revoked_at is not None:
        return False
    rec.revoked_at = utcnow()
    audit.append(session, actor, Action.LOGOUT, object_type="token", object_id=rec.id)
    return True


def revoke_token_id(session: Session, user: User, token_id: int, actor: Actor) -> bool:
    rec = session.get(ApiToken, token_id)
    if rec is None or rec.user_id != user.id or rec.revoked_at is not None:
        return False
    rec.revoked_at = utcnow()
    audit.append(session, actor, Action.TOKEN_REVOKED, object_type="token", object_id=rec.id)
    return True
