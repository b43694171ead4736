"""House photos of a passport: stored with the recordings' storage, re-encoded as JPEG, with a thumbnail."""

from __future__ import annotations

import secrets
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy.orm import Session

from kuzet.services.audit import Actor
from kuzet.store.models.safeyard import SafeYard, SafeYardChange, SafeYardPhoto

MAX_BYTES = 20 << 20
THUMB_WIDTH = 320


class PhotoError(ValueError):
    pass


def store_photo(session: Session, root: Path, actor: Actor, yard: SafeYard, data: bytes,
                caption: str | None = None) -> SafeYardPhoto:
    if not data or len(data) > MAX_BYTES:
        raise PhotoError("a photo must be between 1 byte and 20 MB")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise PhotoError("the file is not a JPEG or PNG image")
    name = secrets.token_hex(8)
    rel = Path("safeyard") / str(yard.id)
    (root / rel).mkdir(parents=True, exist_ok=True)
    h, w = image.shape[:2]
    thumb = cv2.resize(image, (THUMB_WIDTH, max(1, int(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)
    # Re-encoding drops whatever metadata (EXIF GPS, camera serials) the original carried.
    cv2.imwrite(str(root / rel / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(str(root / rel / f"{name}-thumb.jpg"), thumb, [cv2.IMWRITE_JPEG_QUALITY, 80])
    photo = SafeYardPhoto(safe_yard_id=yard.id, path=str(rel / f"{name}.jpg"),
                          thumbnail=str(rel / f"{name}-thumb.jpg"), caption=caption)
    session.add(photo)
    session.flush()
    session.add(SafeYardChange(safe_yard_id=yard.id, user_id=actor.user_id, action="photo_added",
                               details={"photo_id": photo.id}))
    return photo
