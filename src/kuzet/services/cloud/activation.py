"""Activation without SMS: one code per flat, printed for the entrance's notice board; a resident signs up with it.

A code is ``LOCATOR-SECRET`` (``7Q4K-XM2P-9RTW``). The locator names the code, like a username names an account; only
the SHA-256 of the secret is compared (in constant time), and the secret is also kept encrypted with the
installation's key so the notice can be printed again. A code fills one resident slot per sign-up, at most the flat's
``resident_slots``; it expires, and issuing a new one for the flat revokes the old.

Guessing is throttled like logins (``services/accounts.py``) and with the same settings: after
``security.max_failed_logins`` failures on one locator within ``failed_login_window_minutes`` that code is locked
(30 s, doubling), and an address (IPv6: its /64) with ``max_failed_logins_per_address`` failures is locked until the
oldest leaves the window. A locked attempt costs no work and is not counted again; failures and locks are audited.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kuzet.config import SecurityConfig
from kuzet.domain.access import Role
from kuzet.domain.cloud import WATCHING_STATES, CloudAction, FlatState, format_code, new_code, split_code
from kuzet.services import accounts, audit
from kuzet.services.accounts import PasswordPolicy, address_key
from kuzet.services.audit import Actor
from kuzet.services.cloud.common import CloudConflict, CloudError
from kuzet.services.cloud.subscriptions import add_resident, current_residents
from kuzet.services.keys import Keyring
from kuzet.store.db import utcnow
from kuzet.store.models import User
from kuzet.store.models.cloud import ActivationAttempt, ActivationCode, Flat

CODE_DAYS = 90


class ActivationFailed(CloudError):
    """The code is unknown, wrong, expired, revoked or used up: one message for all, so nothing is learnt."""

    def __init__(self) -> None:
        super().__init__("this activation code is not valid (wrong, expired, revoked or used up)")


class ActivationThrottled(CloudError):
    def __init__(self, retry_after: int, scope: str) -> None:
        what = "from this address" if scope == "address" else "for this code"
        super().__init__(f"too many failed activation attempts {what}; try again in {retry_after} s")
        self.retry_after = retry_after
        self.scope = scope


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class IssuedCode:
    flat_id: int
    code: str  # the full code, shown once here (and printable again from its encrypted copy)
    expires_at: datetime


def issue_code(session: Session, actor: Actor, keys: Keyring, flat: Flat, *, days: int = CODE_DAYS,
               now: datetime | None = None) -> IssuedCode:
    """A new code for the flat (the flat's earlier codes are revoked)."""
    if not 1 <= days <= 3650:
        raise CloudError("a code is valid for 1..3650 days")
    now = now or utcnow()
    if flat.state == FlatState.ENDED:
        raise CloudConflict(f"flat {flat.number} has no subscription (ended)")
    for old in session.scalars(select(ActivationCode).where(ActivationCode.flat_id == flat.id,
                                                            ActivationCode.revoked_at.is_(None))):
        old.revoked_at = now
    while True:
        locator, secret = new_code()
        if session.scalar(select(ActivationCode.id).where(ActivationCode.locator == locator)) is None:
            break
    free = max(1, flat.resident_slots - len(current_residents(session, flat)))
    row = ActivationCode(flat_id=flat.id, locator=locator, secret_hash=_digest(secret),
                         secret_encrypted=keys.encrypt(secret), max_uses=free, expires_at=now + timedelta(days=days),
                         created_by=actor.user_id, created_at=now)
    session.add(row)
    session.flush()
    return IssuedCode(flat.id, format_code(locator, secret), row.expires_at)


def issue_codes(session: Session, actor: Actor, keys: Keyring, flats: list[Flat], *, days: int = CODE_DAYS
                ) -> list[IssuedCode]:
    """Codes for several flats (an entrance's notice), one audit record for the batch."""
    issued = [issue_code(session, actor, keys, flat, days=days) for flat in flats]
    audit.append(session, actor, CloudAction.CODES_ISSUED, object_type="entrance",
                 object_id=flats[0].entrance_id if flats else None,
                 details={"flats": [f.id for f in flats], "days": days})
    return issued


def current_code(session: Session, keys: Keyring, flat: Flat, now: datetime | None = None) -> IssuedCode | None:
    """The flat's code still in force, readable again for a reprint; None if there is none."""
    now = now or utcnow()
    row = session.scalar(select(ActivationCode).where(
        ActivationCode.flat_id == flat.id, ActivationCode.revoked_at.is_(None), ActivationCode.expires_at > now,
        ActivationCode.uses < ActivationCode.max_uses).order_by(ActivationCode.id.desc()))
    if row is None:
        return None
    return IssuedCode(flat.id, format_code(row.locator, keys.decrypt(row.secret_encrypted)), row.expires_at)


def revoke_codes(session: Session, actor: Actor, flat: Flat) -> int:
    now = utcnow()
    rows = session.scalars(select(ActivationCode).where(ActivationCode.flat_id == flat.id,
                                                        ActivationCode.revoked_at.is_(None))).all()
    for row in rows:
        row.revoked_at = now
    if rows:
        audit.append(session, actor, CloudAction.CODE_REVOKED, object_type="flat", object_id=flat.id,
                     details={"codes": len(rows)})
    return len(rows)


# --- throttling -----------------------------------------------------------------------------------------------------

def _seconds_until(until: datetime, now: datetime) -> int | None:
    if now >= until:
        return None
    return max(1, int((until - now).total_seconds()) + 1)


def _locator_lock(session: Session, locator: str, cfg: SecurityConfig, now: datetime) -> int | None:
    window_start = now - timedelta(minutes=cfg.failed_login_window_minutes)
    failures = session.scalars(select(ActivationAttempt.at).where(
        ActivationAttempt.locator == locator, ActivationAttempt.success.is_(False),
        ActivationAttempt.at > window_start).order_by(ActivationAttempt.at.desc())).all()
    if len(failures) < cfg.max_failed_logins:
        return None
    extra = len(failures) - cfg.max_failed_logins
    lock = min(30 * (2 ** min(extra, 20)), int(cfg.failed_login_window_minutes * 60))
    return _seconds_until(failures[0] + timedelta(seconds=lock), now)


def _address_lock(session: Session, ip: str | None, cfg: SecurityConfig, now: datetime) -> int | None:
    key = address_key(ip)
    if key is None:
        return None
    window = timedelta(minutes=cfg.failed_login_window_minutes)
    limit = cfg.max_failed_logins_per_address
    failures = session.scalars(select(ActivationAttempt.at).where(
        ActivationAttempt.ip == key, ActivationAttempt.success.is_(False), ActivationAttempt.at > now - window
    ).order_by(ActivationAttempt.at.desc()).limit(limit)).all()
    if len(failures) < limit:
        return None
    return _seconds_until(failures[-1] + window, now)


def check_throttle(session: Session, locator: str, ip: str | None, cfg: SecurityConfig,
                   now: datetime | None = None) -> None:
    now = now or utcnow()
    session.execute(delete(ActivationAttempt).where(
        ActivationAttempt.at < now - timedelta(minutes=cfg.failed_login_window_minutes)))
    for scope, seconds in (("address", _address_lock(session, ip, cfg, now)),
                           ("code", _locator_lock(session, locator, cfg, now))):
        if seconds is not None:
            raise ActivationThrottled(seconds, scope)


def record_failure(session: Session, locator: str, ip: str | None, cfg: SecurityConfig,
                   now: datetime | None = None) -> None:
    """A failed attempt: counted, audited, and the lock it sets off (if any) audited once."""
    now = now or utcnow()
    session.add(ActivationAttempt(locator=locator[:16], ip=address_key(ip), at=now, success=False))
    session.flush()
    actor = Actor(None, "anonymous", ip)
    audit.append(session, actor, CloudAction.ACTIVATION_FAILED, object_type="activation_code",
                 object_id=locator[:16])
    for scope, seconds in (("address", _address_lock(session, ip, cfg, now)),
                           ("code", _locator_lock(session, locator, cfg, now))):
        if seconds is not None:
            audit.append(session, actor, CloudAction.ACTIVATION_THROTTLED, object_type="activation_code",
                         object_id=locator[:16], details={"scope": scope, "retry_after": seconds})


# --- signing up -----------------------------------------------------------------------------------------------------

def valid_code(session: Session, code: str, now: datetime | None = None) -> tuple[str, ActivationCode | None]:
    """(locator, the code row if ``code`` is right and still usable, else None). The secret is compared in constant
    time; an unknown locator costs the same comparison."""
    now = now or utcnow()
    parts = split_code(code)
    locator, secret = parts if parts else ("".join(ch for ch in str(code).upper() if ch.isalnum())[:4] or "?", "")
    row = session.scalar(select(ActivationCode).where(ActivationCode.locator == locator)) if parts else None
    expected = row.secret_hash if row is not None else "0" * 64
    matches = hmac.compare_digest(_digest(secret or "-"), expected)
    if row is None or not matches or row.revoked_at is not None or row.expires_at <= now or row.uses >= row.max_uses:
        return locator, None
    flat = session.get(Flat, row.flat_id)
    if flat is None or FlatState(flat.state) == FlatState.ENDED:
        return locator, None
    return locator, row


def sign_up(session: Session, *, code: str, username: str, password: str, full_name: str, language: str,
            ip: str | None, cfg: SecurityConfig, policy: PasswordPolicy) -> User:
    """Create a resident account with a flat's code and join it to the flat (granted at once if the flat watches).

    Raises ``ActivationThrottled`` (no work done), ``ActivationFailed`` (the attempt is counted and audited; the
    caller commits it) or ``accounts.AccountError`` (a bad username or password: the code is not used up)."""
    now = utcnow()
    parts = split_code(code)
    locator = parts[0] if parts else ("".join(ch for ch in str(code).upper() if ch.isalnum())[:4] or "?")
    check_throttle(session, locator, ip, cfg, now)
    locator, row = valid_code(session, code, now)
    if row is None:
        raise ActivationFailed()
    flat = session.get(Flat, row.flat_id)
    actor = Actor(None, "activation", ip)
    user = accounts.create_user(session, actor, username, password, Role.RESIDENT, full_name=full_name,
                                place_id=flat.entrance_id, language=language, policy=policy)
    row.uses += 1
    session.add(ActivationAttempt(locator=locator, ip=address_key(ip), at=now, success=True))
    add_resident(session, Actor(user.id, user.username, ip), flat, user, via="code")
    audit.append(session, Actor(user.id, user.username, ip), CloudAction.ACTIVATED, object_type="flat",
                 object_id=flat.id, details={"locator": locator, "slot": row.uses, "of": row.max_uses,
                                             "watching": FlatState(flat.state) in WATCHING_STATES})
    return user

