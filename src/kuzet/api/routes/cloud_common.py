"""What the cloud service's routes share: errors of the services as API errors, the business caller, bodies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kuzet.api.errors import ApiError, error_body, not_found
from kuzet.services.cloud.agreements import AgreementDenied
from kuzet.services.cloud.common import Business, BusinessDenied, CloudConflict, CloudError, CloudNotFound
from kuzet.services.cloud.tables import ImportRejected
from kuzet.store.models import User

Tiyn = Annotated[int, Field(ge=0, le=10**12, description="Money in tiyn (1 tenge = 100 tiyn)")]
PeriodText = Annotated[str, Field(pattern=r"^(20\d\d|2100)-(0[1-9]|1[0-2])$", description="A month: YYYY-MM",
                                  examples=["2026-11"])]
Day = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))]
FlatStateName = Literal["trial", "active", "suspended", "ended"]
ScopeRight = Literal["view_live", "view_archive", "export", "ptz"]


@contextmanager
def service_errors() -> Iterator[None]:
    """CloudNotFound and BusinessDenied → 404; AgreementDenied → 403; CloudConflict → 409; CloudError → 422."""
    try:
        yield
    except (CloudNotFound, BusinessDenied) as exc:
        raise not_found(str(exc) if isinstance(exc, CloudNotFound) else "not found") from None
    except AgreementDenied as exc:
        raise ApiError(403, str(exc)) from None
    except CloudConflict as exc:
        raise ApiError(409, str(exc)) from None
    except CloudError as exc:
        raise ApiError(422, str(exc)) from None


def business_of(session: Session, user: User) -> Business:
    """The caller's business reach; 404 for roles that do not run it (the business is invisible to them)."""
    try:
        return Business(session, user)
    except BusinessDenied:
        raise not_found("not found") from None


def rejected(exc: ImportRejected) -> JSONResponse:
    """422 naming every bad row (``error.errors``: line and message), nothing imported."""
    body = error_body("import_rejected", str(exc))
    body["error"]["errors"] = [{"line": e.line, "message": e.message} for e in exc.errors]
    return JSONResponse(body, status_code=422)


class RowErrorOut(BaseModel):
    line: int
    message: str


class ImportErrorDetail(BaseModel):
    code: str
    message: str
    errors: list[RowErrorOut] | None = None


class ImportErrorOut(BaseModel):
    """An import refused as a whole: every bad row named."""

    error: ImportErrorDetail


IMPORT_REJECTED = {422: {"model": ImportErrorOut, "description": "Bad rows (each named); nothing was imported"}}


def aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ApiError(422, f"{name} must carry a timezone (e.g. 2025-01-31T10:00:00Z)")
    return value
