"""Request and response bodies of the core API, and the constrained types every route declares its input with.

Constraints the API enforces are declared here, so they are in the OpenAPI schema too: ids that fit the database's
INTEGER columns, coordinates within the globe, lengths within the columns, fixed sets as enums. A PATCH field that
may be left out but never set to null is declared with ``unset()``: leaving it out changes nothing, ``null`` is a
422; a field whose ``null`` means "clear it" is declared ``X | None``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from kuzet.domain.access import OrganisationKind, Right, Role
from kuzet.domain.places import PlaceKind
from kuzet.services.cameras import CAMERA_KINDS

T = TypeVar("T")

# INTEGER columns are int4 on PostgreSQL (int8 on SQLite): no id, offset or count beyond this can exist.
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID, description="An object's id (1..2147483647)")]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False, description="Degrees, WGS 84")]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False, description="Degrees, WGS 84")]
Bearing = Annotated[float, Field(ge=0, lt=360, allow_inf_nan=False, description="Degrees clockwise from north")]
FieldOfView = Annotated[float, Field(gt=0, le=360, allow_inf_nan=False, description="Degrees")]
Language = Literal["ru", "kk", "en"]
CameraKind = Literal[CAMERA_KINDS]  # the registry's kinds, as one enum in the schema


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def unset(**constraints: Any) -> Any:
    """A field of a PATCH body that may be left out (nothing changes) but not sent as ``null`` (422)."""
    return Field(None, json_schema_extra=_no_default, **constraints)


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable: not_found, invalid, too_large, …")
    message: str = Field(description="What went wrong, for people, in the language Accept-Language asks for")
    key: str = Field("", description="The message's catalogue key (api_error.…), the same in every language")
    params: dict = Field(default_factory=dict, description="The values filling the message named by key")


class ErrorOut(BaseModel):
    """Every error the API answers: ``{"error": {"code": "...", "message": "...", "key": "...", "params": {}}}``."""

    error: ErrorDetail


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int | None = Field(description="rows matching, on offset pages; null on keyset (cursor) pages")
    limit: int
    offset: int
    next_cursor: str | None = Field(None, description="pass as ``cursor`` for the next page; null on the last page "
                                                      "and on offset pages")


class PlaceIn(BaseModel):
    kind: PlaceKind
    name: str = Field(min_length=1, max_length=200)
    parent_id: Id | None = None
    address: str | None = Field(None, max_length=400)
    lat: Latitude | None = None
    lon: Longitude | None = None
    population: int | None = Field(None, ge=0, le=MAX_ID)


class PlaceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    parent_id: int | None
    kind: str
    name: str
    address: str | None
    lat: float | None
    lon: float | None
    path: str


class OrganisationIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: OrganisationKind
    place_id: Id | None = None


class OrganisationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    kind: str
    place_id: int | None


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=4, max_length=1024)
    role: Role
    full_name: str = Field("", max_length=200)
    organisation_id: Id | None = None
    place_id: Id | None = None
    language: Language = "ru"


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    full_name: str
    role: str
    organisation_id: int | None
    place_id: int | None
    language: str
    timezone: str | None = None
    is_active: bool


class UserPatch(BaseModel):
    language: Language = unset()
    # An IANA name ("Asia/Almaty", "Europe/Moscow"); "": back to the installation's time zone.
    timezone: str = unset(max_length=64)
    full_name: str = unset(max_length=200)
    is_active: bool = unset()


class GrantIn(BaseModel):
    rights: list[Right] = Field(min_length=1, max_length=len(Right))
    legal_basis: str = Field(min_length=1, max_length=500)
    user_id: Id | None = None
    organisation_id: Id | None = None
    place_id: Id | None = None
    camera_id: Id | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None


class GrantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: int | None
    organisation_id: int | None
    place_id: int | None
    camera_id: int | None
    rights: list[str]
    legal_basis: str
    valid_from: datetime | None
    valid_to: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    archive_days: int | None = None  # the archive under this grant reaches back this many days (a plan's depth)
    source: str | None = None  # "agreement:3", "flat:12": made by that, and ended only through it


ViewRadius = Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False, description="Metres")]
RetentionDays = Annotated[int, Field(ge=1, le=3650)]
StreamUrl = Annotated[str, Field(min_length=1, max_length=1000, description="rtsp://, rtsps://, rtmp(s)://, srt://, "
                                 "http(s):// (others only where the server allows them)")]


class CameraIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    place_id: Id
    kind: CameraKind = "street"
    main_url: StreamUrl
    sub_url: StreamUrl | None = None
    owner_org_id: Id | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    bearing: Bearing | None = None
    field_of_view: FieldOfView | None = None
    view_radius_m: ViewRadius | None = None
    retention_days: RetentionDays = 30
    enabled: bool = True
    installed_on: date | None = None


class CameraPatch(BaseModel):
    """Leave a field out to keep it; ``null`` clears the optional ones (sub stream, owner, position, …)."""

    name: str = unset(min_length=1, max_length=200)
    place_id: Id = unset()
    kind: CameraKind = unset()
    main_url: StreamUrl = unset()
    sub_url: StreamUrl | None = None
    owner_org_id: Id | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    bearing: Bearing | None = None
    field_of_view: FieldOfView | None = None
    view_radius_m: ViewRadius | None = None
    retention_days: RetentionDays = unset()
    enabled: bool = unset()
    installed_on: date | None = None


class CameraOut(BaseModel):
    """A camera as the API shows it: stream URLs without credentials, never the credentials themselves."""

    id: int
    name: str
    kind: str
    place_id: int
    place_name: str | None = None
    owner_org_id: int | None
    main_url: str | None = None  # only to those who may manage the camera
    sub_url: str | None = None
    has_sub_stream: bool
    has_credentials: bool
    lat: float | None
    lon: float | None
    bearing: float | None
    field_of_view: float | None
    view_radius_m: float | None
    retention_days: int
    enabled: bool
    installed_on: date | None
    rights: list[str]


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    seq: int
    at: datetime
    actor_id: int | None
    actor_name: str | None
    action: str
    object_type: str | None
    object_id: str | None
    camera_id: int | None
    ip: str | None
    legal_basis: str | None
    purpose: str | None
    details: dict | None


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime | None = None


class LoginIn(BaseModel):
    username: str
    password: str


class PersonalTokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    days: int | None = Field(None, ge=1, le=3650)


class AuditVerifyOut(BaseModel):
    """The audit chain checked against the signed anchor (``kuzet audit verify`` without witness files)."""

    ok: bool
    checked: int
    broken_seq: int | None
    problem: str | None
    warnings: list[str]
    fingerprint: str
