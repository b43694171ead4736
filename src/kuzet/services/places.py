"""Places and organisations."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.domain.access import OrganisationKind
from kuzet.domain.audit import Action
from kuzet.domain.places import PlaceKind, check_coordinates, check_parent, child_path
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.store.models import Organisation, Place


class PlaceError(ValueError):
    pass


def create_place(
    session: Session,
    actor: Actor,
    kind: PlaceKind | str,
    name: str,
    *,
    parent_id: int | None = None,
    address: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    population: int | None = None,
    geometry: dict | None = None,
) -> Place:
    try:
        kind = PlaceKind(kind)
    except ValueError:
        raise PlaceError(f"unknown place kind {kind!r} (known: {', '.join(k.value for k in PlaceKind)})") from None
    if not name or not name.strip():
        raise PlaceError("a place needs a name")
    parent = session.get(Place, parent_id) if parent_id is not None else None
    if parent_id is not None and parent is None:
        raise PlaceError(f"no parent place {parent_id}")
    problem = check_parent(kind, PlaceKind(parent.kind) if parent else None) or check_coordinates(lat, lon)
    if problem:
        raise PlaceError(problem)
    place = Place(kind=kind.value, name=name.strip(), parent_id=parent_id, address=address, lat=lat, lon=lon,
                  population=population, geometry=geometry, path="")
    session.add(place)
    session.flush()
    place.path = child_path(parent.path if parent else None, place.id)
    audit.append(session, actor, Action.PLACE_CREATED, object_type="place", object_id=place.id,
                 details={"kind": kind.value, "name": place.name, "parent_id": parent_id})
    return place


def ancestors(session: Session, place: Place) -> list[Place]:
    ids = [int(p) for p in place.path.strip("/").split("/") if p]
    by_id = {p.id: p for p in session.scalars(select(Place).where(Place.id.in_(ids)))}
    return [by_id[i] for i in ids if i in by_id]


def district_of(session: Session, place: Place) -> Place | None:
    for p in ancestors(session, place):
        if p.kind == PlaceKind.DISTRICT:
            return p
    return None


def create_organisation(
    session: Session, actor: Actor, name: str, kind: OrganisationKind | str, *, place_id: int | None = None
) -> Organisation:
    try:
        kind = OrganisationKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in OrganisationKind)
        raise PlaceError(f"unknown organisation kind {kind!r} (known: {known})") from None
    if session.scalar(select(Organisation).where(Organisation.name == name)):
        raise PlaceError(f"organisation {name!r} already exists")
    org = Organisation(name=name, kind=kind.value, place_id=place_id)
    session.add(org)
    session.flush()
    audit.append(session, actor, Action.ORGANISATION_CREATED, object_type="organisation", object_id=org.id,
                 details={"name": name, "kind": kind.value})
    return org
