"""Disclosure with redaction: a reviewed, redacted copy of a recording, and a signed package of such copies shared by
an expiring link (docs/bodycams.md, "Disclosure").

1. ``start_redaction`` finds and tracks the faces (``redaction.plan``) and keeps the plan as JSON;
2. ``edit_redaction``: the operator leaves tracks unblurred and adds boxes;
3. ``render_redaction`` writes the copy (the original is only read), hashes it and links it to the original;
4. ``create_disclosure`` puts the copies in a zip with a manifest naming both hashes of each recording, signed with the
   installation's Ed25519 key exactly like an evidence bundle (``kuzet export verify`` checks it), holds the
   recordings, and makes a link whose token only the recipient gets (its SHA-256 is stored);
5. ``open_disclosure``: every opening of the link is an audit record with the address it came from.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from kuzet import __version__
from kuzet.domain.bodycams import Action
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.services.bodycams import recordings as recordings_service
from kuzet.services.bodycams import redaction
from kuzet.services.bodycams.offload import sha256_file
from kuzet.services.bodycams.units import keeps_recording
from kuzet.services.keys import Keyring, fingerprint
from kuzet.store.db import utcnow
from kuzet.store.models import User
from kuzet.store.models.bodycams import BodycamDevice, BodycamDisclosure, BodycamRecording, BodycamRedaction

MAX_LINK_HOURS = 24 * 30


class DisclosureError(ValueError):
    """The request is wrong (422)."""


class DisclosureDenied(Exception):
    """Outside the caller's reach (404), or ``forbidden`` (403)."""

    def __init__(self, message: str, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


class DisclosureConflict(Exception):
    """The redaction's state does not allow it (409)."""


def redaction_for(session: Session, user: User, redaction_id: int) -> BodycamRedaction:
    row = session.get(BodycamRedaction, redaction_id)
    recording = session.get(BodycamRecording, row.recording_id) if row else None
    if row is None or recording is None:
        raise DisclosureDenied("redaction not found")
    from kuzet.services.bodycams.units import sees_recording

    if not keeps_recording(session, user, recording):
        if sees_recording(session, user, recording):
            raise DisclosureDenied("only the unit's supervisors and custodians redact and disclose", forbidden=True)
        raise DisclosureDenied("redaction not found")
    return row


def redactions_of(session: Session, recording: BodycamRecording) -> list[BodycamRedaction]:
    """The recording's redactions, oldest first (the caller is a keeper: ``recording_for(..., keep=True)``)."""
    from sqlalchemy import select

    return list(session.scalars(select(BodycamRedaction).where(BodycamRedaction.recording_id == recording.id)
                                .order_by(BodycamRedaction.id)))


def start_redaction(session: Session, root: Path, actor: Actor, by: User,
                    recording: BodycamRecording) -> BodycamRedaction:
    """Queue the search for faces: a background job (``plan_redaction``) reads the whole video; the row says how far
    it got. Audited when asked for, and again when the plan is ready (or failed)."""
    if recording.deleted_at is not None:
        raise DisclosureConflict("the recording's retention ran out; its files were deleted")
    row = BodycamRedaction(recording_id=recording.id, plan_path="", created_by=by.id, state="queued", frames_done=0,
                           frames_total=redaction.frame_estimate(root / recording.path))
    session.add(row)
    session.flush()
    audit.append(session, actor, Action.REDACTION_REQUESTED, object_type="bodycam_recording",
                 object_id=recording.id, details={"redaction_id": row.id, "sha256": recording.sha256,
                                                  "frames_estimated": row.frames_total})
    return row


STALE_SECONDS = 60  # a planning job silent this long died with its server: another pass takes it over
BEAT_SECONDS = 1.0  # how often a running job writes its progress


def pending_redactions(session: Session, now: datetime | None = None) -> list[int]:
    """Queued jobs, and jobs whose worker stopped beating (the server was restarted while they ran)."""
    from sqlalchemy import or_, select

    stale = (now or utcnow()) - timedelta(seconds=STALE_SECONDS)
    return list(session.scalars(select(BodycamRedaction.id).where(
        or_(BodycamRedaction.state == "queued",
            (BodycamRedaction.state == "planning")
            & (BodycamRedaction.heartbeat_at.is_(None) | (BodycamRedaction.heartbeat_at < stale))))
        .order_by(BodycamRedaction.id)))


def _claim(session: Session, redaction_id: int, now: datetime) -> bool:
    """Take the job (one worker only: a conditional update on its state and heartbeat)."""
    from sqlalchemy import or_, update

    stale = now - timedelta(seconds=STALE_SECONDS)
    taken = session.execute(update(BodycamRedaction).where(
        BodycamRedaction.id == redaction_id,
        or_(BodycamRedaction.state == "queued",
            (BodycamRedaction.state == "planning")
            & (BodycamRedaction.heartbeat_at.is_(None) | (BodycamRedaction.heartbeat_at < stale))))
        .values(state="planning", heartbeat_at=now, frames_done=0, error=None))
    return taken.rowcount == 1


def save_checkpoint(db, redaction_id: int, frame: int, state: dict) -> None:  # noqa: ANN001 - Database
    """Keep where a job has got to (and that it is alive): a job taken over after a restart goes on from here."""
    from kuzet.store.models.bodycams import BodycamRedactionCheckpoint

    with db.session() as session:
        session.add(BodycamRedactionCheckpoint(redaction_id=redaction_id, frame=frame, state=state))
        job = session.get(BodycamRedaction, redaction_id)
        job.frames_done, job.heartbeat_at = frame, utcnow()


def checkpoints_of(session: Session, redaction_id: int) -> list[dict]:
    from sqlalchemy import select

    from kuzet.store.models.bodycams import BodycamRedactionCheckpoint

    return [row.state for row in session.scalars(select(BodycamRedactionCheckpoint).where(
        BodycamRedactionCheckpoint.redaction_id == redaction_id).order_by(BodycamRedactionCheckpoint.frame))]


def _drop_checkpoints(session: Session, redaction_id: int) -> None:
    from sqlalchemy import delete

    from kuzet.store.models.bodycams import BodycamRedactionCheckpoint

    session.execute(delete(BodycamRedactionCheckpoint).where(BodycamRedactionCheckpoint.redaction_id == redaction_id))


def plan_redaction(db, root: Path, redaction_id: int,  # noqa: ANN001 - kuzet.store.db.Database
                   checkpoint_every: int = redaction.CHECKPOINT_FRAMES) -> str:
    """Run one job: find and track the faces, keep the plan, audit it in the name of whoever asked. A job that a
    stopped server left half done goes on from its last checkpoint (saved every ``checkpoint_every`` frames). The
    state it ended in (``planned``, ``failed``, or ``taken`` when another worker has it)."""
    import time

    from kuzet.store.models import User as UserRow

    with db.session() as session:
        if not _claim(session, redaction_id, utcnow()):
            return "taken"
        resume = checkpoints_of(session, redaction_id)
        resumed_from = int(resume[-1]["frame"]) if resume else 0
        row = session.get(BodycamRedaction, redaction_id)
        row.frames_done = resumed_from
        recording = session.get(BodycamRecording, row.recording_id)
        source, recording_id, sha = root / recording.path, recording.id, recording.sha256
        requester = session.get(UserRow, row.created_by) if row.created_by else None
        actor = Actor.of(requester)
    last = [time.monotonic()]

    def beat(frames: int) -> None:
        if time.monotonic() - last[0] < BEAT_SECONDS:
            return
        last[0] = time.monotonic()
        with db.session() as session:
            job = session.get(BodycamRedaction, redaction_id)
            job.frames_done, job.heartbeat_at = frames, utcnow()

    def keep(frame: int, state: dict) -> None:
        save_checkpoint(db, redaction_id, frame, state)
        last[0] = time.monotonic()

    try:
        found = redaction.plan(source, progress=beat, checkpoint=keep, checkpoint_every=checkpoint_every,
                               resume=resume or None)
    except Exception as exc:  # noqa: BLE001 - any file may have arrived; say what the decoder said
        message = f"the recording cannot be decoded for redaction: {type(exc).__name__}: {exc}"[:500]
        with db.session() as session:
            _drop_checkpoints(session, redaction_id)
            job = session.get(BodycamRedaction, redaction_id)
            job.state, job.error, job.heartbeat_at = "failed", message, utcnow()
            audit.append(session, actor, Action.REDACTION_FAILED, object_type="bodycam_recording",
                         object_id=recording_id, details={"redaction_id": redaction_id, "error": message})
        return "failed"
    relative = Path("redactions") / f"{redaction_id}-plan.json"
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    found.save(root / relative)
    with db.session() as session:
        _drop_checkpoints(session, redaction_id)  # the plan file holds every box now
        job = session.get(BodycamRedaction, redaction_id)
        job.plan_path, job.state, job.heartbeat_at = str(relative), "planned", utcnow()
        job.frames_done = job.frames_total = found.frames
        details = {"redaction_id": redaction_id, "tracks": len(found.tracks), "frames": found.frames, "sha256": sha}
        if resumed_from:
            details["resumed_from"] = resumed_from
        audit.append(session, actor, Action.REDACTION_PLANNED, object_type="bodycam_recording",
                     object_id=recording_id, details=details)
    return "planned"


def load_plan(root: Path, row: BodycamRedaction) -> redaction.Plan:
    return redaction.Plan.load(root / row.plan_path)


def _planned(row: BodycamRedaction) -> None:
    if row.state in ("queued", "planning"):
        raise DisclosureConflict("the faces are still being found; wait for the plan")
    if row.state == "failed":
        raise DisclosureConflict(f"finding the faces failed: {row.error}")


def edit_redaction(session: Session, root: Path, actor: Actor, row: BodycamRedaction, excluded: list[int],
                   added: list[dict], audio: bool | None = None) -> redaction.Plan:
    _planned(row)
    if row.state != "planned":
        raise DisclosureConflict("the redacted copy is written; start a new redaction to change it")
    found = load_plan(root, row)
    unknown = sorted(set(excluded) - set(found.tracks))
    if unknown:
        raise DisclosureError(f"excluded: no track {unknown[0]} in this plan")
    for n, box in enumerate(added):
        x, y, w, h = box["box"]
        if not (0 <= box["from"] <= box["to"] < found.frames):
            raise DisclosureError(f"added[{n}]: frames must lie within 0..{found.frames - 1}, from ≤ to")
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > found.width or y + h > found.height:
            raise DisclosureError(f"added[{n}]: the box must lie inside the {found.width}×{found.height} picture")
    found.excluded, found.added = sorted(set(excluded)), added
    if audio is not None:
        found.audio = audio
    found.save(root / row.plan_path)
    audit.append(session, actor, Action.REDACTION_EDITED, object_type="bodycam_recording",
                 object_id=row.recording_id, details={"redaction_id": row.id, "excluded": found.excluded,
                                                      "added": len(added), "audio": found.audio})
    return found


def render_redaction(session: Session, root: Path, actor: Actor, row: BodycamRedaction) -> BodycamRedaction:
    if row.state == "rendered":
        return row
    _planned(row)
    recording = session.get(BodycamRecording, row.recording_id)
    found = load_plan(root, row)
    target = root / "redactions" / f"{row.id}-redacted.part.mp4"
    redaction.render(root / recording.path, target, found.boxes_at, audio=found.audio)
    digest = sha256_file(target)
    final = target.with_name(f"{row.id}-{digest[:16]}.mp4")
    os.replace(target, final)
    os.chmod(final, 0o400)
    row.path, row.sha256, row.bytes = str(final.relative_to(root)), digest, final.stat().st_size
    row.state, row.rendered_at = "rendered", utcnow()
    audit.append(session, actor, Action.REDACTED, object_type="bodycam_recording", object_id=recording.id,
                 details={"redaction_id": row.id, "original_sha256": recording.sha256, "sha256": digest,
                          "bytes": row.bytes, "tracks_blurred": len(set(found.tracks) - set(found.excluded)),
                          "tracks_left": found.excluded, "boxes_added": len(found.added),
                          "audio": "kept" if found.audio else "removed"})
    return row


def create_disclosure(session: Session, root: Path, keys: Keyring, actor: Actor, by: User, *, redaction_ids: list[int],
                      recipient: str, reason: str, hours: int) -> tuple[BodycamDisclosure, str]:
    """The signed package and its link; the token is returned once and only its hash is kept."""
    from kuzet.services.watching.evidence import _CappedZip, verify_text

    if not recipient.strip() or not reason.strip():
        raise DisclosureError("a disclosure names its recipient and its reason (the request it answers)")
    if not 1 <= hours <= MAX_LINK_HOURS:
        raise DisclosureError(f"hours: the link lives 1 to {MAX_LINK_HOURS} hours")
    rows = [redaction_for(session, by, rid) for rid in dict.fromkeys(redaction_ids)]
    if not rows:
        raise DisclosureError("redaction_ids: name at least one redacted copy")
    for row in rows:
        if row.state != "rendered":
            raise DisclosureConflict(f"redaction {row.id}: the redacted copy is not written yet")
    disclosure_id = secrets.token_hex(8)
    out = root / "disclosures"
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{disclosure_id}.zip"
    bundle = _CappedZip(target.with_suffix(".part"), 1 << 40)
    entries, hashes = [], {}
    try:
        for row in rows:
            recording = session.get(BodycamRecording, row.recording_id)
            device = session.get(BodycamDevice, recording.device_id)
            officer = session.get(User, recording.officer_id) if recording.officer_id else None
            name = f"redacted-{recording.id}.mp4"
            with open(root / row.path, "rb") as fh:
                digest, size = bundle.write_stream(f"{disclosure_id}/{name}", iter(lambda: fh.read(1 << 20), b""))
            hashes[name] = digest
            found = load_plan(root, row)
            entries.append({
                "recording_id": recording.id, "device": device.serial, "device_kind": device.kind,
                "officer": officer.username if officer else None, "started_at": recording.started_at.isoformat(),
                "ended_at": recording.ended_at.isoformat(), "original_file": recording.filename,
                "original_sha256": recording.sha256, "original_bytes": recording.bytes,
                "redacted_file": name, "redacted_sha256": digest, "redacted_bytes": size,
                "redaction": {"method": "OpenCV Haar cascades (frontal, profile), tracked, pixelated",
                              "tracks_blurred": len(set(found.tracks) - set(found.excluded)),
                              "tracks_left_unblurred": found.excluded, "boxes_added_by_hand": len(found.added),
                              "audio": "kept" if found.audio else "removed"}})
        public_pem = keys.public_key_pem()
        signer = fingerprint(public_pem)
        expires = utcnow() + timedelta(hours=hours)
        manifest = {"format": "kuzet-bodycam-disclosure/1", "disclosure_id": disclosure_id, "recordings": entries,
                    "recipient": recipient.strip(), "reason": reason.strip(),
                    "disclosed_by": {"user_id": by.id, "username": by.username, "full_name": by.full_name},
                    "disclosed_at": utcnow().isoformat(), "link_expires_at": expires.isoformat(),
                    "note": "The originals are kept unaltered by the installation; original_sha256 identifies each.",
                    "generator": f"Kuzet {__version__}", "signing_key_sha256": signer,
                    "files": dict(sorted(hashes.items()))}
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
        signature = keys.signing_key().sign(manifest_bytes)
        sums = "".join(f"{d}  {n}\n" for n, d in sorted({**hashes, "manifest.json": hashlib.sha256(
            manifest_bytes).hexdigest()}.items()))
        for name, data in (("manifest.json", manifest_bytes), ("manifest.sig", base64.b64encode(signature) + b"\n"),
                           ("public_key.pem", public_pem), ("VERIFY.txt", verify_text(signer).encode("utf-8")),
                           ("SHA256SUMS", sums.encode())):
            bundle.write_bytes(f"{disclosure_id}/{name}", data)
        bundle.close()
    except BaseException:
        bundle.abandon()
        raise
    bundle.path.replace(target)
    os.chmod(target, 0o400)
    token = secrets.token_urlsafe(32)
    first = session.get(BodycamRecording, rows[0].recording_id)
    disclosure = BodycamDisclosure(id=disclosure_id, organisation_id=first.organisation_id,
                                   redaction_ids=[r.id for r in rows], recipient=recipient.strip(),
                                   reason=reason.strip(), path=str(target.relative_to(root)),
                                   sha256=sha256_file(target), token_hash=hashlib.sha256(token.encode()).hexdigest(),
                                   created_by=by.id, expires_at=expires)
    session.add(disclosure)
    for row in rows:
        recording = session.get(BodycamRecording, row.recording_id)
        recordings_service.hold(session, actor, by, recording, f"disclosure {disclosure_id}: {reason.strip()}",
                                source=f"disclosure:{disclosure_id}")
    audit.append(session, actor, Action.DISCLOSED, object_type="bodycam_disclosure", object_id=disclosure_id,
                 legal_basis=reason.strip(), details={"recipient": recipient.strip(), "sha256": disclosure.sha256,
                                                      "recordings": [e["recording_id"] for e in entries],
                                                      "expires_at": expires.isoformat()})
    return disclosure, token


def open_disclosure(session: Session, token: str, ip: str | None) -> BodycamDisclosure:
    """The package behind a link, while it is valid; every opening audited. LookupError otherwise."""
    from sqlalchemy import select

    row = session.scalar(select(BodycamDisclosure).where(
        BodycamDisclosure.token_hash == hashlib.sha256(token.encode()).hexdigest()))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        raise LookupError("this link is not valid (expired, revoked or unknown)")
    audit.append(session, Actor(None, "disclosure link", ip), Action.DISCLOSURE_OPENED,
                 object_type="bodycam_disclosure", object_id=row.id, legal_basis=row.reason,
                 details={"recipient": row.recipient, "sha256": row.sha256})
    return row
