"""Users, passwords (argon2id), sessions and API tokens (stored as SHA-256), login throttling.

Login is throttled twice: per username (a lock that grows with each further failure) and per source address (at most
``max_failed_logins_per_address`` failures within the window, whatever usernames they tried). A throttled attempt costs
no argon2 work. argon2 itself runs through one gate per process: at most ``password_hash_concurrency`` hashes or
verifications at once; others wait up to ``HASH_WAIT_SECONDS`` and then fail with ``HashingBusy``.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import secrets
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kuzet.config import SecurityConfig, Settings
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

# How long an argon2 computation (or a login waiting for one) may queue before the caller hears "busy".
HASH_WAIT_SECONDS = 5.0
# Failed-login rows older than the throttling window are deleted at most this often (seconds, per process).
_PRUNE_EVERY_SECONDS = 60.0
# Passwords of the demo installation (`kuzet demo`, settings.demo): its accounts' password is "demo".
DEMO_MIN_PASSWORD_LENGTH = 4
MAX_PASSWORD_LENGTH = 1024
USERNAME_MAX = 100  # users.username and login_attempts.username


class AccountError(Exception):
    code = "invalid"


class LoginThrottled(AccountError):
    code = "too_many_attempts"

    def __init__(self, retry_after: int, scope: str = "username") -> None:
        what = "from this address" if scope == "address" else "for this account"
        super().__init__(f"too many failed logins {what}; try again in {retry_after} s")
        self.retry_after = retry_after
        self.scope = scope


class BadCredentials(AccountError):
    code = "bad_credentials"


class HashingBusy(AccountError):
    """Every argon2 slot of this process stayed taken for ``HASH_WAIT_SECONDS``: try again shortly."""

    code = "busy"
    retry_after = 1

    def __init__(self) -> None:
        super().__init__("too many password checks at once; try again in a moment")


@dataclass(frozen=True)
class PasswordPolicy:
    """What a new password must satisfy. Outside the demo: at least ``security.min_password_length`` characters."""

    min_length: int = SecurityConfig.model_fields["min_password_length"].default

    def check(self, password: str) -> None:
        if len(password) < self.min_length:
            raise AccountError(f"password is too short (at least {self.min_length} characters)")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise AccountError(f"password is too long (at most {MAX_PASSWORD_LENGTH} characters)")


DEMO_PASSWORD_POLICY = PasswordPolicy(DEMO_MIN_PASSWORD_LENGTH)


def is_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows ("Asia/Almaty"); a user's times are shown in it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def password_policy(settings: Settings) -> PasswordPolicy:
    """The policy of an installation: the demo's short passwords only where ``demo = true``."""
    if settings.demo:
        return DEMO_PASSWORD_POLICY
    return PasswordPolicy(settings.security.min_password_length)


class Argon2Gate:
    """At most ``capacity`` argon2 computations at once in this process; the rest wait a bounded time."""

    def __init__(self, capacity: int) -> None:
        self._cond = threading.Condition()
        self.capacity = capacity
        self.active = 0

    def resize(self, capacity: int) -> None:
        with self._cond:
            if capacity != self.capacity:
                self.capacity = capacity
                self._cond.notify_all()

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._cond:
            if not self._cond.wait_for(lambda: self.active < self.capacity, timeout=HASH_WAIT_SECONDS):
                raise HashingBusy()
            self.active += 1
        try:
            yield
        finally:
            with self._cond:
                self.active -= 1
                self._cond.notify()


argon2_gate = Argon2Gate(SecurityConfig.model_fields["password_hash_concurrency"].default)


def hash_password(password: str, policy: PasswordPolicy | None = None) -> str:
    """The argon2id hash of a new password, after checking it against ``policy`` (default: outside the demo)."""
    (policy or PasswordPolicy()).check(password)
    with argon2_gate.slot():
        return _hasher.hash(password)


def check_password(user: User | None, password: str) -> bool:
    """Whether ``password`` is the user's. Without a user, the same work is done against a dummy hash."""
    with argon2_gate.slot():
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
    policy: PasswordPolicy | None = None,
) -> User:
    """Create an account. ``policy`` is the installation's (``password_policy(settings)``); without one, the
    policy outside the demo applies."""
    role = Role(role)
    username = username.strip()
    if not username or len(username) > USERNAME_MAX or any(c.isspace() for c in username):
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
    user = User(username=username, full_name=full_name, password_hash=hash_password(password, policy), role=role.value,
                organisation_id=org_id, place_id=place_id, language=language)
    session.add(user)
    session.flush()
    audit.append(session, actor, Action.USER_CREATED, object_type="user", object_id=user.id,
                 details={"username": username, "role": role.value, "organisation_id": org_id})
    return user


def _username_lock(session: Session, username: str, cfg: SecurityConfig, now: datetime) -> int | None:
    """Seconds this username stays locked, or None. The lock grows with each failure beyond the limit."""
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
    if len(failures) < cfg.max_failed_logins:
        return None
    # 30 s, 60 s, 120 s … capped at the window.
    extra = len(failures) - cfg.max_failed_logins
    lock = min(30 * (2 ** extra), int(cfg.failed_login_window_minutes * 60))
    return _seconds_until(failures[0] + timedelta(seconds=lock), now)


def address_key(ip: str | None) -> str | None:
    """What login throttling counts per: an IPv4 address, or the /64 of an IPv6 address (one subscriber's network:
    whoever holds one address usually holds all 2^64 of them)."""
    if ip is None:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _address_lock(session: Session, ip: str | None, cfg: SecurityConfig, now: datetime) -> int | None:
    """Seconds this source address (its IPv6 /64) stays locked, or None: it is locked while the window holds
    ``max_failed_logins_per_address`` failures from it, whichever usernames they tried. A success does not reset it."""
    key = address_key(ip)
    if key is None:
        return None
    window = timedelta(minutes=cfg.failed_login_window_minutes)
    limit = cfg.max_failed_logins_per_address
    failures = session.scalars(
        select(LoginAttempt.at).where(
            LoginAttempt.ip == key, LoginAttempt.success.is_(False), LoginAttempt.at > now - window
        ).order_by(LoginAttempt.at.desc()).limit(limit)
    ).all()
    if len(failures) < limit:
        return None
    # Free again when the oldest of the newest `limit` failures leaves the window.
    return _seconds_until(failures[-1] + window, now)


def _seconds_until(until: datetime, now: datetime) -> int | None:
    if now >= until:
        return None
    return max(1, int((until - now).total_seconds()) + 1)


def _throttle_check(session: Session, username: str, ip: str | None, cfg: SecurityConfig, now: datetime) -> None:
    """Refuse (before any argon2 work) an attempt from a locked address or for a locked username."""
    for scope, seconds in (("address", _address_lock(session, ip, cfg, now)),
                           ("username", _username_lock(session, username, cfg, now))):
        if seconds is not None:
            raise LoginThrottled(seconds, scope)


def _record_failure(session: Session, username: str, user_id: int | None, ip: str | None, cfg: SecurityConfig,
                    now: datetime, *, via: str) -> None:
    """A failed attempt: counted for throttling, audited, and the lock it sets off (if any) audited too."""
    username = username[:USERNAME_MAX]  # nobody has a longer one; the attempt still counts against the address
    session.add(LoginAttempt(username=username, ip=address_key(ip), at=now, success=False))
    session.flush()
    actor = Actor(user_id, username, ip)
    audit.append(session, actor, Action.LOGIN_FAILED, object_type="user", object_id=user_id,
                 details={"via": via} if via != "login" else None)
    for scope, seconds in (("address", _address_lock(session, ip, cfg, now)),
                           ("username", _username_lock(session, username, cfg, now))):
        if seconds is not None:
            by_address = scope == "address"
            audit.append(session, actor, Action.LOGIN_THROTTLED, object_type="address" if by_address else "user",
                         object_id=ip if by_address else user_id,
                         details={"scope": scope, "username": username, "retry_after": seconds})


_last_prune: weakref.WeakKeyDictionary[Database, float] = weakref.WeakKeyDictionary()


def _prune_attempts(session: Session, db: Database, cfg: SecurityConfig, now: datetime) -> None:
    """Failed and successful attempts older than the window no longer count; keep the table small (the audit log
    keeps every login for good)."""
    clock = time.monotonic()
    if clock - _last_prune.get(db, float("-inf")) < _PRUNE_EVERY_SECONDS:
        return
    _last_prune[db] = clock
    session.execute(delete(LoginAttempt).where(
        LoginAttempt.at < now - timedelta(minutes=cfg.failed_login_window_minutes)))


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


@dataclass(frozen=True)
class _Candidate:
    user_id: int | None
    password_hash: str | None


def _candidate(db: Database, username: str, ip: str | None, cfg: SecurityConfig) -> _Candidate:
    """Throttling first (no argon2 for a locked address or username), then the account's hash."""
    with db.session() as session:
        now = utcnow()
        _prune_attempts(session, db, cfg, now)
        _throttle_check(session, username[:USERNAME_MAX], ip, cfg, now)
        user = session.scalar(select(User).where(User.username == username)) if len(username) <= USERNAME_MAX else None
        return _Candidate(user.id if user else None, user.password_hash if user else None)


def _verify(candidate: _Candidate, password: str) -> bool:
    """argon2 outside any transaction (SQLite's write lock is not held while it runs)."""
    with argon2_gate.slot():
        try:
            return _hasher.verify(candidate.password_hash or _DUMMY_HASH, password) and candidate.user_id is not None
        except (VerificationError, InvalidHashError):
            return False


def login(
    db: Database, username: str, password: str, cfg: SecurityConfig, *, ip: str | None, kind: str = "bearer"
) -> tuple[User, IssuedToken]:
    """Check a password and issue a session or bearer token.

    Raises ``LoginThrottled`` (address or username locked; no password work done), ``HashingBusy`` (no argon2 slot
    came free in time; nothing recorded) or ``BadCredentials``. Every checked attempt, failed or not, is recorded
    (for throttling and in the audit log) in its own committed unit of work before the caller hears the outcome.
    """
    argon2_gate.resize(cfg.password_hash_concurrency)
    candidate = _candidate(db, username, ip, cfg)
    ok = _verify(candidate, password)
    with db.session() as session:
        now = utcnow()
        user = session.get(User, candidate.user_id) if candidate.user_id is not None else None
        if ok and user is not None and user.is_active:
            session.add(LoginAttempt(username=username, ip=address_key(ip), at=now, success=True))
            issued = _issue(session, user, kind, lifetime=timedelta(hours=cfg.session_hours))
            audit.append(session, Actor.of(user, ip), Action.LOGIN, object_type="user", object_id=user.id,
                         details={"kind": kind})
            return user, issued
        _record_failure(session, username, user.id if user else None, ip, cfg, now, via="login")
    raise BadCredentials("wrong username or password")


def change_password(db: Database, user_id: int, current: str, new: str, cfg: SecurityConfig,
                    policy: PasswordPolicy, *, ip: str | None, keep_token: str | None = None) -> int:
    """A user changes their own password, proving the current one.

    A wrong current password counts as a failed login (same throttling, same audit). On success every other session
    and OAuth2 bearer token of the user is revoked (personal API tokens stay: they are listed and revoked one by
    one); returns how many were revoked.
    """
    policy.check(new)
    if new == current:
        raise AccountError("the new password must differ from the current one")
    argon2_gate.resize(cfg.password_hash_concurrency)
    with db.session() as session:
        user = session.get(User, user_id)
        if user is None or not user.is_active:
            raise BadCredentials("no such active user")
        username = user.username
    candidate = _candidate(db, username, ip, cfg)
    if not _verify(candidate, current):
        with db.session() as session:
            _record_failure(session, username, user_id, ip, cfg, utcnow(), via="password_change")
        raise BadCredentials("the current password is wrong")
    new_hash = hash_password(new, policy)
    with db.session() as session:
        user = session.get(User, user_id)
        if user is None:
            raise BadCredentials("no such active user")
        user.password_hash = new_hash
        now = utcnow()
        keep = token_digest(keep_token) if keep_token else None
        others = session.scalars(select(ApiToken).where(
            ApiToken.user_id == user_id, ApiToken.kind.in_(("session", "bearer")), ApiToken.revoked_at.is_(None),
            ApiToken.token_hash != (keep or ""))).all()
        for rec in others:
            rec.revoked_at = now
        session.add(LoginAttempt(username=username, ip=address_key(ip), at=now, success=True))
        audit.append(session, Actor(user_id, username, ip), Action.PASSWORD_CHANGED, object_type="user",
                     object_id=user_id, details={"tokens_revoked": len(others)})
        return len(others)


def create_personal_token(session: Session, user: User, name: str, *, days: int | None = None,
                          ip: str | None = None) -> IssuedToken:
    issued = _issue(session, user, "personal", name=name, lifetime=timedelta(days=days) if days else None)
    audit.append(session, Actor.of(user, ip), Action.TOKEN_CREATED, object_type="token",
                 object_id=issued.record.id, details={"name": name})
    return issued


TOKEN_USE_STEP = timedelta(minutes=1)  # a token's last-use time is written at most this often


def _token_holder(session: Session, token: str) -> tuple[User | None, ApiToken | None]:
    """(user, token record) of a valid token; (None, None) if it is unknown, expired or revoked."""
    rec = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    now = utcnow()
    if rec is None or rec.revoked_at is not None or (rec.expires_at is not None and rec.expires_at <= now):
        return None, None
    user = session.get(User, rec.user_id)
    if user is None or not user.is_active:
        return None, None
    return user, rec


def _stale(rec: ApiToken, now: datetime) -> bool:
    return rec.last_used_at is None or (now - rec.last_used_at) > TOKEN_USE_STEP


def authenticate(session: Session, token: str) -> User | None:
    """The user behind a presented token, or None if it is unknown, expired or revoked."""
    user, rec = _token_holder(session, token)
    if rec is not None and _stale(rec, utcnow()):
        rec.last_used_at = utcnow()
    return user


def authenticate_reading(db: Database, token: str) -> User | None:
    """``authenticate`` in a read-only transaction (on SQLite it waits for no writer), and only when the token's
    last-use time is due — once a minute — a short writing one to note it. How every request signs in.

    Where the database's sessions are watched (``access.cache.watch``: every installation), the token's holder is
    cached beside the callers' grants and dropped with them on any change to users, grants or tokens (a revocation
    included), at the token's expiry, and after ``MAX_AGE`` at the latest: a request then signs in without a session.
    Each call gets a ``User`` of its own (detached), never one another request holds."""
    from kuzet.services.access.cache import TokenHolder, cache_of

    cache = cache_of(db.engine)
    digest = token_digest(token)
    now = utcnow()
    holder = cache.token(digest, now) if cache is not None else None
    if holder is not None:
        if holder.last_used_at is None or (now - holder.last_used_at) > TOKEN_USE_STEP:
            holder.last_used_at = _note_use(db, holder.token_id)
        return holder.user()
    generation = cache.generation if cache is not None else 0
    with db.session(readonly=True) as session:
        user, rec = _token_holder(session, token)
        if rec is None or user is None:
            return None
        due = rec.id if _stale(rec, now) else None
        held = TokenHolder(rec.id, {c.key: getattr(user, c.key) for c in _user_column_attrs()}, rec.expires_at,
                           rec.last_used_at)
    if due is not None:
        held.last_used_at = _note_use(db, due)
    if cache is not None:
        cache.put_token(digest, held, generation)
    return user


def cached_token_user(db: Database, token: str) -> User | None:
    """The token's user from the cache alone — no database, so callable on the event loop — or None when the holder
    is not cached (or may be stale, or its last use is due to be noted): then ``authenticate_reading`` decides."""
    from kuzet.services.access.cache import cache_of

    cache = cache_of(db.engine)
    if cache is None:
        return None
    now = utcnow()
    holder = cache.token(token_digest(token), now)
    if holder is None or holder.last_used_at is None or (now - holder.last_used_at) > TOKEN_USE_STEP:
        return None
    return holder.user()


@functools.cache
def _user_column_attrs() -> tuple:
    """The User's column attributes (computed once, after the mappers are configured)."""
    from sqlalchemy import inspect as sa_inspect

    return tuple(sa_inspect(User).column_attrs)


def _note_use(db: Database, token_id: int) -> datetime:
    """Write a token's last-use time (if nobody else did within the step); the time it now says."""
    with db.session() as session:
        rec = session.get(ApiToken, token_id)
        now = utcnow()
        if rec is None:
            return now
        if _stale(rec, now):
            rec.last_used_at = now
        return rec.last_used_at


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
