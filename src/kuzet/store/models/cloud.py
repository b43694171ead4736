"""Tables of the cloud service (docs/cloud.md): plans, building contracts, subscribers (flats) and their residents,
state history, activation codes, invoices and payments, routing agreements, portal downloads and shared links,
required archive depth per camera kind."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kuzet.store.db import utcnow
from kuzet.store.models.base import Base


class Plan(Base):
    """What a subscriber pays for: archive depth, clip downloads per month, a monthly price in tiyn."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    archive_days: Mapped[int] = mapped_column(Integer)
    clip_downloads_per_month: Mapped[int] = mapped_column(Integer)
    price_tiyn: Mapped[int] = mapped_column(BigInteger)  # per month; 1 tenge = 100 tiyn
    currency: Mapped[str] = mapped_column(String(3), default="KZT")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Contract(Base):
    """A building's contract with the telecom: which entrances, which plan, from when to when."""

    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("places.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))  # the telecom
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    entrance_ids: Mapped[list] = mapped_column(JSON)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()


class Flat(Base):
    """A subscriber: one flat of a building under contract, in one state, with its personal account number."""

    __tablename__ = "flats"
    __table_args__ = (UniqueConstraint("contract_id", "number", name="uq_flats_contract_number"),
                      Index("ix_flats_state", "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    entrance_id: Mapped[int] = mapped_column(ForeignKey("places.id"))
    number: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(100), unique=True)  # лицевой счёт, what payments name
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))  # None: the contract's plan
    state: Mapped[str] = mapped_column(String(16))
    state_since: Mapped[datetime] = mapped_column(default=utcnow)
    state_reason: Mapped[str | None] = mapped_column(String(32))  # unpaid, paid, request, trial_over, …
    trial_until: Mapped[datetime | None] = mapped_column()
    resident_slots: Mapped[int] = mapped_column(Integer, default=4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FlatResident(Base):
    """A resident account watching through a flat's subscription; ``left_at`` once they no longer do."""

    __tablename__ = "flat_residents"
    __table_args__ = (Index("ix_flat_residents_user", "user_id", "left_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flat_id: Mapped[int] = mapped_column(ForeignKey("flats.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column()
    via: Mapped[str] = mapped_column(String(16), default="code")  # code, operator


class SubscriptionChange(Base):
    """Every state a flat entered, when and why: the pro-rata basis of invoices and the resident's own history."""

    __tablename__ = "subscription_changes"
    __table_args__ = (Index("ix_subscription_changes_flat_at", "flat_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flat_id: Mapped[int] = mapped_column(ForeignKey("flats.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(Integer)


class ActivationCode(Base):
    """One code per flat, printed for the notice board: ``locator`` names it, only a hash of the secret is compared
    (the secret is also kept encrypted so the notice can be printed again)."""

    __tablename__ = "activation_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flat_id: Mapped[int] = mapped_column(ForeignKey("flats.id"), index=True)
    locator: Mapped[str] = mapped_column(String(8), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    max_uses: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ActivationAttempt(Base):
    """A checked sign-up with a code: throttling counts failures per code (locator) and per address."""

    __tablename__ = "activation_attempts"
    __table_args__ = (Index("ix_activation_attempts_locator_at", "locator", "at"),
                      Index("ix_activation_attempts_ip_at", "ip", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    locator: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    success: Mapped[bool] = mapped_column(Boolean)


class Invoice(Base):
    """One subscriber's bill for one month: plan, days active, amount in tiyn."""

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("flat_id", "period", name="uq_invoices_flat_period"),
                      Index("ix_invoices_period", "period"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flat_id: Mapped[int] = mapped_column(ForeignKey("flats.id"))
    period: Mapped[str] = mapped_column(String(7))  # 2025-03
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    plan_name: Mapped[str] = mapped_column(String(100))
    price_tiyn: Mapped[int] = mapped_column(BigInteger)
    days_active: Mapped[int] = mapped_column(Integer)
    days_in_period: Mapped[int] = mapped_column(Integer)
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    due_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Payment(Base):
    """Money received for a subscriber's account (imported from the bank's register)."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flat_id: Mapped[int] = mapped_column(ForeignKey("flats.id"), index=True)
    amount_tiyn: Mapped[int] = mapped_column(BigInteger)
    paid_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(100), unique=True)  # the bank's: a payment is imported once
    batch: Mapped[str] = mapped_column(String(32))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)


class Agreement(Base):
    """A routing agreement: a party (the telecom, a building, school, mall, hospital) routes cameras or sites to a
    police unit or the control centre, for a scope, between two dates, on a legal basis, with the signed document."""

    __tablename__ = "agreements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(100), unique=True)
    party_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    holder_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    scope: Mapped[str] = mapped_column(String(100))  # comma-separated rights
    legal_basis: Mapped[str] = mapped_column(String(500))
    archive_days_required: Mapped[int | None] = mapped_column(Integer)  # depth the party keeps for the unit
    state: Mapped[str] = mapped_column(String(16), default="active")
    renews_id: Mapped[int | None] = mapped_column(ForeignKey("agreements.id"))
    renewed_by_id: Mapped[int | None] = mapped_column(Integer)
    document_name: Mapped[str | None] = mapped_column(String(200))
    document_path: Mapped[str | None] = mapped_column(String(400))  # relative to the data directory
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    document_bytes: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    ended_by: Mapped[int | None] = mapped_column(Integer)
    end_reason: Mapped[str | None] = mapped_column(Text)


class AgreementTarget(Base):
    """A site (place subtree) or camera an agreement covers, and the grant it made for it."""

    __tablename__ = "agreement_targets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"))
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id"))


class ClipDownload(Base):
    """A clip a resident downloaded or shared through the portal: counted against the plan's monthly allowance."""

    __tablename__ = "clip_downloads"
    __table_args__ = (Index("ix_clip_downloads_flat_period", "flat_id", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flat_id: Mapped[int] = mapped_column(ForeignKey("flats.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime] = mapped_column()
    period: Mapped[str] = mapped_column(String(7))
    kind: Mapped[str] = mapped_column(String(8), default="download")  # download, share
    at: Mapped[datetime] = mapped_column(default=utcnow)


class SharedClip(Base):
    """A clip shared by a link that expires; only the token's SHA-256 is stored; every opening is audited."""

    __tablename__ = "shared_clips"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime] = mapped_column()
    note: Mapped[str] = mapped_column(String(200), default="")
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    opened: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RetentionRequirement(Base):
    """Archive depth required of every camera of a kind (schools, public places, entrances), set by the operator."""

    __tablename__ = "retention_requirements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_kind: Mapped[str] = mapped_column(String(32), unique=True)
    days: Mapped[int] = mapped_column(Integer)
    basis: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = ["ActivationAttempt", "ActivationCode", "Agreement", "AgreementTarget", "ClipDownload", "Contract",
           "Flat", "FlatResident", "Invoice", "Payment", "Plan", "RetentionRequirement", "SharedClip",
           "SubscriptionChange"]
