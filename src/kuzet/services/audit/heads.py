"""Signed heads of the audit chain, and the anchor file that keeps the newest one outside the database.

A *head* says "the chain reached record #seq, whose hash is …", signed with the installation's Ed25519 key
(``keys/signing.ed25519``; payload in :func:`kuzet.domain.audit.head_payload`). The anchor ``<data>/audit.anchor`` is
the head of the newest record this installation committed, rewritten after every commit that appended records.

Several processes (``kuzet serve``, CLI commands, workers) share one data directory, so the anchor is updated under an
exclusive ``flock`` on ``audit.anchor.lock`` and replaced atomically (write a temporary file, fsync, rename): a reader
never sees half a file and a process never replaces a newer anchor with an older tip. An anchor that is missing or does
not verify is never replaced silently: that is the trace a truncation leaves, so it stays until an operator runs
``kuzet audit anchor`` (which records that act in the chain). Why a file and not a database row: docs/access.md.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.domain.audit import GENESIS, HEAD_FORMAT, head_payload, is_digest
from kuzet.services.keys import KeyError_, Keyring, fingerprint, load_public_pem
from kuzet.store.db import Database, iso_utc, utcnow
from kuzet.store.models import AuditRecord

log = logging.getLogger("kuzet.audit")


class HeadError(ValueError):
    """Not a signed head (missing or malformed fields)."""


@dataclass(frozen=True)
class SignedHead:
    seq: int
    hash: str
    at: str  # UTC, ``2026-01-31T22:00:00.123456Z``: when the head was signed
    signature: str  # base64 Ed25519 signature of head_payload(seq, hash, at)
    fingerprint: str  # SHA-256 of the signing key's public PEM

    def as_dict(self) -> dict[str, Any]:
        return {"format": HEAD_FORMAT, "seq": self.seq, "hash": self.hash, "at": self.at,
                "signature": self.signature, "fingerprint": self.fingerprint}

    @classmethod
    def parse(cls, data: Any) -> SignedHead:
        if not isinstance(data, dict):
            raise HeadError("not a JSON object")
        if data.get("format", HEAD_FORMAT) != HEAD_FORMAT:
            raise HeadError(f"unknown format {data.get('format')!r} (expected {HEAD_FORMAT})")
        missing = [name for name in ("seq", "hash", "at", "signature", "fingerprint") if name not in data]
        if missing:
            raise HeadError("missing " + ", ".join(missing))
        seq = data["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise HeadError(f"seq must be a whole number ≥ 0, not {seq!r}")
        for name in ("hash", "fingerprint"):
            if not is_digest(data[name]):
                raise HeadError(f"{name} must be 64 lower-case hex digits")
        if not isinstance(data["at"], str) or not isinstance(data["signature"], str):
            raise HeadError("at and signature must be strings")
        return cls(seq, data["hash"], data["at"], data["signature"], data["fingerprint"])

    def problem(self, public_pem: bytes) -> str | None:
        """Why this head was not signed by the key ``public_pem`` (None if it was)."""
        expected = fingerprint(public_pem)
        if self.fingerprint != expected:
            return f"signed by key {self.fingerprint}, not by this installation's key {expected}"
        try:
            signature = base64.b64decode(self.signature, validate=True)
            load_public_pem(public_pem).verify(signature, head_payload(self.seq, self.hash, self.at))
        except (InvalidSignature, binascii.Error, ValueError):
            return "its signature does not verify (the head was altered or forged)"
        except KeyError_ as exc:
            return f"the installation's public key is unusable: {exc}"
        return None


def sign_head(signer: Ed25519PrivateKey, public_pem: bytes, seq: int, digest: str,
              at: datetime | None = None) -> SignedHead:
    stamp = iso_utc(at or utcnow())
    signature = signer.sign(head_payload(seq, digest, stamp))
    return SignedHead(seq, digest, stamp, base64.b64encode(signature).decode("ascii"), fingerprint(public_pem))


def chain_tip(session: Session) -> tuple[int, str]:
    """(seq, hash) of the newest record; (0, GENESIS) for an empty chain."""
    tip = session.execute(select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)).first()
    return (tip.seq, tip.hash) if tip else (0, GENESIS)


def current_head(db: Database, keys: Keyring) -> SignedHead:
    """The chain's head now, freshly signed: what ``kuzet audit head`` prints and the witness publisher sends."""
    with db.session() as session:
        seq, digest = chain_tip(session)
    return sign_head(keys.signing_key(), keys.public_key_pem(), seq, digest)


class AnchorState(StrEnum):
    VALID = "valid"
    MISSING = "missing"
    UNSIGNED = "unsigned"  # {"seq", "hash"} as Kuzet wrote it before anchors were signed
    INVALID = "invalid"  # unreadable, or its signature does not verify with the installation's key


@dataclass(frozen=True)
class AnchorReading:
    state: AnchorState
    head: SignedHead | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state.value, "problem": self.problem}
        if self.head is not None:
            out.update(seq=self.head.seq, hash=self.head.hash, at=self.head.at)
        return out


class AuditAnchor:
    """``<data>/audit.anchor``: the signed head of the newest record this installation committed."""

    def __init__(self, path: Path, keys: Keyring) -> None:
        self.path = path
        self.keys = keys
        self._signer: tuple[Ed25519PrivateKey, bytes] | None = None
        self._threads = threading.Lock()  # flock serialises processes; this the threads of one process
        self._reported: AnchorState | None = None

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _signing(self) -> tuple[Ed25519PrivateKey, bytes]:
        if self._signer is None:
            self._signer = (self.keys.signing_key(), self.keys.public_key_pem())
        return self._signer

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._threads:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing the descriptor releases the lock

    def read(self) -> AnchorReading:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return AnchorReading(AnchorState.MISSING, problem=f"{self.path} is missing")
        try:
            data = json.loads(raw)
        except ValueError:
            return AnchorReading(AnchorState.INVALID, problem=f"{self.path} is not valid JSON")
        if isinstance(data, dict) and "signature" not in data and {"seq", "hash"} <= set(data):
            return AnchorReading(AnchorState.UNSIGNED, problem=f"{self.path} is not signed (written by an older "
                                                                "Kuzet, or by someone without the signing key)")
        try:
            head = SignedHead.parse(data)
        except HeadError as exc:
            return AnchorReading(AnchorState.INVALID, problem=f"{self.path}: {exc}")
        problem = head.problem(self.keys.public_key_pem())
        if problem:
            return AnchorReading(AnchorState.INVALID, head, f"{self.path} is {problem}")
        return AnchorReading(AnchorState.VALID, head)

    def _write(self, seq: int, digest: str) -> SignedHead:
        signer, public_pem = self._signing()
        head = sign_head(signer, public_pem, seq, digest)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="ascii") as fh:
            fh.write(json.dumps(head.as_dict(), sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        return head

    def advance(self, seq: int, digest: str) -> bool:
        """After a commit whose newest record is (seq, digest): move the anchor forward, never backwards. An anchor
        that is missing or does not verify is left as it is (and reported once per process): True if written."""
        with self._locked():
            reading = self.read()
            if reading.state is not AnchorState.VALID:
                if self._reported is not reading.state:
                    self._reported = reading.state
                    log.error("audit anchor not updated: %s; run `kuzet audit verify`, then `kuzet audit anchor`",
                              reading.problem)
                return False
            self._reported = None
            if reading.head.seq >= seq:
                return False
            self._write(seq, digest)
            return True

    def create(self, seq: int, digest: str) -> bool:
        """Start the anchor of a new installation (``kuzet init``); never replaces an existing one."""
        with self._locked():
            if self.path.exists():
                return False
            self._write(seq, digest)
            return True

    def reset(self, seq: int, digest: str) -> tuple[AnchorReading, SignedHead]:
        """Replace whatever anchor there is with (seq, digest): an operator's explicit act (``kuzet audit anchor``)."""
        with self._locked():
            before = self.read()
            return before, self._write(seq, digest)
