"""Pages of long lists read as rows (the alarm queue, the events): ``KeysetPaging`` over a SELECT of columns, and the
page written out as JSON once.

``KeysetPaging.page_by`` gives ORM objects; building 50 of them (and their related objects) was most of the CPU of
an alarm or event page. These lists select the columns they show and answer the JSON pydantic writes for the
route's ``dict``, without validating the page once more in another worker thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Response
from pydantic_core import to_json
from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session

from kuzet.api.errors import ApiError
from kuzet.api.routes.common import KeysetPaging, _fits, decode_cursor, encode_cursor

__all__ = ["json_page", "page_rows"]


def page_rows(paging: KeysetPaging, session: Session, query: Select, keys: list[Any],
              key_of: Callable[[Any], tuple]) -> dict:
    """``paging.page_by`` for a ``query`` of columns: the page's items are rows. Offset pages count the total (two
    statements); keyset pages continue after the row the cursor names (one statement)."""
    if not paging.keyset:
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
        rows = session.execute(query.limit(paging.limit).offset(paging.offset)).all()
        return {"items": rows, "total": total, "limit": paging.limit, "offset": paging.offset}
    if paging.offset:
        raise ApiError(422, "give either cursor or offset, not both")
    if paging.cursor:
        after = decode_cursor(paging.cursor, len(keys))
        for key, value in zip(keys, after, strict=True):
            if not _fits(key, value):
                raise ApiError(422, "cursor is not one this list gave (pass a page's next_cursor, or empty for "
                                    "the first page)")
        query = query.where(tuple_(*keys) < tuple_(*after))
    rows = session.execute(query.limit(paging.limit + 1)).all()
    more = len(rows) > paging.limit
    rows = rows[: paging.limit]
    return {"items": rows, "total": None, "limit": paging.limit, "offset": 0,
            "next_cursor": encode_cursor(key_of(rows[-1])) if more and rows else None}


def json_page(page: dict) -> Response:
    """The page as the JSON FastAPI would answer for a route returning it as a ``dict`` (pydantic's serialiser:
    times in ISO 8601 with ``Z``), written once in the route's thread."""
    return Response(to_json(page), media_type="application/json")
