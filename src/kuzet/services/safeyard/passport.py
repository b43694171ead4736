"""Safe-yard passports: who may read the personal data (need to know), reading with a purpose, masked lists,
history, the right of access and erasure."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.domain.access import POLICE_KINDS, Role
from kuzet.domain.audit import Action
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.services.places import district_of
from kuzet.services.safeyard.assignments import assigned_paths
from kuzet.services.safeyard.vault import Vault, mask, valid_iin
from kuzet.store.models import Camera, Organisation, Place, User
from kuzet.store.models.safeyard import PersonRecord, SafeYard, SafeYardChange

CATEGORIES = {
    # category: (fields, required fields, date field checked by the dashboard)
    "resident": (("name", "apartment", "phone", "birth_date", "iin"), ("name", "apartment"), None),
    "supervised": (("name", "apartment", "iin", "basis", "supervision_from", "supervision_to"),
                   ("name", "basis", "supervision_to"), "supervision_to"),
    "firearm": (("name", "apartment", "iin", "weapon", "permit_number", "permit_expires"),
                ("name", "weapon", "permit_number", "permit_expires"), "permit_expires"),
    "rental": (("apartment", "owner", "tenant", "period_from", "period_to"), ("apartment", "owner", "tenant"), None),
    "volunteer": (("name", "phone", "role"), ("name",), None),
}
DATE_FIELDS = {"birth_date", "supervision_from", "supervision_to", "permit_expires", "period_from", "period_to"}


class PassportError(ValueError):
    pass


class NotVisible(Exception):
    """The caller may not see this: the API answers 404."""


def yard_district(session: Session, yard: SafeYard) -> Place | None:
    return session.get(Place, yard.district_id) if yard.district_id else None


def may_read_personal(session: Session, user: User, yard: SafeYard) -> bool:
    """Need to know: platform admins, and whoever is assigned to the yard's district (or an area holding it) right
    now (``assignments.py``). Nobody else: not a role, not a home district."""
    if user.role == Role.PLATFORM_ADMIN:
        return True
    place = session.get(Place, yard.place_id)
    return place is not None and any(place.path.startswith(p) for p in assigned_paths(session, user))


def may_see_yard(session: Session, user: User, yard: SafeYard) -> bool:
    """The passport without personal data: also analysts, and the police staff of a unit serving the yard's area."""
    if may_read_personal(session, user, yard) or user.role == Role.ANALYST:
        return True
    if user.role in (Role.POLICE_OPERATOR, Role.INSPECTOR) and user.organisation_id:
        org = session.get(Organisation, user.organisation_id)
        if org is None or org.kind not in POLICE_KINDS or org.place_id is None:
            return False
        area, place = session.get(Place, org.place_id), session.get(Place, yard.place_id)
        return area is not None and place is not None and place.path.startswith(area.path)
    return False


def _record_change(session: Session, yard_id: int, actor: Actor, action: str, details: dict | None = None) -> None:
    session.add(SafeYardChange(safe_yard_id=yard_id, user_id=actor.user_id, action=action, details=details))


def create_yard(session: Session, actor: Actor, place_id: int, joined_on: date, *, inspector_id: int | None = None,
                characteristics: dict | None = None, notes: str | None = None) -> SafeYard:
    place = session.get(Place, place_id)
    if place is None or place.kind != "yard":
        raise PassportError("a safe yard is a place of kind yard")
    if session.scalar(select(SafeYard).where(SafeYard.place_id == place_id)):
        raise PassportError("this yard already has a passport")
    district = district_of(session, place)
    yard = SafeYard(place_id=place_id, district_id=district.id if district else None, inspector_id=inspector_id,
                    joined_on=joined_on, characteristics=characteristics or {}, notes=notes)
    session.add(yard)
    session.flush()
    _record_change(session, yard.id, actor, "created", {"place_id": place_id})
    return yard


EDITABLE = ("characteristics", "notes", "inspector_id", "joined_on")


def update_yard(session: Session, actor: Actor, yard: SafeYard, changes: dict) -> SafeYard:
    """Change the passport's non-personal part; the history records which fields changed."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise PassportError(f"cannot change {', '.join(sorted(unknown))}")
    if "characteristics" in changes and not isinstance(changes["characteristics"], dict):
        raise PassportError("characteristics must be an object of name: value")
    if changes.get("inspector_id") is not None:
        inspector = session.get(User, changes["inspector_id"])
        if inspector is None or inspector.role != Role.INSPECTOR:
            raise PassportError("the responsible person must be an inspector")
    for key, value in changes.items():
        setattr(yard, key, value)
    _record_change(session, yard.id, actor, "changed", {"fields": sorted(changes)})
    return yard


def _clean(category: str, fields: dict) -> dict:
    if category not in CATEGORIES:
        raise PassportError(f"unknown category {category!r} (known: {', '.join(CATEGORIES)})")
    allowed, required, _ = CATEGORIES[category]
    unknown = set(fields) - set(allowed)
    if unknown:
        raise PassportError(f"unknown field(s) {', '.join(sorted(unknown))} for {category}")
    out = {}
    for name in allowed:
        value = fields.get(name)
        value = value.strip() if isinstance(value, str) else value
        if value in (None, ""):
            if name in required:
                raise PassportError(f"{name} is required for {category}")
            continue
        if name in DATE_FIELDS:
            try:
                value = date.fromisoformat(str(value)[:10]).isoformat()
            except ValueError:
                try:
                    d, m, y = str(value).split(".")
                    value = date(int(y), int(m), int(d)).isoformat()
                except ValueError:
                    raise PassportError(f"{name} {value!r} is not a date") from None
        if name == "iin" and not valid_iin(str(value)):
            raise PassportError(f"iin {value!r} is not a valid 12-digit national ID number")
        out[name] = str(value)
    return out


def add_person(session: Session, vault: Vault, actor: Actor, yard: SafeYard, category: str,
               fields: dict) -> PersonRecord:
    clean = _clean(category, fields)
    payload, key_id = vault.seal(clean)
    check = CATEGORIES[category][2]
    rec = PersonRecord(safe_yard_id=yard.id, category=category, payload=payload, key_id=key_id,
                       name_index=vault.blind("name", clean.get("name") or clean.get("tenant")),
                       iin_index=vault.blind("iin", clean.get("iin")),
                       check_on=date.fromisoformat(clean[check]) if check and check in clean else None)
    session.add(rec)
    session.flush()
    _record_change(session, yard.id, actor, "person_added", {"category": category, "person_id": rec.id})
    return rec


def masked_list(session: Session, vault: Vault, yard: SafeYard) -> dict:
    """Counts per category and masked values: what a list view shows until a record is opened with a purpose."""
    people = session.scalars(select(PersonRecord).where(PersonRecord.safe_yard_id == yard.id)).all()
    counts = {c: 0 for c in CATEGORIES}
    items = []
    for rec in people:
        counts[rec.category] += 1
        fields = vault.open(rec.payload)
        items.append({"id": rec.id, "category": rec.category,
                      "name": mask(fields.get("name") or fields.get("tenant")),
                      "apartment": fields.get("apartment"), "check_on": rec.check_on})
    return {"counts": counts, "people": items}


def read_person(session: Session, vault: Vault, actor: Actor, user: User, yard: SafeYard, person_id: int,
                purpose: str) -> dict:
    if not may_read_personal(session, user, yard):
        raise NotVisible()
    if not purpose or len(purpose.strip()) < 3:
        raise PassportError("reading personal data needs a purpose")
    rec = session.get(PersonRecord, person_id)
    if rec is None or rec.safe_yard_id != yard.id:
        raise NotVisible()
    audit.append(session, actor, Action.PERSONAL_DATA_READ, object_type="safe_yard_person", object_id=rec.id,
                 purpose=purpose.strip(), details={"safe_yard_id": yard.id, "category": rec.category})
    return {"id": rec.id, "category": rec.category, **vault.open(rec.payload)}


def read_all(session: Session, vault: Vault, actor: Actor, user: User, yard: SafeYard, purpose: str) -> list[dict]:
    if not may_read_personal(session, user, yard):
        raise NotVisible()
    if not purpose or len(purpose.strip()) < 3:
        raise PassportError("reading personal data needs a purpose")
    people = session.scalars(select(PersonRecord).where(PersonRecord.safe_yard_id == yard.id)).all()
    audit.append(session, actor, Action.PERSONAL_DATA_READ, object_type="safe_yard", object_id=yard.id,
                 purpose=purpose.strip(), details={"people": len(people)})
    return [{"id": r.id, "category": r.category, **vault.open(r.payload)} for r in people]


def find(session: Session, vault: Vault, *, name: str | None = None, iin: str | None = None) -> list[PersonRecord]:
    """Search by keyed hashes of the normalised name or national ID number (no decryption of the table)."""
    query = select(PersonRecord)
    if name:
        query = query.where(PersonRecord.name_index == vault.blind("name", name))
    if iin:
        query = query.where(PersonRecord.iin_index == vault.blind("iin", iin))
    return list(session.scalars(query))


def erase_person(session: Session, actor: Actor, user: User, yard: SafeYard, person_id: int, basis: str) -> None:
    if not may_read_personal(session, user, yard):
        raise NotVisible()
    rec = session.get(PersonRecord, person_id)
    if rec is None or rec.safe_yard_id != yard.id:
        raise NotVisible()
    session.delete(rec)
    _record_change(session, yard.id, actor, "person_erased", {"category": rec.category, "person_id": person_id})
    audit.append(session, actor, Action.PERSONAL_DATA_ERASED, object_type="safe_yard_person", object_id=person_id,
                 legal_basis=basis, details={"safe_yard_id": yard.id})


def subject_access(session: Session, vault: Vault, actor: Actor, user: User, *, iin: str, purpose: str) -> list[dict]:
    """Right of access: every record held about one person (found by national ID number), for that person."""
    records = find(session, vault, iin=iin)
    out = []
    for rec in records:
        yard = session.get(SafeYard, rec.safe_yard_id)
        if not may_read_personal(session, user, yard):
            continue
        out.append({"safe_yard_id": yard.id, "category": rec.category, **vault.open(rec.payload)})
    audit.append(session, actor, Action.PERSONAL_DATA_EXPORTED, object_type="subject_access",
                 purpose=purpose, details={"records": len(out)})
    return out


def yard_address(session: Session, place: Place) -> str | None:
    """The yard's full address as a line: the nearest address up the place tree (the building's «ул. Абая, 11»), then
    the district and the settlement — «ул. Абая, 11, Северный район, Кызылорда». No empty parts; None when the tree
    holds none of them."""
    ids = [int(i) for i in place.path.strip("/").split("/") if i] if place.path else [place.id]
    chain = [p for p in (session.get(Place, i) for i in reversed(ids)) if p is not None]  # the yard first, then up
    parts: list[str] = []
    street_address = next((p.address.strip() for p in chain if p.address and p.address.strip()), None)
    if street_address:
        parts.append(street_address)
    for kind in ("district", "settlement"):
        name = next((p.name for p in chain if p.kind == kind and p.name), None)
        if name and name not in parts:
            parts.append(name)
    return ", ".join(parts) or None


def nearby_streets(session: Session, place: Place, radius_m: float = 400) -> list[dict]:
    """Streets of the network (places with a line geometry) passing within ``radius_m`` of the yard, for its map:
    ``{"name", "type", "coordinates"}`` with lon/lat lines."""
    import numpy as np
    import shapely
    from shapely.geometry import Point, mapping

    from kuzet.services.crime.analysis import database_streets
    from kuzet.services.crime.geo import Projection

    if place.lat is None or place.lon is None:
        return []
    proj = Projection(place.lat, place.lon)
    x, y = proj.to_metres([place.lon], [place.lat])
    here = Point(float(x[0]), float(y[0]))
    out = []
    for _district, name, line in database_streets(session):
        metric = shapely.transform(line, lambda xy: np.column_stack(proj.to_metres(xy[:, 0], xy[:, 1])))
        if metric.distance(here) <= radius_m:
            out.append({"name": name, "type": line.geom_type, "coordinates": mapping(line)["coordinates"]})
    return out


def yard_cameras(session: Session, yard: SafeYard, user: User | None, recorder=None) -> list[dict]:  # noqa: ANN001
    """Cameras of the yard and of its building that ``user`` holds a grant on, with their state (``user`` None: all of
    them, for the programme's counts, which name no camera)."""
    from kuzet.services import access

    place = session.get(Place, yard.place_id)
    scope = session.get(Place, place.parent_id) if place.parent_id else place
    query = access.visible_cameras(user) if user is not None else select(Camera)
    cams = session.scalars(query.join(Place, Place.id == Camera.place_id)
                           .where(Place.path.startswith(scope.path)).order_by(Camera.id)).all()
    out = []
    for c in cams:
        health = recorder.health(c.id) if recorder else None
        out.append({"id": c.id, "name": c.name, "lat": c.lat, "lon": c.lon, "bearing": c.bearing,
                    "state": (health or {}).get("state") or ("enabled" if c.enabled else "disabled")})
    return out
