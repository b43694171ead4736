"""Writing and verifying the hash-chained audit log.

``heads`` signs the chain's head and keeps the anchor outside the database; ``witness`` publishes heads to witnesses
outside the installation; ``runtime`` is the publisher ``kuzet serve`` runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from kuzet.domain.audit import GENESIS, record_hash
from kuzet.store.db import Database, utcnow
from kuzet.store.models import AuditRecord, User

# An arbitrary constant: the PostgreSQL advisory lock that serialises appends to the chain.
_PG_AUDIT_LOCK = 0x4B55_5A45

if TYPE_CHECKING:
    from kuzet.services.audit.heads import AuditAnchor


@dataclass(frozen=True)
class Actor:
    """Who did it and from where. ``user`` is None for the system itself (recorder, CLI without a user)."""

    user_id: int | None
    name: str
    ip: str | None = None

    @classmethod
    def of(cls, user: User | None, ip: str | None = None) -> Actor:
        if user is None:
            return cls(None, "system", ip)
        return cls(user.id, user.username, ip)


SYSTEM = Actor(None, "system")


def append(
    session: Session,
    actor: Actor,
    action: str,
    *,
    object_type: str | None = None,
    object_id: Any = None,
    camera_id: int | None = None,
    legal_basis: str | None = None,
    purpose: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditRecord:
    """Append one record inside the caller's transaction, so the record and the change it describes commit together."""
    if session.get_bind().dialect.name == "postgresql":
        # Keyed by the schema too: installations (or test runs) in other schemas of the database have chains of
        # their own and must not wait for this one.
        session.execute(text("SELECT pg_advisory_xact_lock(:k, hashtext(current_schema()))"), {"k": _PG_AUDIT_LOCK})
    # SQLite transactions begin IMMEDIATE (store/db.py), so the tip cannot move under us there either.
    tip = session.execute(select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)).first()
    seq, prev = (tip.seq + 1, tip.hash) if tip else (1, GENESIS)
    fields = {
        "seq": seq,
        "at": at or utcnow(),
        "actor_id": actor.user_id,
        "actor_name": actor.name,
        "action": action,
        "object_type": object_type,
        "object_id": None if object_id is None else str(object_id),
        "camera_id": camera_id,
        "ip": actor.ip,
        "legal_basis": legal_basis,
        "purpose": purpose,
        "details": details,
    }
    record = AuditRecord(**fields, prev_hash=prev, hash=record_hash(prev, fields))
    session.add(record)
    session.flush()
    session.info["audit_tip"] = (seq, record.hash)
    return record


@dataclass(frozen=True)
class Checkpoint:
    """A (seq, hash) the chain must hold, known from outside the database: the anchor, or a witnessed head."""

    seq: int
    hash: str
    source: str  # "the anchor", "witness heads.jsonl line 3 (2026-01-31T22:00:00Z)"


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    broken_id: int | None = None
    problem: str | None = None


def verify(db: Database, progress=None, checkpoints: Iterable[Checkpoint] = ()) -> VerifyResult:  # noqa: ANN001
    """Walk the chain from the first record; report the first record whose hash or link does not hold.

    ``checkpoints`` come from outside the database (the signed anchor, witnessed heads): without them, deleting the
    newest records would leave a shorter but valid chain. The chain must hold each checkpoint's hash at its seq and
    must reach its seq. Read them before calling this, so a record committed meanwhile cannot look missing.
    """
    by_seq: dict[int, list[Checkpoint]] = {}
    for point in checkpoints:
        if point.seq == 0 and point.hash != GENESIS:
            return VerifyResult(False, 0, 0, None, f"{point.source} names a record #0, which no chain has")
        by_seq.setdefault(point.seq, []).append(point)
    with db.session() as session:
        total = session.scalar(select(func.count()).select_from(AuditRecord)) or 0
        prev = GENESIS
        expected_seq = 1
        checked = 0
        rows = session.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars()
        for rec in rows.yield_per(2000):
            if rec.seq != expected_seq:
                return VerifyResult(False, checked, expected_seq, None,
                                    f"record #{expected_seq} is missing (next present is #{rec.seq})")
            if rec.prev_hash != prev:
                return VerifyResult(False, checked, rec.seq, rec.id,
                                    f"record #{rec.seq} does not link to record #{rec.seq - 1} "
                                    "(a record before it was altered or removed)")
            fields = {name: getattr(rec, name) for name in (
                "seq", "at", "actor_id", "actor_name", "action", "object_type", "object_id", "camera_id",
                "ip", "legal_basis", "purpose", "details")}
            if record_hash(prev, fields) != rec.hash:
                return VerifyResult(False, checked, rec.seq, rec.id,
                                    f"record #{rec.seq} was altered (its content no longer matches its hash)")
            prev = rec.hash
            expected_seq += 1
            checked += 1
            if progress:
                progress(checked, total)
            for point in by_seq.get(rec.seq, ()):
                if point.hash != rec.hash:
                    return VerifyResult(False, checked, rec.seq, rec.id,
                                        f"record #{rec.seq} differs from {point.source} (the chain was rewritten "
                                        f"from #{rec.seq} or earlier)")
        beyond = [point for seq, points in by_seq.items() if seq >= expected_seq for point in points]
        if beyond:
            point = max(beyond, key=lambda p: p.seq)
            return VerifyResult(False, checked, expected_seq, None,
                                f"records #{expected_seq}..#{point.seq} are missing: the chain ends at "
                                f"#{expected_seq - 1} but {point.source} says it reached #{point.seq}")
        return VerifyResult(True, checked)


@dataclass
class AuditCheck:
    """Everything ``kuzet audit verify`` checked: the chain, the signed anchor, the witnessed heads."""

    ok: bool
    checked: int
    fingerprint: str
    anchor: dict[str, Any]
    witness_heads: int = 0
    broken_seq: int | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def problem(self) -> str | None:
        return self.problems[0] if self.problems else None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "broken_seq": self.broken_seq, "problem": self.problem,
                "problems": self.problems, "warnings": self.warnings, "anchor": self.anchor,
                "witness_heads": self.witness_heads, "fingerprint": self.fingerprint}


def verify_trusted(db: Database, anchor: AuditAnchor, *, witness_files: Iterable[Path] = (),
                   allow_missing_anchor: bool = False, progress=None) -> AuditCheck:  # noqa: ANN001
    """The chain, checked against the signed anchor and every head in ``witness_files``.

    Fails when the anchor is missing, unsigned or does not verify with the installation's key (unless
    ``allow_missing_anchor``: then it only warns), when a witnessed head does not verify, and when the chain is shorter
    than, or differs from, the anchor or any witnessed head.
    """
    from kuzet.services.audit.heads import AnchorState
    from kuzet.services.audit.witness import read_witness
    from kuzet.services.keys import fingerprint

    public_pem = anchor.keys.public_key_pem()
    problems: list[str] = []
    warnings: list[str] = []
    checkpoints: list[Checkpoint] = []
    reading = anchor.read()  # before the walk: the anchor never runs ahead of what is committed
    if reading.state is AnchorState.VALID:
        checkpoints.append(Checkpoint(reading.head.seq, reading.head.hash, f"the signed anchor {anchor.path.name}"))
    else:
        explained = (f"the audit anchor is {reading.state.value}: {reading.problem}; without it, removing the newest "
                     "records leaves no trace in this installation")
        if allow_missing_anchor:
            warnings.append(explained + " (accepted with --allow-missing-anchor)")
        else:
            problems.append(explained + ". Run with --allow-missing-anchor to accept that, and `kuzet audit anchor` "
                                        "to start a new anchor once the chain is found intact")
    witnessed = 0
    for path in witness_files:
        try:
            entries = read_witness(path)
        except OSError as exc:
            problems.append(f"witness {path}: cannot be read ({exc.strerror or exc})")
            continue
        for entry in entries:
            where = f"witness {path.name} line {entry.line}"
            if entry.head is None:
                problems.append(f"{where}: {entry.problem}")
                continue
            bad = entry.head.problem(public_pem)
            if bad:
                problems.append(f"{where}: the head of #{entry.head.seq} is {bad}")
                continue
            witnessed += 1
            checkpoints.append(Checkpoint(entry.head.seq, entry.head.hash, f"{where} (head published "
                                                                           f"{entry.head.at})"))
    result = verify(db, progress=progress, checkpoints=checkpoints)
    if not result.ok:
        problems.insert(0, result.problem)
    return AuditCheck(ok=not problems, checked=result.checked, fingerprint=fingerprint(public_pem),
                      anchor=reading.as_dict(), witness_heads=witnessed, broken_seq=result.broken_seq,
                      problems=problems, warnings=warnings)
