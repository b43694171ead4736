"""Small shared pieces of the routes: how ids and pages are declared, the documented errors, loading objects a caller
may see."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import Query, Response
from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session

from kuzet.api.errors import ApiError, not_found
from kuzet.api.schemas import MAX_ID, ErrorOut, Id
from kuzet.domain.access import Right
from kuzet.services import access
from kuzet.services.access import delegation
from kuzet.store.models import Camera, User

__all__ = ["ERRORS", "MAX_ID", "Id", "KeysetPaging", "Paging", "archive_start", "camera_for", "delegation_error",
           "errors", "media"]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses, each with the one error shape (``ErrorOut``)."""
    return {status: {"model": ErrorOut, "description": _DESCRIPTIONS.get(status, "Error")} for status in statuses}


_DESCRIPTIONS = {
    400: "Malformed request: a body that cannot be parsed as declared",
    401: "Not signed in, or the token is invalid, expired or revoked",
    403: "Signed in, but not allowed to do this", 404: "Not found, or not visible to the caller",
    409: "Conflicts with the object's state", 410: "Gone from the server",
    413: "The body or the uploaded file is larger than the server accepts",
    422: "Invalid input: the message names each field and what it accepts", 429: "Too many attempts",
    503: "A service this needs is not running (recorder, event bus)",
}


def media(*types: str, description: str = "The file") -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a route that answers 200 with a file of one of these media types."""
    return {200: {"description": description,
                  "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in types}}}


# What every authenticated route may answer besides success; routers declare it once with ``responses=ERRORS``.
# (400: a body that is not the JSON or form it should be; 409: a change that conflicts with the object's state or
# with existing data.)
ERRORS = errors(400, 401, 403, 404, 409, 422)


def json_response(value: BaseModel | dict) -> Response:
    """``value`` as the JSON FastAPI would answer for it (pydantic's serialiser: times in ISO 8601 with ``Z``), written
    once in the route's thread. A route that returns a model or a dict gets it validated once more against its
    response model in another worker thread: on the long lists that was most of a page's CPU (docs/benchmarks.md,
    issue 16). Such routes keep ``response_model`` for the OpenAPI description and answer this."""
    body = value.model_dump_json() if isinstance(value, BaseModel) else to_json(value)
    return Response(body, media_type="application/json")


class Paging:
    def __init__(self, limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0, le=MAX_ID)) -> None:
        self.limit = limit
        self.offset = offset

    def page(self, session: Session, query: Select, convert=lambda x: x, rows: bool = False) -> dict:  # noqa: ANN001
        """One page and the total: two statements, whatever the page's size. ``rows``: ``query`` selects columns
        and the items are its rows (no ORM objects built: the alarm and event lists)."""
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
        query = query.limit(self.limit).offset(self.offset)
        items = session.execute(query).all() if rows else session.scalars(query).all()
        return {"items": [convert(i) for i in items], "total": total, "limit": self.limit, "offset": self.offset}


class KeysetPaging(Paging):
    """Offset pages, or keyset pages for long lists (audit, events, alarms, incidents): ``cursor`` (empty for the
    first page) instead of ``offset`` gives pages whose cost does not grow with how deep they are and skips counting
    the whole list (``total`` is null); each page names the next one in ``next_cursor``."""

    def __init__(self, limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0, le=MAX_ID),
                 cursor: str | None = Query(None, max_length=500,
                                            description="keyset paging: empty for the first page, then the "
                                                        "previous page's next_cursor")) -> None:
        super().__init__(limit, offset)
        self.cursor = cursor

    @property
    def keyset(self) -> bool:
        return self.cursor is not None

    def page_by(self, session: Session, query: Select, keys: list[Any],
                key_of: Callable[[Any], tuple], rows: bool = False) -> dict:
        """A page of ``query`` ordered by ``keys`` (all descending, the last one unique). Offset pages as
        ``page``; keyset pages continue after the row the cursor names (one statement). ``rows`` as for ``page``."""
        if not self.keyset:
            return self.page(session, query, rows=rows)
        if self.offset:
            raise ApiError(422, "give either cursor or offset, not both")
        if self.cursor:
            after = decode_cursor(self.cursor, len(keys))
            for key, value in zip(keys, after, strict=True):
                if not _fits(key, value):
                    raise ApiError(422, "cursor is not one this list gave (pass a page's next_cursor, or empty for "
                                        "the first page)")
            query = query.where(tuple_(*keys) < tuple_(*after))
        query = query.limit(self.limit + 1)
        items = list(session.execute(query).all() if rows else session.scalars(query).all())
        more = len(items) > self.limit
        items = items[: self.limit]
        return {"items": items, "total": None, "limit": self.limit, "offset": 0,
                "next_cursor": encode_cursor(key_of(items[-1])) if more and items else None}


def _fits(key: Any, value: Any) -> bool:
    """The cursor's value has the type of the sort key it stands for (a time for a time, a whole number for an id)."""
    try:
        wanted = getattr(key.type, "impl_instance", key.type).python_type
    except (AttributeError, NotImplementedError):
        return False
    if wanted is datetime:
        return isinstance(value, datetime)
    if wanted is int:
        return isinstance(value, int) and -(2 ** 63) <= value < 2 ** 63
    return isinstance(value, wanted)


def encode_cursor(values: tuple) -> str:
    """The sort key of a page's last row, opaque to clients: base64url of JSON (times as ISO strings)."""
    plain = [{"t": v.isoformat()} if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(text: str, size: int) -> tuple:
    """The values ``encode_cursor`` wrote; 422 naming the problem for anything else."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(raw, list) or len(raw) != size:
            raise ValueError
        values = []
        for v in raw:
            if isinstance(v, dict) and set(v) == {"t"} and isinstance(v["t"], str):
                moment = datetime.fromisoformat(v["t"])
                if moment.tzinfo is None:
                    raise ValueError
                values.append(moment)
            elif isinstance(v, int | float | str) and not isinstance(v, bool):
                values.append(v)
            else:
                raise ValueError
        return tuple(values)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise ApiError(422, "cursor is not one this list gave (pass a page's next_cursor, or empty for the "
                            "first page)") from None


def camera_for(session: Session, user: User, camera_id: int, right: Right | None = None) -> Camera:
    """The camera if the user holds ``right`` on it (any right if None); 404 otherwise, whether it exists or not."""
    camera = session.get(Camera, camera_id)
    if camera is None:
        raise not_found("camera not found")
    rights = access.camera_rights(session, user, camera)
    if not rights or (right is not None and right not in rights):
        raise not_found("camera not found")
    return camera


def archive_start(session: Session, user: User, camera: Camera, start: datetime, end: datetime) -> datetime:
    """``start``, moved up to the oldest instant the user may see of this camera's archive (a subscriber's plan
    reaches back ``archive_days``); 403 naming the limit when the whole window is older."""
    floor = access.archive_floor(session, user, camera)
    if floor is None or start >= floor:
        return start
    if end <= floor:
        raise ApiError(403, f"your access reaches the archive of this camera back to {floor.isoformat()} only")
    return floor


def delegation_error(exc: delegation.DelegationDenied | delegation.InvalidDelegation) -> ApiError:
    """404 for what lies outside the caller's reach, 403 for a rule of their role, 422 for a malformed request."""
    if isinstance(exc, delegation.InvalidDelegation):
        return ApiError(422, str(exc))
    return not_found(str(exc)) if exc.hidden else ApiError(403, str(exc))
