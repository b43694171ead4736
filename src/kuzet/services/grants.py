"""Creating and revoking grants. Routing a camera or a site to a police unit is a grant to that unit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from kuzet.domain.access import format_rights, parse_rights
from kuzet.domain.audit import Action
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.store.db import utcnow
from kuzet.store.models import Camera, Grant, Organisation, Place, User


class GrantError(ValueError):
    pass


def create_grant(
    session: Session,
    actor: Actor,
    *,
    rights: str | list[str],
    legal_basis: str,
    user_id: int | None = None,
    organisation_id: int | None = None,
    place_id: int | None = None,
    camera_id: int | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    archive_days: int | None = None,
    source: str | None = None,
) -> Grant:
    """A grant on the caller's transaction, audited. ``archive_days`` limits its archive to the last N days (a
    subscriber's plan); ``source`` names the service object that made it and alone ends it ("agreement:3")."""
    if (user_id is None) == (organisation_id is None):
        raise GrantError("a grant goes to exactly one user or one organisation")
    if (place_id is None) == (camera_id is None):
        raise GrantError("a grant covers exactly one place subtree or one camera")
    if not legal_basis or not legal_basis.strip():
        raise GrantError("a grant needs a legal basis (agreement, subscription, order)")
    if archive_days is not None and archive_days < 1:
        raise GrantError("archive_days must be at least 1")
    if valid_from and valid_to and valid_to <= valid_from:
        raise GrantError("valid_to must be after valid_from")
    for model, ident, label in ((User, user_id, "user"), (Organisation, organisation_id, "organisation"),
                                (Place, place_id, "place"), (Camera, camera_id, "camera")):
        if ident is not None and session.get(model, ident) is None:
            raise GrantError(f"no {label} {ident}")
    try:
        rights_set = parse_rights(rights)
    except ValueError as exc:
        raise GrantError(str(exc)) from None
    grant = Grant(user_id=user_id, organisation_id=organisation_id, place_id=place_id, camera_id=camera_id,
                  rights=format_rights(rights_set), valid_from=valid_from, valid_to=valid_to,
                  legal_basis=legal_basis.strip(), created_by=actor.user_id, archive_days=archive_days,
                  source=source)
    session.add(grant)
    session.flush()
    audit.append(session, actor, Action.GRANT_CREATED, object_type="grant", object_id=grant.id,
                 camera_id=camera_id, legal_basis=grant.legal_basis,
                 details={"user_id": user_id, "organisation_id": organisation_id, "place_id": place_id,
                          "camera_id": camera_id, "rights": grant.rights,
                          "valid_from": valid_from.isoformat() if valid_from else None,
                          "valid_to": valid_to.isoformat() if valid_to else None,
                          **({"archive_days": archive_days} if archive_days is not None else {}),
                          **({"source": source} if source is not None else {})})
    return grant


def revoke_grant(session: Session, actor: Actor, grant: Grant) -> Grant:
    if grant.revoked_at is None:
        grant.revoked_at = utcnow()
        audit.append(session, actor, Action.GRANT_REVOKED, object_type="grant", object_id=grant.id,
                     camera_id=grant.camera_id, legal_basis=grant.legal_basis)
    return grant
