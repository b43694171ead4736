"""House photos of a passport, in their own store: checked (JPEG or PNG by their bytes, at most 20 MB), re-encoded as
JPEG with a thumbnail, read and deleted only through :class:`PhotoStore`.

The files live under the store's root in ``safeyard/<yard id>/``, named in ``SafeYardPhoto.path`` and ``.thumbnail``
relative to it. The root is the recordings volume (where photos have always been kept, so existing rows stay valid);
routes and the passport PDF never build a path — :func:`photo_store` says where the root is.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.services.audit import Actor
from kuzet.store.models.safeyard import SafeYard, SafeYardChange, SafeYardPhoto

if TYPE_CHECKING:
    from kuzet.config import Settings

MAX_BYTES = 20 << 20
MAX_PIXELS = 80_000_000  # a decompression bomb (a tiny PNG of a huge blank picture) is refused before decoding
THUMB_WIDTH = 320
CONTENT_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


class PhotoError(ValueError):
    """The upload is not a photo the store takes."""


class PhotoMissing(LookupError):
    """The photo's file is not in the store."""


def content_type(data: bytes) -> str | None:
    """``image/jpeg`` or ``image/png`` by the file's first bytes (whatever the upload claims), else None."""
    for magic, kind in CONTENT_TYPES.items():
        if data.startswith(magic):
            return kind
    return None


def _png_pixels(data: bytes) -> int:
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return width * height


class PhotoStore:
    """House photos under ``root``."""

    DIR = "safeyard"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _file(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to((self.root / self.DIR).resolve()):
            raise PhotoMissing(relative)  # a row naming a file outside the store is never followed
        return path

    def save(self, yard_id: int, data: bytes) -> tuple[str, str]:
        """Check and store one upload; its (photo, thumbnail) paths relative to the root."""
        if not data or len(data) > MAX_BYTES:
            raise PhotoError("a photo must be between 1 byte and 20 MB")
        kind = content_type(data)
        if kind is None:
            raise PhotoError("the file is not a JPEG or PNG image")
        if kind == "image/png" and _png_pixels(data) > MAX_PIXELS:
            raise PhotoError("the picture is too large (at most 80 megapixels)")
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise PhotoError("the file is not a JPEG or PNG image")
        h, w = image.shape[:2]
        if h * w > MAX_PIXELS:
            raise PhotoError("the picture is too large (at most 80 megapixels)")
        name = secrets.token_hex(8)
        rel = Path(self.DIR) / str(yard_id)
        (self.root / rel).mkdir(parents=True, exist_ok=True)
        thumb = cv2.resize(image, (THUMB_WIDTH, max(1, int(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)
        # Re-encoding drops whatever metadata (EXIF GPS, camera serials) the original carried.
        cv2.imwrite(str(self.root / rel / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        cv2.imwrite(str(self.root / rel / f"{name}-thumb.jpg"), thumb, [cv2.IMWRITE_JPEG_QUALITY, 80])
        return str(rel / f"{name}.jpg"), str(rel / f"{name}-thumb.jpg")

    def open(self, photo: SafeYardPhoto, thumbnail: bool = False) -> bytes:
        """The JPEG bytes of the photo or its thumbnail; :class:`PhotoMissing` when the file is gone."""
        try:
            return self._file(photo.thumbnail if thumbnail else photo.path).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise PhotoMissing(photo.path) from None

    def delete(self, photo: SafeYardPhoto) -> None:
        """Remove the photo's files (those already gone are no error)."""
        for relative in (photo.path, photo.thumbnail):
            if relative:
                self._file(relative).unlink(missing_ok=True)


def photo_store(settings: Settings) -> PhotoStore:
    """The installation's photo store."""
    return PhotoStore(settings.recordings_path)


def store_photo(session: Session, store: PhotoStore | Path, actor: Actor, yard: SafeYard, data: bytes,
                caption: str | None = None) -> SafeYardPhoto:
    """Check, store and record one house photo of ``yard`` (a ``photo_added`` change)."""
    store = store if isinstance(store, PhotoStore) else PhotoStore(store)
    path, thumbnail = store.save(yard.id, data)
    photo = SafeYardPhoto(safe_yard_id=yard.id, path=path, thumbnail=thumbnail, caption=caption)
    session.add(photo)
    session.flush()
    session.add(SafeYardChange(safe_yard_id=yard.id, user_id=actor.user_id, action="photo_added",
                               details={"photo_id": photo.id}))
    return photo


def photo_of(session: Session, yard_id: int, photo_id: int) -> SafeYardPhoto | None:
    """The yard's photo ``photo_id`` (None when there is none, or it is another yard's)."""
    photo = session.get(SafeYardPhoto, photo_id)
    return photo if photo is not None and photo.safe_yard_id == yard_id else None


def latest_photo(session: Session, store: PhotoStore, yard: SafeYard) -> bytes | None:
    """The newest house photo's JPEG bytes (for the passport), None without one or when its file is gone."""
    photo = session.scalar(select(SafeYardPhoto).where(SafeYardPhoto.safe_yard_id == yard.id)
                           .order_by(SafeYardPhoto.id.desc()))
    if photo is None:
        return None
    try:
        return store.open(photo)
    except PhotoMissing:
        return None


def delete_photo(session: Session, store: PhotoStore, actor: Actor, photo: SafeYardPhoto) -> None:
    """Delete a photo's row and files (a ``photo_deleted`` change)."""
    yard_id, photo_id = photo.safe_yard_id, photo.id
    session.delete(photo)
    session.add(SafeYardChange(safe_yard_id=yard_id, user_id=actor.user_id, action="photo_deleted",
                               details={"photo_id": photo_id}))
    session.flush()
    store.delete(photo)
