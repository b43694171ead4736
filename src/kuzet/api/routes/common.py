"""Small shared pieces of the routes: pagination and loading objects a caller may see."""

from __future__ import annotations

from fastapi import Query
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from kuzet.api.errors import not_found
from kuzet.domain.access import Right
from kuzet.services import access
from kuzet.store.models import Camera, User


class Paging:
    def __init__(self, limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0)) -> None:
        self.limit = limit
        self.offset = offset

    def page(self, session: Session, query: Select, convert=lambda x: x) -> dict:  # noqa: ANN001
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
        items = session.scalars(query.limit(self.limit).offset(self.offset)).all()
        return {"items": [convert(i) for i in items], "total": total, "limit": self.limit, "offset": self.offset}


def camera_for(session: Session, user: User, camera_id: int, right: Right | None = None) -> Camera:
    """The camera if the user holds ``right`` on it (any right if None); 404 otherwise, whether it exists or not."""
    camera = session.get(Camera, camera_id)
    if camera is None:
        raise not_found("camera not found")
    rights = access.camera_rights(session, user, camera)
    if not rights or (right is not None and right not in rights):
        raise not_found("camera not found")
    return camera
