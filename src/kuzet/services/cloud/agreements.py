"""Routing agreements: a party (the telecom, a building, a school, a mall, a hospital) routes cameras or whole sites to
a police unit or the Operational Control Centre, for a scope (live, archive, export, PTZ), between two dates, on a
legal basis, with the signed document.

The agreement makes its grants itself (to the unit's organisation, ``source = "agreement:<id>"``, valid from the
start of its first day to the end of its last in the installation's time zone) and ends them itself: when someone ends
it, and when it expires (``expire_agreements``, run every minute by ``kuzet serve``; the grants' own ``valid_to``
already stops access at that instant). A renewal is a new agreement that starts the day after the old one ends and
points back at it, so the history stays.

**Nobody hands out more than they hold**: the party must hold every right of the scope on every target — as the
owner of the camera, as the manager of the place (a ``manage`` grant: the telecom manages the city's cameras it
installed), or through a grant of its own carrying that right — and for no longer than it holds it. The unit must be
a police organisation other than the party. Only platform admins and the telecom's operator admins (inside the places
they manage) register agreements; the parties, the units and the residents whose cameras are routed read them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kuzet.domain.access import AUDIT_READERS, POLICE_KINDS, Right, Role, parse_rights
from kuzet.domain.cloud import AGREEMENT_RIGHTS, AgreementState, CloudAction
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.services.cloud.common import Business, CloudConflict, CloudError, CloudNotFound, end_of_day, start_of_day
from kuzet.services.grants import create_grant, revoke_grant
from kuzet.store.db import utcnow
from kuzet.store.models import Camera, Grant, Organisation, Place, User
from kuzet.store.models.cloud import Agreement, AgreementTarget

MAX_TARGETS = 1000


class AgreementDenied(CloudError):
    """The party does not hold what the agreement would hand out (API 403)."""


def source_of(agreement: Agreement | int) -> str:
    return f"agreement:{agreement if isinstance(agreement, int) else agreement.id}"


def parse_scope(values: list[str]) -> frozenset[Right]:
    rights = set()
    for value in values:
        if value not in {r.value for r in AGREEMENT_RIGHTS}:
            known = ", ".join(sorted(r.value for r in AGREEMENT_RIGHTS))
            raise CloudError(f"scope {value!r} is not one of {known}")
        rights.add(Right(value))
    if not rights:
        raise CloudError("an agreement's scope names at least one right")
    return frozenset(rights)


# --- what the party holds -------------------------------------------------------------------------------------------

def party_rights(session: Session, party: Organisation, target: Place | Camera,
                 now: datetime | None = None) -> dict[Right, datetime | None]:
    """Each right the party may route on ``target`` and until when it holds it (None: without end)."""
    held: dict[Right, datetime | None] = {}

    def note(right: Right, until: datetime | None) -> None:
        if right in held and (held[right] is None or until is None):
            held[right] = None
        else:
            held[right] = until if right not in held else max(held[right], until)

    if isinstance(target, Camera) and target.owner_org_id == party.id:
        for right in AGREEMENT_RIGHTS:
            note(right, None)
    place = target if isinstance(target, Place) else session.get(Place, target.place_id)
    now = now or utcnow()
    grants = session.scalars(select(Grant).where(
        Grant.organisation_id == party.id, or_(Grant.revoked_at.is_(None), Grant.revoked_at > now),
        or_(Grant.valid_from.is_(None), Grant.valid_from <= now),
        or_(Grant.valid_to.is_(None), Grant.valid_to > now))).all()
    paths = dict(session.execute(select(Place.id, Place.path).where(
        Place.id.in_({g.place_id for g in grants if g.place_id}))).all())
    for grant in grants:
        covers = (isinstance(target, Camera) and grant.camera_id == target.id) or (
            grant.place_id is not None and place is not None and place.path.startswith(paths.get(grant.place_id, "\0")))
        if not covers:
            continue
        rights = parse_rights(grant.rights)
        for right in (AGREEMENT_RIGHTS if Right.MANAGE in rights else rights & AGREEMENT_RIGHTS):
            note(right, grant.valid_to)
    return held


def _check_party(session: Session, party: Organisation, targets: list[Place | Camera], scope: frozenset[Right],
                 ends: datetime | None) -> None:
    for target in targets:
        held = party_rights(session, party, target)
        what = f"camera {target.id}" if isinstance(target, Camera) else f"place {target.id} ({target.name})"
        for right in sorted(scope):
            if right not in held:
                raise AgreementDenied(f"{party.name} does not hold {right.value} on {what} and cannot route it")
            until = held[right]
            if until is not None and (ends is None or ends > until):
                raise AgreementDenied(f"{party.name} holds {right.value} on {what} only until {until.isoformat()}: "
                                      f"the agreement must end by then")


# --- making and ending ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Terms:
    number: str
    party_org_id: int
    holder_org_id: int
    starts_on: date
    ends_on: date | None
    scope: list[str]
    legal_basis: str
    place_ids: list[int]
    camera_ids: list[int]
    archive_days_required: int | None = None


def _targets(session: Session, business: Business | None, place_ids: list[int],
             camera_ids: list[int]) -> list[Place | Camera]:
    if not place_ids and not camera_ids:
        raise CloudError("an agreement covers at least one site (place) or camera")
    if len(place_ids) + len(camera_ids) > MAX_TARGETS:
        raise CloudError(f"an agreement covers at most {MAX_TARGETS} sites and cameras")
    targets: list[Place | Camera] = []
    for place_id in sorted(set(place_ids)):
        place = session.get(Place, place_id)
        if place is None or (business is not None and not business.covers(place)):
            raise CloudNotFound(f"place {place_id} not found")
        targets.append(place)
    for camera_id in sorted(set(camera_ids)):
        camera = session.get(Camera, camera_id)
        if camera is None or (business is not None and not business.covers(session.get(Place, camera.place_id))):
            raise CloudNotFound(f"camera {camera_id} not found")
        targets.append(camera)
    return targets


def create_agreement(session: Session, actor: Actor, business: Business | None, terms: Terms, tz: str, *,
                     renews: Agreement | None = None) -> Agreement:
    """Register an agreement and make its grants. ``business`` is the registering user's (None: the system)."""
    number = (terms.number or "").strip()
    if not number or len(number) > 100:
        raise CloudError("an agreement needs a number of 1 to 100 characters")
    basis = (terms.legal_basis or "").strip()
    if not basis or len(basis) > 400:
        raise CloudError("an agreement needs a legal basis of 1 to 400 characters")
    if terms.ends_on is not None and terms.ends_on < terms.starts_on:
        raise CloudError("ends_on is before starts_on")
    if terms.archive_days_required is not None and not 1 <= terms.archive_days_required <= 3650:
        raise CloudError("archive_days_required must be 1..3650")
    scope = parse_scope(terms.scope)
    party = session.get(Organisation, terms.party_org_id)
    holder = session.get(Organisation, terms.holder_org_id)
    if party is None:
        raise CloudNotFound("party organisation not found")
    if holder is None:
        raise CloudNotFound("holder organisation not found")
    if holder.kind not in POLICE_KINDS:
        raise CloudError(f"{holder.name} is not a police unit or control centre: agreements route cameras to police")
    if holder.id == party.id:
        raise CloudError("the party and the unit must differ")
    if session.scalar(select(Agreement.id).where(Agreement.number == number)):
        raise CloudConflict(f"agreement {number!r} exists already")
    targets = _targets(session, business, terms.place_ids, terms.camera_ids)
    starts = start_of_day(terms.starts_on, tz)
    ends = end_of_day(terms.ends_on, tz) if terms.ends_on is not None else None
    if ends is not None and ends <= utcnow():
        raise CloudError("the agreement would have ended already (ends_on is in the past)")
    _check_party(session, party, targets, scope, ends)
    agreement = Agreement(number=number, party_org_id=party.id, holder_org_id=holder.id, starts_on=terms.starts_on,
                          ends_on=terms.ends_on, scope=",".join(sorted(r.value for r in scope)), legal_basis=basis,
                          archive_days_required=terms.archive_days_required, state=AgreementState.ACTIVE.value,
                          renews_id=renews.id if renews else None, created_by=actor.user_id)
    session.add(agreement)
    session.flush()
    grant_basis = f"Соглашение № {number}: {basis}"[:500]
    for target in targets:
        grant = create_grant(
            session, actor, rights=sorted(r.value for r in scope), legal_basis=grant_basis,
            organisation_id=holder.id, place_id=target.id if isinstance(target, Place) else None,
            camera_id=target.id if isinstance(target, Camera) else None, valid_from=starts, valid_to=ends,
            source=source_of(agreement))
        session.add(AgreementTarget(agreement_id=agreement.id, place_id=grant.place_id, camera_id=grant.camera_id,
                                    grant_id=grant.id))
    session.flush()
    audit.append(session, actor, CloudAction.AGREEMENT_CREATED, object_type="agreement", object_id=agreement.id,
                 legal_basis=basis, details={
                     "number": number, "party": party.id, "holder": holder.id, "scope": agreement.scope,
                     "starts_on": terms.starts_on.isoformat(),
                     "ends_on": terms.ends_on.isoformat() if terms.ends_on else None,
                     "places": [t.id for t in targets if isinstance(t, Place)],
                     "cameras": [t.id for t in targets if isinstance(t, Camera)],
                     "renews": renews.id if renews else None})
    return agreement


def _revoke_grants(session: Session, actor: Actor, agreement: Agreement) -> int:
    grants = session.scalars(select(Grant).where(Grant.source == source_of(agreement),
                                                 Grant.revoked_at.is_(None))).all()
    for grant in grants:
        revoke_grant(session, actor, grant)
    return len(grants)


def end_agreement(session: Session, actor: Actor, agreement: Agreement, reason: str) -> Agreement:
    """End an agreement now (terminated early): its grants are revoked at once."""
    reason = (reason or "").strip()
    if not reason:
        raise CloudError("say why the agreement ends (reason)")
    if agreement.state != AgreementState.ACTIVE:
        raise CloudConflict(f"agreement {agreement.number} is {agreement.state} already")
    agreement.state = AgreementState.ENDED.value
    agreement.ended_at, agreement.ended_by, agreement.end_reason = utcnow(), actor.user_id, reason[:2000]
    revoked = _revoke_grants(session, actor, agreement)
    audit.append(session, actor, CloudAction.AGREEMENT_ENDED, object_type="agreement", object_id=agreement.id,
                 legal_basis=agreement.legal_basis, details={"number": agreement.number, "reason": reason[:500],
                                                             "grants_revoked": revoked})
    return agreement


def expire_agreements(session: Session, actor: Actor, tz: str, now: datetime | None = None) -> int:
    """Agreements whose last day is over become expired (or renewed, when a renewal continues them); their grants,
    which stopped at the same instant by their ``valid_to``, are revoked for the record."""
    now = now or utcnow()
    expired = 0
    for agreement in session.scalars(select(Agreement).where(Agreement.state == AgreementState.ACTIVE.value,
                                                             Agreement.ends_on.is_not(None))):
        if end_of_day(agreement.ends_on, tz) > now:
            continue
        agreement.state = (AgreementState.RENEWED if agreement.renewed_by_id else AgreementState.EXPIRED).value
        agreement.ended_at = end_of_day(agreement.ends_on, tz)
        revoked = _revoke_grants(session, actor, agreement)
        audit.append(session, actor, CloudAction.AGREEMENT_EXPIRED, object_type="agreement", object_id=agreement.id,
                     legal_basis=agreement.legal_basis, details={"number": agreement.number,
                                                                 "state": agreement.state, "grants_revoked": revoked})
        expired += 1
    return expired


def renew_agreement(session: Session, actor: Actor, business: Business | None, old: Agreement, tz: str, *,
                    number: str, ends_on: date | None, legal_basis: str | None = None,
                    scope: list[str] | None = None) -> Agreement:
    """A new agreement with the same party, unit and targets, from the day after ``old`` ends (from today if it has
    expired already)."""
    if old.renewed_by_id is not None:
        raise CloudConflict(f"agreement {old.number} was renewed already")
    if old.state not in (AgreementState.ACTIVE, AgreementState.EXPIRED):
        raise CloudConflict(f"agreement {old.number} is {old.state}: it cannot be renewed")
    if old.ends_on is None:
        raise CloudConflict(f"agreement {old.number} has no end date: nothing to renew")
    from kuzet.services.cloud.common import today

    starts_on = max(old.ends_on + timedelta(days=1), today(tz))
    targets = session.scalars(select(AgreementTarget).where(AgreementTarget.agreement_id == old.id)).all()
    new = create_agreement(session, actor, business, Terms(
        number=number, party_org_id=old.party_org_id, holder_org_id=old.holder_org_id, starts_on=starts_on,
        ends_on=ends_on, scope=scope or old.scope.split(","), legal_basis=legal_basis or old.legal_basis,
        place_ids=[t.place_id for t in targets if t.place_id], camera_ids=[t.camera_id for t in targets if t.camera_id],
        archive_days_required=old.archive_days_required), tz, renews=old)
    old.renewed_by_id = new.id
    if old.state == AgreementState.EXPIRED:
        old.state = AgreementState.RENEWED.value
    audit.append(session, actor, CloudAction.AGREEMENT_RENEWED, object_type="agreement", object_id=old.id,
                 details={"number": old.number, "renewed_by": new.id, "new_number": new.number})
    return new


# --- the signed document --------------------------------------------------------------------------------------------

def document_file(data_dir: Path, agreement: Agreement) -> Path:
    """The agreement's signed PDF kept by ``store_document``; LookupError naming what is missing."""
    if agreement.document_path is None:
        raise LookupError("no signed document was uploaded for this agreement")
    path = (data_dir / agreement.document_path).resolve()
    if not path.is_relative_to((data_dir / "agreements").resolve()) or not path.is_file():
        raise LookupError("the signed document is missing from the data directory")
    return path


def store_document(session: Session, actor: Actor, data_dir: Path, agreement: Agreement, source: Path,
                   name: str) -> Agreement:
    """Keep the signed PDF in ``<data>/agreements/`` (owner-only), named by its SHA-256; the agreement points at it."""
    with open(source, "rb") as fh:
        head = fh.read(5)
    if head != b"%PDF-":
        raise CloudError("the signed document must be a PDF file")
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    folder = data_dir / "agreements"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    relative = Path("agreements") / f"{agreement.id}-{digest.hexdigest()[:16]}.pdf"
    target = data_dir / relative
    tmp = target.with_suffix(".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, open(source, "rb") as fh:
        while chunk := fh.read(1 << 20):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)
    clean = "".join(ch for ch in (name or "document.pdf") if ch.isprintable() and ch not in '/\\"')[:200]
    agreement.document_name = clean or "document.pdf"
    agreement.document_path = str(relative)
    agreement.document_sha256 = digest.hexdigest()
    agreement.document_bytes = size
    audit.append(session, actor, CloudAction.AGREEMENT_DOCUMENT, object_type="agreement", object_id=agreement.id,
                 details={"sha256": agreement.document_sha256, "bytes": size})
    return agreement


# --- who sees what --------------------------------------------------------------------------------------------------

def may_see(session: Session, user: User, agreement: Agreement) -> bool:
    """Platform admins and auditors; operator admins for agreements whose sites they manage (or their own
    organisation's); members of the party and of the unit."""
    role = Role(user.role)
    if role in AUDIT_READERS:
        return True
    if user.organisation_id is not None and user.organisation_id in (agreement.party_org_id, agreement.holder_org_id):
        return True
    if role == Role.OPERATOR_ADMIN:
        business = Business(session, user)
        for target in session.scalars(select(AgreementTarget).where(AgreementTarget.agreement_id == agreement.id)):
            place = session.get(Place, target.place_id) if target.place_id else (
                session.get(Place, session.get(Camera, target.camera_id).place_id) if target.camera_id else None)
            if not business.covers(place):
                return False
        return True
    return False


def visible(session: Session, user: User) -> list[Agreement]:
    query = select(Agreement).order_by(Agreement.starts_on.desc(), Agreement.id.desc())
    role = Role(user.role)
    if role not in AUDIT_READERS and role != Role.OPERATOR_ADMIN:
        if user.organisation_id is None:
            return []
        query = query.where(or_(Agreement.party_org_id == user.organisation_id,
                                Agreement.holder_org_id == user.organisation_id))
    return [a for a in session.scalars(query) if may_see(session, user, a)]


def state_now(agreement: Agreement, tz: str, now: datetime | None = None) -> str:
    """The state as of now: ``scheduled`` for an active agreement that starts later, ``expired`` for one whose end
    passed before the periodic check saw it."""
    now = now or utcnow()
    if agreement.state == AgreementState.ACTIVE:
        if agreement.ends_on is not None and end_of_day(agreement.ends_on, tz) <= now:
            return AgreementState.RENEWED.value if agreement.renewed_by_id else AgreementState.EXPIRED.value
        if start_of_day(agreement.starts_on, tz) > now:
            return "scheduled"
    return agreement.state


def covering(session: Session, camera: Camera, tz: str, now: datetime | None = None) -> list[Agreement]:
    """Agreements in force that route this camera (directly or through a site holding it)."""
    now = now or utcnow()
    place = session.get(Place, camera.place_id)
    rows = session.execute(select(Agreement, AgreementTarget.place_id, AgreementTarget.camera_id)
                           .join(AgreementTarget, AgreementTarget.agreement_id == Agreement.id)
                           .where(Agreement.state == AgreementState.ACTIVE.value)).all()
    paths = dict(session.execute(select(Place.id, Place.path).where(
        Place.id.in_({p for _a, p, _c in rows if p}))).all())
    found: dict[int, Agreement] = {}
    for agreement, place_id, camera_id in rows:
        if state_now(agreement, tz, now) != AgreementState.ACTIVE:
            continue
        if camera_id == camera.id or (place_id is not None and place is not None
                                      and place.path.startswith(paths.get(place_id, "\0"))):
            found[agreement.id] = agreement
    return sorted(found.values(), key=lambda a: a.id)


# --- the seeds' plan: schools, malls and hospitals to the centre, in one go ----------------------------------------

SITE_KINDS = ("school", "public_place")


@dataclass(frozen=True)
class BulkResult:
    created: list[Agreement]
    skipped: list[tuple[int, str]]  # (place id, why)


def route_sites(session: Session, actor: Actor, business: Business | None, tz: str, *, root_place_id: int,
                place_kinds: list[str], holder_org_id: int, scope: list[str], starts_on: date, ends_on: date | None,
                legal_basis: str, number_prefix: str) -> BulkResult:
    """One agreement per site of ``place_kinds`` under ``root_place_id``, each with the organisation sited there (the
    school, the mall, the hospital) as party. Sites already routed to that unit, or with no organisation, are listed
    as skipped. All of it or nothing: any refusal (the party does not hold the scope) refuses the whole run."""
    for kind in place_kinds:
        if kind not in SITE_KINDS:
            raise CloudError(f"site kind {kind!r} is not one of {', '.join(SITE_KINDS)}")
    if not place_kinds:
        raise CloudError("name at least one kind of site")
    root = session.get(Place, root_place_id)
    if root is None or (business is not None and not business.covers(root)):
        raise CloudNotFound("place not found")
    prefix = (number_prefix or "").strip()
    if not prefix or len(prefix) > 80:
        raise CloudError("number_prefix has 1 to 80 characters")
    sites = session.scalars(select(Place).where(Place.path.startswith(root.path), Place.kind.in_(place_kinds))
                            .order_by(Place.id)).all()
    routed = {t.place_id for t in session.scalars(
        select(AgreementTarget).join(Agreement, Agreement.id == AgreementTarget.agreement_id).where(
            Agreement.holder_org_id == holder_org_id, Agreement.state == AgreementState.ACTIVE.value))}
    created, skipped = [], []
    for n, site in enumerate(sites, 1):
        if site.id in routed:
            skipped.append((site.id, "routed to this unit already"))
            continue
        party = session.scalar(select(Organisation).where(Organisation.place_id == site.id).order_by(Organisation.id))
        if party is None:
            skipped.append((site.id, "no organisation at this site to be the party"))
            continue
        created.append(create_agreement(session, actor, business, Terms(
            number=f"{prefix}-{n}", party_org_id=party.id, holder_org_id=holder_org_id, starts_on=starts_on,
            ends_on=ends_on, scope=scope, legal_basis=legal_basis, place_ids=[site.id], camera_ids=[]), tz))
    return BulkResult(created, skipped)
