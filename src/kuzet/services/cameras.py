"""The camera registry: create, change, import from CSV. Credentials are split off the URL and encrypted.

Stream URLs may use only the schemes the installation allows (``security.camera_url_schemes``: RTSP, RTMP, SRT and
HTTP(S) by default). ``file:`` and others (``udp``, ``tcp``, …) make the recorder's FFmpeg open local files or raw
sockets, so they are refused unless the setting lists them (a demo or a test that plays local videos).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.config import SecurityConfig, Settings
from kuzet.domain.audit import Action
from kuzet.domain.places import check_coordinates
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.services.keys import Keyring
from kuzet.store.models import Camera, Organisation, Place

# Schemes FFmpeg can record from; an installation allows the network ones unless configured otherwise.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "srt", "http", "https", "file", "udp", "tcp")
DEFAULT_SCHEMES = frozenset(SecurityConfig().camera_url_schemes)
CAMERA_KINDS = ("entrance", "yard", "street", "school", "road", "gate", "public_place", "shop", "other")


class CameraError(ValueError):
    pass


def allowed_schemes(settings: Settings) -> frozenset[str]:
    """The stream URL schemes this installation accepts (``security.camera_url_schemes``)."""
    return frozenset(s.strip().lower() for s in settings.security.camera_url_schemes)


def split_credentials(url: str, url_schemes: Collection[str] = DEFAULT_SCHEMES) -> tuple[str, str | None]:
    """``rtsp://user:pw@host/x`` → (``rtsp://host/x``, ``user:pw``). Raises CameraError for a URL whose scheme is not
    allowed (``url_schemes``) or that FFmpeg can't read."""
    url = url.strip()
    if not url or len(url) > 1000 or any(c.isspace() or ord(c) < 32 for c in url):
        raise CameraError("a stream URL must be 1 to 1000 characters without spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise CameraError("the stream URL is malformed (host or port)") from None
    scheme = parts.scheme.lower()
    allowed = sorted(s for s in url_schemes if s in STREAM_SCHEMES)
    if scheme not in allowed:
        raise CameraError(f"stream URL scheme {scheme + ':' if scheme else '(none)'} is not allowed here "
                          f"(allowed: {', '.join(allowed)})")
    if scheme != "file" and not parts.hostname:
        raise CameraError("stream URL has no host")
    creds = None
    if parts.username is not None:
        creds = unquote(parts.username) + (":" + unquote(parts.password) if parts.password is not None else "")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), creds


def join_credentials(url: str, creds: str | None) -> str:
    if not creds:
        return url
    user, _, password = creds.partition(":")
    parts = urlsplit(url)
    userinfo = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit((parts.scheme, f"{userinfo}@{parts.netloc}", parts.path, parts.query, parts.fragment))


def redact(text: str) -> str:
    """Remove ``user:password@`` from any URL in a text (for logs and error messages)."""
    import re

    return re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", text)


def stream_url(camera: Camera, keys: Keyring, which: str = "main") -> str | None:
    """The full URL with credentials, for the recorder only. Never log or return it."""
    url = camera.main_url if which == "main" else camera.sub_url
    creds_enc = camera.main_credentials if which == "main" else camera.sub_credentials
    if url is None:
        return None
    return join_credentials(url, keys.decrypt(creds_enc) if creds_enc else None)


EDITABLE = ("name", "kind", "place_id", "owner_org_id", "main_url", "sub_url", "lat", "lon", "bearing",
            "field_of_view", "view_radius_m", "retention_days", "enabled", "installed_on")


def _validate(session: Session, values: dict[str, Any]) -> None:
    if not values.get("name") or not str(values["name"]).strip():
        raise CameraError("camera needs a name")
    if len(str(values["name"]).strip()) > 200:
        raise CameraError("a camera's name is at most 200 characters")
    if values.get("kind") not in CAMERA_KINDS:
        raise CameraError(f"unknown camera kind {values.get('kind')!r} (known: {', '.join(CAMERA_KINDS)})")
    if values.get("place_id") is None or session.get(Place, values["place_id"]) is None:
        raise CameraError(f"no place {values.get('place_id')}")
    if values.get("owner_org_id") is not None and session.get(Organisation, values["owner_org_id"]) is None:
        raise CameraError(f"no organisation {values['owner_org_id']}")
    problem = check_coordinates(values.get("lat"), values.get("lon"))
    if problem:
        raise CameraError(problem)
    b = values.get("bearing")
    if b is not None and not 0 <= b < 360:
        raise CameraError("bearing must be within 0..360 degrees")
    f = values.get("field_of_view")
    if f is not None and not 0 < f <= 360:
        raise CameraError("field_of_view must be within 0..360 degrees")
    v = values.get("view_radius_m")
    if v is not None and not 0 < v <= 10_000:
        raise CameraError("view_radius_m must be within 0..10000 metres")
    r = values.get("retention_days")
    if r is None or not 1 <= int(r) <= 3650:
        raise CameraError("retention_days must be within 1..3650")


def _apply_urls(camera: Camera, values: dict[str, Any], keys: Keyring, url_schemes: Collection[str]) -> None:
    for which in ("main", "sub"):
        key = f"{which}_url"
        if key not in values:
            continue
        raw = values[key]
        if raw in (None, ""):
            if which == "main":
                raise CameraError("camera needs a main stream URL")
            camera.sub_url, camera.sub_credentials = None, None
            continue
        clean, creds = split_credentials(raw, url_schemes)
        setattr(camera, key, clean)
        setattr(camera, f"{which}_credentials", keys.encrypt(creds) if creds else None)


def create_camera(session: Session, actor: Actor, keys: Keyring, *, url_schemes: Collection[str] = DEFAULT_SCHEMES,
                  **values: Any) -> Camera:
    """Create a camera; its stream URLs must use one of ``url_schemes`` (``allowed_schemes(settings)``)."""
    values.setdefault("kind", "street")
    values.setdefault("retention_days", 30)
    values.setdefault("enabled", True)
    _validate(session, values)
    camera = Camera(**{k: v for k, v in values.items() if k in EDITABLE and not k.endswith("_url")})
    camera.name = str(values["name"]).strip()
    _apply_urls(camera, {"main_url": values.get("main_url"), "sub_url": values.get("sub_url")}, keys, url_schemes)
    session.add(camera)
    session.flush()
    audit.append(session, actor, Action.CAMERA_CREATED, object_type="camera", object_id=camera.id,
                 camera_id=camera.id, details={"name": camera.name, "place_id": camera.place_id})
    return camera


def update_camera(session: Session, actor: Actor, keys: Keyring, camera: Camera, *,
                  url_schemes: Collection[str] = DEFAULT_SCHEMES, **changes: Any) -> Camera:
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise CameraError(f"cannot change {', '.join(sorted(unknown))}")
    merged = {k: getattr(camera, k) for k in EDITABLE if not k.endswith("_url")}
    merged.update({k: v for k, v in changes.items() if not k.endswith("_url")})
    _validate(session, merged)
    for key, value in changes.items():
        if not key.endswith("_url"):
            setattr(camera, key, value)
    _apply_urls(camera, {k: v for k, v in changes.items() if k.endswith("_url")}, keys, url_schemes)
    session.flush()
    changed = sorted(changes)
    audit.append(session, actor, Action.CAMERA_CHANGED, object_type="camera", object_id=camera.id,
                 camera_id=camera.id, details={"changed": changed})
    return camera


def delete_camera(session: Session, actor: Actor, camera: Camera) -> None:
    audit.append(session, actor, Action.CAMERA_DELETED, object_type="camera", object_id=camera.id,
                 camera_id=camera.id, details={"name": camera.name})
    session.delete(camera)
    session.flush()


# --- CSV import -------------------------------------------------------------------------------------------------

IMPORT_COLUMNS = ("name", "place", "kind", "main_url", "sub_url", "owner", "lat", "lon", "bearing",
                  "field_of_view", "view_radius_m", "retention_days", "enabled", "installed_on")


@dataclass
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportResult:
    created: list[int] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportRejected(CameraError):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} bad row(s); nothing imported: " + "; ".join(map(str, errors[:20])))
        self.errors = errors


def _float(value: str, name: str) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        return float(value.replace(",", "."))
    except ValueError:
        raise CameraError(f"{name} {value!r} is not a number") from None


def _bool(value: str) -> bool:
    v = (value or "").strip().lower()
    if v in ("", "1", "true", "yes", "y", "да", "иә"):
        return True
    if v in ("0", "false", "no", "n", "нет", "жоқ"):
        return False
    raise CameraError(f"enabled {value!r} is not yes/no")


def _resolve_place(session: Session, ref: str, cache: dict[str, int]) -> int:
    ref = (ref or "").strip()
    if not ref:
        raise CameraError("place is empty")
    if ref in cache:
        return cache[ref]
    if ref.isdigit() and session.get(Place, int(ref)):
        cache[ref] = int(ref)
        return cache[ref]
    matches = session.scalars(select(Place.id).where(Place.name == ref)).all()
    if len(matches) != 1:
        raise CameraError(f"place {ref!r} " + ("not found" if not matches else "is ambiguous; use its id"))
    cache[ref] = matches[0]
    return matches[0]


def import_csv(session: Session, actor: Actor, keys: Keyring, source: str | Path | io.TextIOBase,
               progress=None, *, url_schemes: Collection[str] = DEFAULT_SCHEMES) -> ImportResult:  # noqa: ANN001
    """Validate every row; create all cameras or none. Raises ImportRejected naming each bad line (a stream URL
    with a scheme outside ``url_schemes`` among them)."""
    if isinstance(source, (str, Path)):
        try:
            text = Path(source).read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise CameraError(f"{source}: not UTF-8 text") from None
        stream: io.TextIOBase = io.StringIO(text)
    else:
        stream = source
    reader = csv.DictReader(stream)
    try:
        headers = [h.strip() for h in (reader.fieldnames or [])]
        rows = list(reader)
    except csv.Error as exc:  # a NUL byte, an unterminated quote at the end, …
        raise ImportRejected([RowError(reader.line_num or 1, f"not readable as CSV: {exc}")]) from None
    missing = {"name", "place", "main_url"} - set(headers)
    if missing:
        raise ImportRejected([RowError(1, f"missing column(s): {', '.join(sorted(missing))}")])
    unknown = set(headers) - set(IMPORT_COLUMNS)
    if unknown:
        raise ImportRejected([RowError(1, f"unknown column(s): {', '.join(sorted(unknown))}")])
    result = ImportResult()
    place_cache: dict[str, int] = {}
    orgs = {o.name: o.id for o in session.scalars(select(Organisation))}
    prepared: list[tuple[int, dict[str, Any]]] = []
    for index, raw in enumerate(rows):
        line = index + 2  # header is line 1
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if None in raw:
            result.errors.append(RowError(line, "more values than columns"))
            continue
        try:
            values: dict[str, Any] = {
                "name": row.get("name"),
                "kind": row.get("kind") or "street",
                "place_id": _resolve_place(session, row.get("place", ""), place_cache),
                "main_url": row.get("main_url"),
                "sub_url": row.get("sub_url") or None,
                "lat": _float(row.get("lat", ""), "lat"),
                "lon": _float(row.get("lon", ""), "lon"),
                "bearing": _float(row.get("bearing", ""), "bearing"),
                "field_of_view": _float(row.get("field_of_view", ""), "field_of_view"),
                "view_radius_m": _float(row.get("view_radius_m", ""), "view_radius_m"),
                "enabled": _bool(row.get("enabled", "")),
            }
            rd = row.get("retention_days", "")
            try:
                values["retention_days"] = int(rd) if rd else 30
            except ValueError:
                raise CameraError(f"retention_days {rd!r} is not a whole number") from None
            if row.get("owner"):
                if row["owner"] not in orgs:
                    raise CameraError(f"no organisation {row['owner']!r}")
                values["owner_org_id"] = orgs[row["owner"]]
            if row.get("installed_on"):
                try:
                    values["installed_on"] = date.fromisoformat(row["installed_on"])
                except ValueError:
                    raise CameraError(f"installed_on {row['installed_on']!r} is not a date (YYYY-MM-DD)") from None
            if not values["main_url"]:
                raise CameraError("main_url is empty")
            split_credentials(values["main_url"], url_schemes)
            if values["sub_url"]:
                split_credentials(values["sub_url"], url_schemes)
            _validate(session, values)
            prepared.append((line, values))
        except CameraError as exc:
            result.errors.append(RowError(line, redact(str(exc))))
    if not rows:
        result.errors.append(RowError(2, "the file has no camera rows"))
    if result.errors:
        raise ImportRejected(result.errors)
    # All rows are valid: create them in one savepoint, so a failure on any row still leaves nothing behind.
    with session.begin_nested():
        for n, (line, values) in enumerate(prepared, 1):
            try:
                cam = create_camera(session, actor, keys, url_schemes=url_schemes, **values)
            except CameraError as exc:
                raise ImportRejected([RowError(line, redact(str(exc)))]) from None
            result.created.append(cam.id)
            if progress:
                progress(n, len(prepared))
        audit.append(session, actor, Action.CAMERA_IMPORTED, object_type="camera",
                     details={"count": len(result.created)})
    return result
