"""The telecom's business in plain rules: subscription states, pro-rata billing in integer tiyn, money as people
write it, activation codes, billing periods. No I/O."""

from __future__ import annotations

import calendar
import re
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cached_property

from kuzet.domain.access import Right

TIYN_PER_TENGE = 100
CURRENCY = "KZT"


class FlatState(StrEnum):
    """A subscriber (one flat) is in exactly one state. Trial and active watch; suspended and ended do not."""

    TRIAL = "trial"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ENDED = "ended"


# Which state may follow which ("and back": a suspended flat that pays is active again, an ended one may return).
TRANSITIONS: dict[FlatState, frozenset[FlatState]] = {
    FlatState.TRIAL: frozenset({FlatState.ACTIVE, FlatState.SUSPENDED, FlatState.ENDED}),
    FlatState.ACTIVE: frozenset({FlatState.SUSPENDED, FlatState.ENDED}),
    FlatState.SUSPENDED: frozenset({FlatState.ACTIVE, FlatState.ENDED}),
    FlatState.ENDED: frozenset({FlatState.TRIAL, FlatState.ACTIVE}),
}
WATCHING_STATES = frozenset({FlatState.TRIAL, FlatState.ACTIVE})
BILLED_STATE = FlatState.ACTIVE

# What a subscriber's residents get on their entrance and the building's yards while the flat watches.
SUBSCRIBER_RIGHTS = frozenset({Right.VIEW_LIVE, Right.VIEW_ARCHIVE, Right.EXPORT})
# What a routing agreement may hand a police unit (never manage).
AGREEMENT_RIGHTS = frozenset({Right.VIEW_LIVE, Right.VIEW_ARCHIVE, Right.EXPORT, Right.PTZ})


class AgreementState(StrEnum):
    ACTIVE = "active"  # in force, or signed and starting later
    ENDED = "ended"  # ended early by someone, with a reason
    EXPIRED = "expired"  # its end date passed
    RENEWED = "renewed"  # its end date passed and a renewal continues it


def check_transition(current: str, wanted: str) -> FlatState:
    """The new state if ``current`` → ``wanted`` is allowed; ValueError naming both otherwise."""
    try:
        new = FlatState(wanted)
    except ValueError:
        raise ValueError(f"unknown state {wanted!r} (known: {', '.join(s.value for s in FlatState)})") from None
    old = FlatState(current)
    if new == old:
        raise ValueError(f"the subscription is already {new.value}")
    if new not in TRANSITIONS[old]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[old]))
        raise ValueError(f"a {old.value} subscription cannot become {new.value} (it may become: {allowed})")
    return new


# --- billing periods and pro rata ----------------------------------------------------------------------------------

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Period:
    """A calendar month of the installation's time zone: ``2025-03``."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD.match(text.strip()) if isinstance(text, str) else None
        if not match or not 2000 <= int(match.group(1)) <= 2100:
            raise ValueError(f"period {text!r} is not a month between 2000-01 and 2100-12 (YYYY-MM)")
        return cls(int(match.group(1)), int(match.group(2)))

    @cached_property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @cached_property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.month)[1]

    @cached_property
    def last(self) -> date:
        return date(self.year, self.month, self.days)

    @cached_property
    def after(self) -> date:
        """The first day after the period."""
        return self.last + timedelta(days=1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def billed_days(changes: list[tuple[date, str]], period: Period, state_before: str | None = None) -> int:
    """Days of ``period`` billed for one subscriber.

    ``changes``: (local date of the change, new state), in the order they happened. A day is billed when the
    subscriber is active at its end: activated on the 10th and suspended on the 20th bills the 10th..19th (10 days);
    activated and suspended on the same day bills nothing. ``state_before`` is the state before the first change.
    """
    state = state_before
    since = period.first
    after = period.after
    days = 0
    for day, new_state in changes:
        if day >= after:
            break
        if day > since:
            if state == BILLED_STATE:
                days += (day - since).days
            since = day
        state = new_state
    if state == BILLED_STATE and since < after:
        days += (after - since).days
    return days


def pro_rata(price_tiyn: int, days: int, days_in_period: int) -> int:
    """``price × days / days_in_period`` in whole tiyn, half a tiyn rounded up; integers only (no floats)."""
    if days_in_period <= 0:
        raise ValueError("a period has at least one day")
    if not 0 <= days <= days_in_period:
        raise ValueError(f"{days} days do not fit a period of {days_in_period}")
    return (2 * price_tiyn * days + days_in_period) // (2 * days_in_period)


# --- money as people write it ----------------------------------------------------------------------------------------

_PLAIN_TENGE = re.compile(r"^(\d{1,11})(?:[.,](\d{1,2}))?$")


def parse_tenge(value: object) -> int:
    """``"1500"``, ``"1 500,50"``, ``1500.5`` or ``Decimal("1500.50")`` tenge → tiyn (150050). At most two decimals,
    more than zero; ValueError naming the value otherwise. Floats from spreadsheets are read through their shortest
    decimal text, so 1500.1 stays 150010 tiyn."""
    if isinstance(value, str):
        plain = _PLAIN_TENGE.match(value)
        if plain:  # the common case, "2500" or "2500.50", in integers only
            tiyn = int(plain.group(1)) * TIYN_PER_TENGE + int((plain.group(2) or "").ljust(2, "0"))
            if 0 < tiyn <= 10**13:
                return tiyn
    if isinstance(value, bool) or value is None:
        raise ValueError(f"amount {value!r} is not a number of tenge")
    if isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    text = text.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    text = text.removesuffix("₸").removesuffix("KZT").removesuffix("тг").strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"amount {value!r} is not a number of tenge") from None
    if not amount.is_finite():
        raise ValueError(f"amount {value!r} is not a number of tenge")
    tiyn = amount * TIYN_PER_TENGE
    if tiyn != tiyn.to_integral_value():
        raise ValueError(f"amount {value!r} has more than two decimals (tiyn)")
    if tiyn <= 0:
        raise ValueError(f"amount {value!r} must be more than zero")
    if tiyn > 10**13:
        raise ValueError(f"amount {value!r} is implausibly large")
    return int(tiyn)


def format_tenge(tiyn: int) -> str:
    """150050 → ``"1500.50"`` (for files machines read; the console formats per language)."""
    sign = "-" if tiyn < 0 else ""
    whole, part = divmod(abs(int(tiyn)), TIYN_PER_TENGE)
    return f"{sign}{whole}.{part:02d}"


# --- activation codes ------------------------------------------------------------------------------------------------

# No 0/O, 1/I/L, 2/Z, 5/S, 8/B: a code read off a notice board is typed back without guessing.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
LOCATOR_LENGTH = 4
SECRET_LENGTH = 8


def new_code() -> tuple[str, str]:
    """(locator, secret): ``7Q4K`` names the code (throttling counts per locator, like logins per username) and
    ``XM2P9RTW`` is the secret (25^8 ≈ 1.5·10^11 guesses per locator, five of them allowed per window)."""
    pick = secrets.choice
    return ("".join(pick(CODE_ALPHABET) for _ in range(LOCATOR_LENGTH)),
            "".join(pick(CODE_ALPHABET) for _ in range(SECRET_LENGTH)))


def format_code(locator: str, secret: str) -> str:
    return f"{locator}-{secret[:4]}-{secret[4:]}"


def split_code(text: str) -> tuple[str, str] | None:
    """``"7q4k-xm2p-9rtw"`` or ``"7Q4K XM2P 9RTW"`` → (locator, secret); None if it cannot be a code."""
    clean = "".join(ch for ch in str(text).upper() if ch.isalnum())
    if len(clean) != LOCATOR_LENGTH + SECRET_LENGTH or any(ch not in CODE_ALPHABET for ch in clean):
        return None
    return clean[:LOCATOR_LENGTH], clean[LOCATOR_LENGTH:]


class CloudAction:
    """Audit action names of the cloud service."""

    PLAN_SAVED = "cloud.plan_saved"
    CONTRACT_CREATED = "cloud.contract_created"
    CONTRACT_ENDED = "cloud.contract_ended"
    FLAT_CREATED = "cloud.flat_created"
    STATE_CHANGED = "cloud.subscription_changed"  # details: from, to, reason
    RESIDENT_ADDED = "cloud.resident_added"
    RESIDENT_REMOVED = "cloud.resident_removed"
    CODES_ISSUED = "cloud.codes_issued"
    CODE_REVOKED = "cloud.code_revoked"
    ACTIVATION_FAILED = "cloud.activation_failed"
    ACTIVATION_THROTTLED = "cloud.activation_throttled"
    ACTIVATED = "cloud.activated"
    INVOICES_RUN = "cloud.invoices_run"
    INVOICES_EXPORTED = "cloud.invoices_exported"
    PAYMENTS_IMPORTED = "cloud.payments_imported"
    AGREEMENT_CREATED = "cloud.agreement_created"
    AGREEMENT_ENDED = "cloud.agreement_ended"
    AGREEMENT_EXPIRED = "cloud.agreement_expired"
    AGREEMENT_RENEWED = "cloud.agreement_renewed"
    AGREEMENT_DOCUMENT = "cloud.agreement_document"
    AGREEMENT_DOCUMENT_READ = "cloud.agreement_document_read"
    REQUIREMENT_SAVED = "cloud.requirement_saved"
    SHARE_CREATED = "video.share_created"
    SHARE_OPENED = "video.share_opened"
    SHARE_REVOKED = "video.share_revoked"
