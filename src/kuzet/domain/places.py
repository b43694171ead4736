"""The place tree: region → district → settlement → street / building → entrance, yard, school, …"""

from __future__ import annotations

from enum import StrEnum


class PlaceKind(StrEnum):
    REGION = "region"
    DISTRICT = "district"
    SETTLEMENT = "settlement"
    STREET = "street"
    BUILDING = "building"
    ENTRANCE = "entrance"
    YARD = "yard"
    SCHOOL = "school"
    PUBLIC_PLACE = "public_place"
    ROAD_POINT = "road_point"


# Which kinds may sit directly under which. A region may hold districts, a district settlements, and so on.
ALLOWED_PARENTS: dict[PlaceKind, set[PlaceKind | None]] = {
    PlaceKind.REGION: {None},
    PlaceKind.DISTRICT: {PlaceKind.REGION, PlaceKind.SETTLEMENT, None},
    PlaceKind.SETTLEMENT: {PlaceKind.DISTRICT, PlaceKind.REGION, None},
    PlaceKind.STREET: {PlaceKind.SETTLEMENT, PlaceKind.DISTRICT},
    PlaceKind.BUILDING: {PlaceKind.STREET, PlaceKind.SETTLEMENT, PlaceKind.DISTRICT},
    PlaceKind.ENTRANCE: {PlaceKind.BUILDING},
    PlaceKind.YARD: {PlaceKind.BUILDING, PlaceKind.STREET, PlaceKind.SETTLEMENT, PlaceKind.DISTRICT},
    PlaceKind.SCHOOL: {PlaceKind.STREET, PlaceKind.SETTLEMENT, PlaceKind.DISTRICT, PlaceKind.BUILDING},
    PlaceKind.PUBLIC_PLACE: {PlaceKind.STREET, PlaceKind.SETTLEMENT, PlaceKind.DISTRICT},
    PlaceKind.ROAD_POINT: {PlaceKind.STREET, PlaceKind.SETTLEMENT, PlaceKind.DISTRICT, PlaceKind.REGION},
}


def check_parent(kind: PlaceKind, parent_kind: PlaceKind | None) -> str | None:
    """Return a human-readable problem if ``kind`` may not sit under ``parent_kind``, else None."""
    allowed = ALLOWED_PARENTS[kind]
    if parent_kind in allowed:
        return None
    if parent_kind is None:
        return f"a {kind.value} needs a parent place"
    return f"a {kind.value} cannot be placed inside a {parent_kind.value}"


def child_path(parent_path: str | None, place_id: int) -> str:
    """Materialised path of a place: ``/1/5/9/``. A subtree is every path that starts with its root's path."""
    return f"{parent_path or '/'}{place_id}/"


def check_coordinates(lat: float | None, lon: float | None) -> str | None:
    if (lat is None) != (lon is None):
        return "latitude and longitude go together"
    if lat is not None and not -90 <= lat <= 90:
        return f"latitude {lat} is outside -90..90"
    if lon is not None and not -180 <= lon <= 180:
        return f"longitude {lon} is outside -180..180"
    return None
