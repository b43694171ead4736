"""Writing and verifying the hash-chained audit log."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from kuzet.domain.audit import GENESIS, record_hash
from kuzet.store.db import Database, utcnow
from kuzet.store.models import AuditRecord, User

# An arbitrary constant: the PostgreSQL advisory lock that serialises appends to the chain.
_PG_AUDIT_LOCK = 0x4B55_5A45
_anchor_lock = threading.Lock()


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
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
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


def write_anchor(path: Path, seq: int, digest: str) -> None:
    """Keep the newest (seq, hash) outside the database, so removing the newest records is detected too."""
    with _anchor_lock:
        try:
            current = json.loads(path.read_text())
            if current.get("seq", 0) >= seq:
                return
        except (FileNotFoundError, ValueError):
            pass
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({"seq": seq, "hash": digest}))
        os.replace(tmp, path)


def read_anchor(path: Path) -> tuple[int, str] | None:
    try:
        data = json.loads(path.read_text())
        return int(data["seq"]), str(data["hash"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    broken_id: int | None = None
    problem: str | None = None


def verify(db: Database, progress=None, anchor: tuple[int, str] | None = None) -> VerifyResult:  # noqa: ANN001
    """Walk the chain from the first record; report the first record whose hash or link does not hold.

    ``anchor`` is the newest (seq, hash) this installation wrote (``<data>/audit.anchor``): without it, deleting the
    newest records would leave a shorter but valid chain.
    """
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
            if anchor and rec.seq == anchor[0] and rec.hash != anchor[1]:
                return VerifyResult(False, checked, rec.seq, rec.id,
                                    f"record #{rec.seq} differs from the anchor kept outside the database")
        if anchor and anchor[0] >= expected_seq:
            return VerifyResult(False, checked, expected_seq, None,
                                f"records #{expected_seq}..#{anchor[0]} are missing (the anchor outside the database "
                                f"says the log reached #{anchor[0]})")
        return VerifyResult(True, checked)
