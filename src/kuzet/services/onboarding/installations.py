"""The telecom's installation list: one camera per row, with the building, entrance or yard it hangs in, creating the
place tree and the cameras in one go — every row or none, every bad row named.

Columns (header names as below, any order; CSV in UTF-8 with commas or semicolons, or XLSX):

``parent``     required  an existing place (id, or a name no other place has) the buildings belong to: a street,
                         settlement or district
``building``   required  the building's name ("ул. Абая, 12"); found under ``parent`` by name, or created
``address``, ``building_lat``, ``building_lon``   the building's address and position (when it is created)
``entrance``   an entrance of the building ("Подъезд 1"), found or created;  ``yard``: a yard of it instead
``camera``     required  the camera's name, unique within its place
``main_url``   required  the stream URL; ``sub_url`` the sub stream; ``username`` / ``password`` its credentials
               (or ``rtsp://user:pass@…`` in the URL), encrypted like every camera's
``kind``       the camera kind (default: entrance, yard, or other by where it hangs)
``lat``, ``lon``, ``bearing``, ``retention_days``, ``installed_on`` (YYYY-MM-DD), ``owner`` (organisation name)

Only the places the importer manages may receive buildings: a ``parent`` outside them reads "not found", exactly
like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.domain.access import Right
from kuzet.domain.imports import ImportRejected, RowError
from kuzet.domain.places import PlaceKind, check_coordinates
from kuzet.services import access, audit
from kuzet.services.audit import Actor
from kuzet.services.cameras import (
    CAMERA_KINDS,
    DEFAULT_SCHEMES,
    CameraError,
    create_camera,
    join_credentials,
    redact,
    split_credentials,
)
from kuzet.services.keys import Keyring
from kuzet.services.places import PlaceError, create_place
from kuzet.store.models import Camera, Organisation, Place, User

IMPORTED = "onboarding.installations_imported"
COLUMNS = ("parent", "building", "address", "building_lat", "building_lon", "entrance", "yard", "camera", "kind",
           "main_url", "sub_url", "username", "password", "lat", "lon", "bearing", "retention_days", "installed_on",
           "owner")
REQUIRED = ("parent", "building", "camera", "main_url")
MAX_ROWS = 100_000
BUILDING_PARENTS = {PlaceKind.STREET, PlaceKind.SETTLEMENT, PlaceKind.DISTRICT}


class InstallationListError(ImportRejected):
    """The list was refused as a whole; ``errors`` names every bad row."""


@dataclass
class ImportedCamera:
    line: int
    camera_id: int
    name: str
    place_id: int


@dataclass
class InstallationImport:
    cameras: list[ImportedCamera] = field(default_factory=list)
    places_created: int = 0
    places_reused: int = 0

    def as_dict(self) -> dict:
        return {"imported": len(self.cameras), "places_created": self.places_created,
                "places_reused": self.places_reused,
                "cameras": [{"line": c.line, "camera_id": c.camera_id, "name": c.name, "place_id": c.place_id}
                            for c in self.cameras]}


@dataclass
class _Row:
    line: int
    parent_id: int
    building: str
    address: str | None
    building_lat: float | None
    building_lon: float | None
    site_kind: PlaceKind | None  # entrance or yard, or None: the camera hangs on the building
    site: str | None
    camera: dict[str, Any]


def _text(value: Any, name: str, limit: int = 200) -> str:
    text = "" if value is None else str(value).strip()
    if any(ord(c) < 32 for c in text):
        raise CameraError(f"{name} holds control characters")
    if len(text) > limit:
        raise CameraError(f"{name} is longer than {limit} characters")
    return text


def _number(value: Any, name: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise CameraError(f"{name} {value!r} is not a number")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        try:
            number = float(str(value).strip().replace(",", "."))
        except ValueError:
            raise CameraError(f"{name} {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise CameraError(f"{name} {value!r} is not a number")
    return number


def _whole(value: Any, name: str, default: int) -> int:
    number = _number(value, name)
    if number is None:
        return default
    if number != int(number):
        raise CameraError(f"{name} {value!r} is not a whole number")
    return int(number)


def _day(value: Any, name: str) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise CameraError(f"{name} {value!r} is not a date (YYYY-MM-DD)") from None


def _with_credentials(url: str, username: str, password: str, schemes: Collection[str]) -> str:
    """The URL with the row's credentials, unless it carries its own."""
    clean, creds = split_credentials(url, schemes)
    if creds or not username:
        return url
    return join_credentials(clean, f"{username}:{password}" if password else username)


class _Places:
    """Finds the parents a caller may fill, and buildings and sites by name (in the database or made by this list)."""

    def __init__(self, session: Session, user: User | None) -> None:
        self.session = session
        self.user = user
        self.parents: dict[str, int | None] = {}

    def parent(self, ref: str) -> int:
        if ref in self.parents:
            found = self.parents[ref]
        else:
            found = self._find_parent(ref)
            self.parents[ref] = found
        if found is None:
            raise CameraError(f"place {ref!r} not found (give its id, or a name no other place has)")
        return found

    def _find_parent(self, ref: str) -> int | None:
        if ref.isdigit():
            place = self.session.get(Place, int(ref))
        else:
            matches = self.session.scalars(select(Place).where(Place.name == ref).limit(2)).all()
            place = matches[0] if len(matches) == 1 else None
        if place is None or not self._manages(place):
            return None
        if PlaceKind(place.kind) not in BUILDING_PARENTS:
            raise CameraError(f"buildings cannot be placed inside a {place.kind} ({ref!r}); use a street, "
                              "settlement or district")
        return place.id

    def _manages(self, place: Place) -> bool:
        return self.user is None or Right.MANAGE in access.place_rights(self.session, self.user, place)

    def child(self, parent_id: int, kind: PlaceKind, name: str) -> Place | None:
        return self.session.scalar(select(Place).where(Place.parent_id == parent_id, Place.kind == kind.value,
                                                       Place.name == name).order_by(Place.id).limit(1))


def parse_rows(session: Session, headers: list[str], rows: list[tuple[int, list[Any]]],
               places: _Places, url_schemes: Collection[str]) -> tuple[list[_Row], list[RowError]]:
    """Validate every row without writing anything."""
    names = [str(h or "").strip().lower() for h in headers]
    missing = [c for c in REQUIRED if c not in names]
    unknown = [h for h in names if h and h not in COLUMNS]
    if missing or unknown:
        problems = ([f"missing column(s): {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s): {', '.join(unknown)} (known: {', '.join(COLUMNS)})"] if unknown else [])
        return [], [RowError(1, "; ".join(problems))]
    if not rows:
        return [], [RowError(2, "the file has no camera rows")]
    if len(rows) > MAX_ROWS:
        return [], [RowError(MAX_ROWS + 2, f"more than {MAX_ROWS} rows; split the list")]
    orgs = dict(session.execute(select(Organisation.name, Organisation.id)).all())
    parsed: list[_Row] = []
    errors: list[RowError] = []
    seen: dict[tuple, int] = {}
    for line, values in rows:
        if len(values) > len(names) and any(v not in (None, "") for v in values[len(names):]):
            errors.append(RowError(line, "more values than columns"))
            continue
        raw = {names[i]: values[i] if i < len(values) else None for i in range(len(names)) if names[i]}
        try:
            parent = _text(raw.get("parent"), "parent")
            building = _text(raw.get("building"), "building")
            camera_name = _text(raw.get("camera"), "camera")
            for name, value in (("parent", parent), ("building", building), ("camera", camera_name)):
                if not value:
                    raise CameraError(f"{name} is empty")
            entrance, yard = _text(raw.get("entrance"), "entrance"), _text(raw.get("yard"), "yard")
            if entrance and yard:
                raise CameraError("a camera hangs in an entrance or in a yard, not both")
            site_kind = PlaceKind.ENTRANCE if entrance else PlaceKind.YARD if yard else None
            kind = _text(raw.get("kind"), "kind").lower() or (
                "entrance" if entrance else "yard" if yard else "other")
            if kind not in CAMERA_KINDS:
                raise CameraError(f"unknown camera kind {kind!r} (known: {', '.join(CAMERA_KINDS)})")
            b_lat, b_lon = _number(raw.get("building_lat"), "building_lat"), _number(raw.get("building_lon"),
                                                                                      "building_lon")
            lat, lon = _number(raw.get("lat"), "lat"), _number(raw.get("lon"), "lon")
            problem = check_coordinates(b_lat, b_lon) or check_coordinates(lat, lon)
            if problem:
                raise CameraError(problem)
            username = _text(raw.get("username"), "username")
            password = "" if raw.get("password") is None else str(raw.get("password"))
            if password and not username:
                raise CameraError("password without username")
            main = _text(raw.get("main_url"), "main_url", 1000)
            if not main:
                raise CameraError("main_url is empty")
            main = _with_credentials(main, username, password, url_schemes)
            sub = _text(raw.get("sub_url"), "sub_url", 1000)
            sub = _with_credentials(sub, username, password, url_schemes) if sub else None
            owner = _text(raw.get("owner"), "owner")
            if owner and owner not in orgs:
                raise CameraError(f"no organisation {owner!r}")
            retention = _whole(raw.get("retention_days"), "retention_days", 30)
            if not 1 <= retention <= 3650:
                raise CameraError("retention_days must be within 1..3650")
            bearing = _number(raw.get("bearing"), "bearing")
            if bearing is not None and not 0 <= bearing < 360:
                raise CameraError("bearing must be within 0..360 degrees")
            parent_id = places.parent(parent)
            camera = {"name": camera_name, "kind": kind, "main_url": main, "sub_url": sub, "lat": lat, "lon": lon,
                      "bearing": bearing, "retention_days": retention,
                      "installed_on": _day(raw.get("installed_on"), "installed_on"),
                      "owner_org_id": orgs[owner] if owner else None}
            key = (parent_id, building.casefold(), site_kind, (entrance or yard).casefold(), camera_name.casefold())
            if key in seen:
                raise CameraError(f"the same camera as line {seen[key]}")
            seen[key] = line
            row = _Row(line, parent_id, building, _text(raw.get("address"), "address", 400) or None, b_lat, b_lon,
                       site_kind, entrance or yard or None, camera)
            if _existing_camera(session, places, row):
                raise CameraError(f"camera {camera_name!r} already exists there")
            parsed.append(row)
        except (CameraError, PlaceError) as exc:
            errors.append(RowError(line, redact(str(exc))))
    return parsed, errors


def _existing_camera(session: Session, places: _Places, row: _Row) -> bool:
    building = places.child(row.parent_id, PlaceKind.BUILDING, row.building)
    if building is None:
        return False
    place = building if row.site_kind is None else places.child(building.id, row.site_kind, row.site or "")
    if place is None:
        return False
    return session.scalar(select(Camera.id).where(Camera.place_id == place.id,
                                                  Camera.name == row.camera["name"]).limit(1)) is not None


def import_installations(session: Session, actor: Actor, keys: Keyring, source: Path, *,
                         user: User | None = None, url_schemes: Collection[str] = DEFAULT_SCHEMES,
                         progress: Callable[[int, int], None] | None = None) -> InstallationImport:
    """Import an installation list (CSV or XLSX). ``user`` (None: the system) may only fill places it manages.

    Raises InstallationListError naming every bad row; then nothing was written."""
    from kuzet.services.crime.importing import ImportRejected, read_table

    try:
        headers, rows = read_table(Path(source))
    except ImportRejected as exc:
        raise InstallationListError([RowError(e.line, e.message) for e in exc.errors]) from None
    places = _Places(session, user)
    parsed, errors = parse_rows(session, headers, rows, places, url_schemes)
    if errors:
        raise InstallationListError(errors)
    result = InstallationImport()
    made: dict[tuple, int] = {}
    with session.begin_nested():  # one savepoint: a failure on any row leaves nothing behind
        for n, row in enumerate(parsed, 1):
            try:
                building_id = _place(session, actor, places, made, result, row.parent_id, PlaceKind.BUILDING,
                                     row.building, address=row.address, lat=row.building_lat, lon=row.building_lon)
                place_id = building_id if row.site_kind is None else _place(
                    session, actor, places, made, result, building_id, row.site_kind, row.site or "")
                camera = create_camera(session, actor, keys, url_schemes=url_schemes, place_id=place_id,
                                       **row.camera)
            except (CameraError, PlaceError) as exc:
                raise InstallationListError([RowError(row.line, redact(str(exc)))]) from None
            result.cameras.append(ImportedCamera(row.line, camera.id, camera.name, place_id))
            if progress:
                progress(n, len(parsed))
        audit.append(session, actor, IMPORTED, object_type="camera",
                     details={"cameras": len(result.cameras), "places_created": result.places_created})
    return result


def _place(session: Session, actor: Actor, places: _Places, made: dict[tuple, int], result: InstallationImport,
           parent_id: int, kind: PlaceKind, name: str, **values: Any) -> int:
    key = (parent_id, kind, name.casefold())
    if key in made:
        return made[key]
    existing = places.child(parent_id, kind, name)
    if existing is not None:
        result.places_reused += 1
        made[key] = existing.id
    else:
        made[key] = create_place(session, actor, kind, name, parent_id=parent_id, **values).id
        result.places_created += 1
    return made[key]
