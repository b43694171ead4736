"""The audit chain: every record carries the hash of the one before it.

``hash = SHA-256(prev_hash || canonical JSON of the record's fields)``. Changing or removing any record breaks the
chain at that record (its stored hash no longer matches, or the next record's ``prev_hash`` no longer points at it).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64

# The fields that are sealed into the hash, in this order.
SEALED_FIELDS = (
    "seq", "at", "actor_id", "actor_name", "action", "object_type", "object_id", "camera_id",
    "ip", "legal_basis", "purpose", "details",
)


def _normalise(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def record_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    body = {name: _normalise(fields.get(name)) for name in SEALED_FIELDS}
    payload = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + payload).encode("utf-8")).hexdigest()


class Action:
    """Audit action names, in the domain's words."""

    LOGIN = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    LOGOUT = "auth.logout"
    TOKEN_CREATED = "auth.token_created"
    TOKEN_REVOKED = "auth.token_revoked"
    USER_CREATED = "user.created"
    USER_CHANGED = "user.changed"
    PLACE_CREATED = "place.created"
    PLACE_CHANGED = "place.changed"
    ORGANISATION_CREATED = "organisation.created"
    GRANT_CREATED = "grant.created"
    GRANT_REVOKED = "grant.revoked"
    CAMERA_CREATED = "camera.created"
    CAMERA_CHANGED = "camera.changed"
    CAMERA_DELETED = "camera.deleted"
    CAMERA_IMPORTED = "camera.imported"
    CAMERA_VIEWED = "camera.viewed"  # metadata read
    LIVE_VIEWED = "video.live"
    ARCHIVE_VIEWED = "video.archive"
    CLIP_DOWNLOADED = "video.clip"
    EXPORT_CREATED = "video.export"
    EXPORT_DOWNLOADED = "video.export_download"
    PERSONAL_DATA_READ = "personal.read"
    PERSONAL_DATA_CHANGED = "personal.changed"
    PERSONAL_DATA_ERASED = "personal.erased"
    PERSONAL_DATA_EXPORTED = "personal.exported"
    HOLD_CREATED = "evidence.hold_created"
