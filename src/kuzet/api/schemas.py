"""Request and response bodies of the core API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class PlaceIn(BaseModel):
    kind: str
    name: str
    parent_id: int | None = None
    address: str | None = None
    lat: float | None = None
    lon: float | None = None
    population: int | None = None


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
    name: str
    kind: str
    place_id: int | None = None


class OrganisationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    kind: str
    place_id: int | None


class UserIn(BaseModel):
    username: str
    password: str = Field(min_length=4)
    role: str
    full_name: str = ""
    organisation_id: int | None = None
    place_id: int | None = None
    language: str = "ru"


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    full_name: str
    role: str
    organisation_id: int | None
    place_id: int | None
    language: str
    is_active: bool


class UserPatch(BaseModel):
    language: str | None = None
    full_name: str | None = None
    is_active: bool | None = None


class GrantIn(BaseModel):
    rights: list[str]
    legal_basis: str
    user_id: int | None = None
    organisation_id: int | None = None
    place_id: int | None = None
    camera_id: int | None = None
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


class CameraIn(BaseModel):
    name: str
    place_id: int
    kind: str = "street"
    main_url: str
    sub_url: str | None = None
    owner_org_id: int | None = None
    lat: float | None = None
    lon: float | None = None
    bearing: float | None = None
    field_of_view: float | None = None
    view_radius_m: float | None = None
    retention_days: int = 30
    enabled: bool = True
    installed_on: date | None = None


class CameraPatch(BaseModel):
    name: str | None = None
    place_id: int | None = None
    kind: str | None = None
    main_url: str | None = None
    sub_url: str | None = None
    owner_org_id: int | None = None
    lat: float | None = None
    lon: float | None = None
    bearing: float | None = None
    field_of_view: float | None = None
    view_radius_m: float | None = None
    retention_days: int | None = None
    enabled: bool | None = None
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
