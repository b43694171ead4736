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


# A signed head says "the chain reached record #seq, whose hash is …" at a time, signed with the installation's
# Ed25519 key. The anchor file and every head published to a witness have this form (docs/access.md).
HEAD_FORMAT = "kuzet-audit-head/1"


def head_payload(seq: int, digest: str, at: str) -> bytes:
    """The exact bytes a head's signature covers: compact JSON with sorted keys, e.g.
    ``{"at":"2026-01-31T22:00:00Z","format":"kuzet-audit-head/1","hash":"…","seq":42}``."""
    body = {"format": HEAD_FORMAT, "seq": seq, "hash": digest, "at": at}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")


def is_digest(value: object) -> bool:
    """A lower-case hex SHA-256, as record hashes and key fingerprints are written."""
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


class Action:
    """Audit action names, in the domain's words."""

    LOGIN = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    LOGIN_THROTTLED = "auth.login_throttled"  # a username or a source address locked after repeated failures
    PASSWORD_CHANGED = "auth.password_changed"
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
    VIEWING_ENDED = "viewing.ended"  # a live viewing session's end: its start, end and length (usage, investigation)
    ARCHIVE_VIEWED = "video.archive"
    CLIP_DOWNLOADED = "video.clip"
    EXPORT_CREATED = "video.export"
    EXPORT_DOWNLOADED = "video.export_download"
    PERSONAL_DATA_READ = "personal.read"
    PERSONAL_DATA_CHANGED = "personal.changed"
    PERSONAL_DATA_ERASED = "personal.erased"
    PERSONAL_DATA_EXPORTED = "personal.exported"
    HOLD_CREATED = "evidence.hold_created"
    AUDIT_ANCHORED = "audit.anchored"  # the anchor outside the database was (re)written by an operator
