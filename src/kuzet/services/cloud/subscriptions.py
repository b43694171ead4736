"""Building contracts, subscribers (flats) and their residents, and the states a subscription goes through.

What a state allows is enforced by grants this module makes and ends itself: while a flat is in trial or active,
each of its residents holds a grant (view_live, view_archive, export; the archive limited to the plan's depth) on the
flat's entrance and on the building's yards, with the contract as legal basis and ``source = "flat:<id>"``. Suspended
or ended, those grants are revoked at once (open streams end within seconds, ``api/live_access.py``). Recording is
untouched: the cameras belong to the contract, not to one flat, and record while it runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.domain.cloud import SUBSCRIBER_RIGHTS, WATCHING_STATES, CloudAction, FlatState, check_transition
from kuzet.domain.places import PlaceKind
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.services.cloud.common import Business, CloudConflict, CloudError, CloudNotFound
from kuzet.services.grants import create_grant, revoke_grant
from kuzet.store.db import utcnow
from kuzet.store.models import Camera, Grant, Organisation, Place, User
from kuzet.store.models.cloud import Contract, Flat, FlatResident, Plan, SubscriptionChange

MAX_SLOTS = 20


def source_of(flat: Flat | int) -> str:
    return f"flat:{flat if isinstance(flat, int) else flat.id}"


# --- contracts ------------------------------------------------------------------------------------------------------

def create_contract(session: Session, actor: Actor, business: Business | None, *, number: str, building_id: int,
                    plan_id: int, entrance_ids: list[int], starts_on: date, ends_on: date | None = None,
                    organisation_id: int | None = None) -> Contract:
    """A building's contract: its entrances, its plan, its dates. The cameras of those entrances and of the building's
    yards keep at least the plan's archive depth while it runs (``retention_days`` raised where shorter)."""
    number = (number or "").strip()
    if not number or len(number) > 64:
        raise CloudError("a contract needs a number of 1 to 64 characters")
    building = session.get(Place, building_id)
    if building is None or (business is not None and not business.covers(building)):
        raise CloudNotFound("building not found")
    if building.kind != PlaceKind.BUILDING:
        raise CloudError(f"place {building_id} is a {building.kind}, not a building")
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise CloudNotFound("plan not found")
    if not entrance_ids:
        raise CloudError("a contract covers at least one entrance")
    for entrance_id in entrance_ids:
        entrance = session.get(Place, entrance_id)
        if entrance is None or entrance.parent_id != building.id or entrance.kind != PlaceKind.ENTRANCE:
            raise CloudError(f"place {entrance_id} is not an entrance of building {building_id}")
    if ends_on is not None and ends_on < starts_on:
        raise CloudError("ends_on is before starts_on")
    if session.scalar(select(Contract.id).where(Contract.number == number)):
        raise CloudConflict(f"contract {number!r} exists already")
    if organisation_id is not None and session.get(Organisation, organisation_id) is None:
        raise CloudNotFound("organisation not found")
    contract = Contract(number=number, building_id=building.id, plan_id=plan.id,
                        entrance_ids=sorted(set(entrance_ids)), starts_on=starts_on, ends_on=ends_on,
                        organisation_id=organisation_id, created_by=actor.user_id)
    session.add(contract)
    session.flush()
    for camera in contract_cameras(session, contract):
        if camera.retention_days < plan.archive_days:
            camera.retention_days = plan.archive_days
    audit.append(session, actor, CloudAction.CONTRACT_CREATED, object_type="contract", object_id=contract.id,
                 legal_basis=f"Договор {number}", details={
                     "building_id": building.id, "plan_id": plan.id, "entrance_ids": contract.entrance_ids,
                     "starts_on": starts_on.isoformat(), "ends_on": ends_on.isoformat() if ends_on else None})
    return contract


def shared_places(session: Session, contract: Contract) -> list[int]:
    """The building's yards: every subscriber of the contract watches them."""
    return list(session.scalars(select(Place.id).where(Place.parent_id == contract.building_id,
                                                       Place.kind == PlaceKind.YARD).order_by(Place.id)))


def contract_cameras(session: Session, contract: Contract) -> list[Camera]:
    places = list(contract.entrance_ids) + shared_places(session, contract)
    return list(session.scalars(select(Camera).where(Camera.place_id.in_(places)).order_by(Camera.id)))


def contract_counts(session: Session, contracts: list[Contract]) -> dict[int, tuple[int, int]]:
    """(flats, cameras) of each contract in three statements whatever their number (a list of contracts); the
    cameras are those of ``contract_cameras``: its entrances' and its building's yards'."""
    from sqlalchemy import func

    if not contracts:
        return {}
    ids = [c.id for c in contracts]
    flats = dict(session.execute(select(Flat.contract_id, func.count()).where(Flat.contract_id.in_(ids))
                                 .group_by(Flat.contract_id)).all())
    yards: dict[int, list[int]] = {}
    for place_id, building_id in session.execute(select(Place.id, Place.parent_id).where(
            Place.parent_id.in_({c.building_id for c in contracts}), Place.kind == PlaceKind.YARD)):
        yards.setdefault(building_id, []).append(place_id)
    places = {p for c in contracts for p in c.entrance_ids} | {p for ps in yards.values() for p in ps}
    cameras = dict(session.execute(select(Camera.place_id, func.count()).where(Camera.place_id.in_(places))
                                   .group_by(Camera.place_id)).all()) if places else {}
    return {c.id: (flats.get(c.id, 0),
                   sum(cameras.get(p, 0) for p in {*c.entrance_ids, *yards.get(c.building_id, [])}))
            for c in contracts}


def residents_of(session: Session, flat_ids: list[int]) -> dict[int, list[FlatResident]]:
    """The current residents of each of ``flat_ids`` in one statement (a page of flats)."""
    out: dict[int, list[FlatResident]] = {}
    if flat_ids:
        for row in session.scalars(select(FlatResident).where(FlatResident.flat_id.in_(flat_ids),
                                                              FlatResident.left_at.is_(None))
                                   .order_by(FlatResident.id)):
            out.setdefault(row.flat_id, []).append(row)
    return out


def end_contract(session: Session, actor: Actor, contract: Contract, reason: str = "contract_ended") -> int:
    """End a contract: every flat of it ends (their residents lose access). Returns how many flats ended."""
    if contract.ended_at is not None:
        raise CloudConflict("the contract has ended already")
    contract.ended_at = utcnow()
    ended = 0
    for flat in session.scalars(select(Flat).where(Flat.contract_id == contract.id, Flat.state != FlatState.ENDED)):
        change_state(session, actor, flat, FlatState.ENDED, reason)
        ended += 1
    audit.append(session, actor, CloudAction.CONTRACT_ENDED, object_type="contract", object_id=contract.id,
                 details={"flats_ended": ended})
    return ended


# --- flats ----------------------------------------------------------------------------------------------------------

def add_flat(session: Session, actor: Actor, contract: Contract, *, entrance_id: int, number: str,
             state: FlatState | str = FlatState.TRIAL, trial_days: int = 14, plan_id: int | None = None,
             resident_slots: int = 4, at: datetime | None = None) -> Flat:
    """A subscriber: a flat of the contract's building, behind one of its entrances."""
    number = (number or "").strip()
    if not number or len(number) > 16:
        raise CloudError("a flat number has 1 to 16 characters")
    if entrance_id not in contract.entrance_ids:
        raise CloudError(f"entrance {entrance_id} is not covered by contract {contract.number}")
    if contract.ended_at is not None:
        raise CloudConflict(f"contract {contract.number} has ended")
    if plan_id is not None and session.get(Plan, plan_id) is None:
        raise CloudNotFound("plan not found")
    if not 1 <= resident_slots <= MAX_SLOTS:
        raise CloudError(f"resident_slots must be 1..{MAX_SLOTS}")
    state = FlatState(state)
    if state not in (FlatState.TRIAL, FlatState.ACTIVE):
        raise CloudError("a new subscriber starts in trial or active")
    if session.scalar(select(Flat.id).where(Flat.contract_id == contract.id, Flat.number == number)):
        raise CloudConflict(f"flat {number} of contract {contract.number} exists already")
    at = at or utcnow()
    account = f"{contract.number}-{number}"
    if session.scalar(select(Flat.id).where(Flat.account == account)):
        raise CloudConflict(f"account {account} exists already")
    flat = Flat(contract_id=contract.id, entrance_id=entrance_id, number=number, account=account, plan_id=plan_id,
                state=state.value, state_since=at, state_reason="created", resident_slots=resident_slots, created_at=at,
                trial_until=at + timedelta(days=trial_days) if state == FlatState.TRIAL else None)
    session.add(flat)
    session.flush()
    session.add(SubscriptionChange(flat_id=flat.id, at=at, from_state=None, to_state=state.value, reason="created",
                                   actor_id=actor.user_id))
    audit.append(session, actor, CloudAction.FLAT_CREATED, object_type="flat", object_id=flat.id,
                 legal_basis=f"Договор {contract.number}",
                 details={"account": account, "entrance_id": entrance_id, "state": state.value})
    return flat


def flat_plan(session: Session, flat: Flat) -> Plan:
    contract = session.get(Contract, flat.contract_id)
    return session.get(Plan, flat.plan_id or contract.plan_id)


def change_state(session: Session, actor: Actor, flat: Flat, wanted: FlatState | str, reason: str,
                 at: datetime | None = None) -> Flat:
    """Move a subscriber to another state (``domain.cloud.TRANSITIONS``), on record, and make its residents' grants
    follow: granted in trial and active, revoked when suspended or ended."""
    reason = (reason or "").strip()[:32] or "operator"
    try:
        new = check_transition(flat.state, wanted)
    except ValueError as exc:
        raise CloudConflict(str(exc)) from None
    at = at or utcnow()
    old = flat.state
    flat.state, flat.state_since, flat.state_reason = new.value, at, reason
    if new == FlatState.TRIAL:
        flat.trial_until = at + timedelta(days=14)
    session.add(SubscriptionChange(flat_id=flat.id, at=at, from_state=old, to_state=new.value, reason=reason,
                                   actor_id=actor.user_id))
    session.flush()
    audit.append(session, actor, CloudAction.STATE_CHANGED, object_type="flat", object_id=flat.id,
                 details={"account": flat.account, "from": old, "to": new.value, "reason": reason})
    sync_grants(session, actor, flat)
    return flat


# --- residents ------------------------------------------------------------------------------------------------------

def current_residents(session: Session, flat: Flat) -> list[FlatResident]:
    return list(session.scalars(select(FlatResident).where(FlatResident.flat_id == flat.id,
                                                           FlatResident.left_at.is_(None)).order_by(FlatResident.id)))


def add_resident(session: Session, actor: Actor, flat: Flat, user: User, via: str = "operator") -> FlatResident:
    if user.role != "resident":
        raise CloudError(f"{user.username} is not a resident account")
    residents = current_residents(session, flat)
    if any(r.user_id == user.id for r in residents):
        raise CloudConflict(f"{user.username} is a resident of this flat already")
    if len(residents) >= flat.resident_slots:
        raise CloudConflict(f"every resident slot of flat {flat.number} is taken ({flat.resident_slots})")
    row = FlatResident(flat_id=flat.id, user_id=user.id, via=via)
    session.add(row)
    session.flush()
    audit.append(session, actor, CloudAction.RESIDENT_ADDED, object_type="flat", object_id=flat.id,
                 details={"user_id": user.id, "username": user.username, "via": via})
    sync_grants(session, actor, flat)
    return row


def remove_resident(session: Session, actor: Actor, flat: Flat, user_id: int) -> None:
    row = session.scalar(select(FlatResident).where(FlatResident.flat_id == flat.id, FlatResident.user_id == user_id,
                                                    FlatResident.left_at.is_(None)))
    if row is None:
        raise CloudNotFound("resident not found")
    row.left_at = utcnow()
    session.flush()
    audit.append(session, actor, CloudAction.RESIDENT_REMOVED, object_type="flat", object_id=flat.id,
                 details={"user_id": user_id})
    sync_grants(session, actor, flat)


def flats_of(session: Session, user: User) -> list[Flat]:
    """The flats a resident currently belongs to."""
    return list(session.scalars(select(Flat).join(FlatResident, FlatResident.flat_id == Flat.id).where(
        FlatResident.user_id == user.id, FlatResident.left_at.is_(None)).order_by(Flat.id)))


# --- grants that follow the state -----------------------------------------------------------------------------------

def watched_places(session: Session, flat: Flat) -> list[int]:
    contract = session.get(Contract, flat.contract_id)
    return [flat.entrance_id, *shared_places(session, contract)]


def legal_basis(session: Session, flat: Flat) -> str:
    contract = session.get(Contract, flat.contract_id)
    return f"Подписка по договору {contract.number}, кв. {flat.number}"


def sync_grants(session: Session, actor: Actor, flat: Flat, now: datetime | None = None) -> None:
    """Make the flat's grants what its state says: one per (resident, watched place) while it watches, none else."""
    now = now or utcnow()
    source = source_of(flat)
    held = session.scalars(select(Grant).where(Grant.source == source, Grant.revoked_at.is_(None))).all()
    wanted: set[tuple[int, int]] = set()
    days = None
    if FlatState(flat.state) in WATCHING_STATES:
        days = flat_plan(session, flat).archive_days
        places = watched_places(session, flat)
        wanted = {(r.user_id, p) for r in current_residents(session, flat) for p in places}
    kept: set[tuple[int, int]] = set()
    for grant in held:
        key = (grant.user_id, grant.place_id)
        if key in wanted and grant.archive_days == days and key not in kept:
            kept.add(key)
        else:
            revoke_grant(session, actor, grant)
    basis = legal_basis(session, flat) if wanted else ""
    for user_id, place_id in sorted(wanted - kept):
        create_grant(session, actor, rights=sorted(r.value for r in SUBSCRIBER_RIGHTS), legal_basis=basis,
                     user_id=user_id, place_id=place_id, valid_from=now, archive_days=days, source=source)


def regrant_plan(session: Session, actor: Actor, plan: Plan) -> None:
    """A plan's archive depth changed: every flat on it gets grants with the new depth."""
    contracts = select(Contract.id).where(Contract.plan_id == plan.id)
    flats = session.scalars(select(Flat).where(
        (Flat.plan_id == plan.id) | (Flat.plan_id.is_(None) & Flat.contract_id.in_(contracts)))).all()
    for flat in flats:
        sync_grants(session, actor, flat)


def flats_in_reach(session: Session, business: Business) -> Iterable[int] | None:
    """Contract ids the business reaches (None: all)."""
    paths = business.paths()
    if paths is None:
        return None
    from sqlalchemy import or_

    return list(session.scalars(select(Contract.id).join(Place, Place.id == Contract.building_id).where(
        or_(*[Place.path.startswith(p) for p in paths]) if paths else Place.id.is_(None))))
