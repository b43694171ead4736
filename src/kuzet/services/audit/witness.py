"""Witnesses of the audit chain: signed heads published outside the installation, and read back to verify the chain.

Whoever holds both the database and the data directory (with its signing key) can remove the newest audit records
and sign a new anchor. A head that already left the installation cannot be taken back: a line in a file on another
host, a POST to a service run by someone else, an event on the bus that a SIEM archives, a daily printout. Once a
witness holds the head of record #n, a chain that ends before #n, or holds another record at #n, fails verification.

Each head is one JSON object ``{"format", "seq", "hash", "at", "signature", "fingerprint"}`` (a witness file holds one
per line); ``signature`` is base64 Ed25519 over :func:`kuzet.domain.audit.head_payload`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kuzet.config import AuditConfig
from kuzet.services.audit.heads import HeadError, SignedHead

log = logging.getLogger("kuzet.audit")

HEAD_SUBJECT = "kuzet.audit.head"  # event bus subject of published heads (beside kuzet.event.*, kuzet.alarm.*)

BusPublish = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class WitnessEntry:
    line: int
    head: SignedHead | None
    problem: str | None = None


def read_witness(path: Path) -> list[WitnessEntry]:
    """Every head in a witness file (one JSON object per line; blank lines skipped); unreadable lines carry a
    problem. Raises OSError when the file cannot be read."""
    entries: list[WitnessEntry] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                entries.append(WitnessEntry(number, SignedHead.parse(json.loads(text))))
            except ValueError as exc:  # JSON errors and HeadError
                reason = str(exc) if isinstance(exc, HeadError) else "not valid JSON"
                entries.append(WitnessEntry(number, None, reason))
    return entries


def append_to_file(path: Path, head: SignedHead) -> None:
    """One line, appended with a single write (O_APPEND): concurrent publishers never interleave."""
    line = (json.dumps(head.as_dict(), sort_keys=True) + "\n").encode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def post_to_url(url: str, head: SignedHead, timeout: float = 10.0) -> None:
    import httpx

    response = httpx.post(url, json=head.as_dict(), timeout=timeout)
    if response.status_code >= 300:
        raise RuntimeError(f"the witness answered HTTP {response.status_code}")


@dataclass
class Publication:
    head: SignedHead
    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"head": self.head.as_dict(), "delivered": self.delivered, "failed": self.failed}


def publish(head: SignedHead, config: AuditConfig, bus_publish: BusPublish | None = None) -> Publication:
    """Send ``head`` to every configured witness: ``witness_file``, ``witness_url`` and the event bus. One witness
    failing never stops the others; the result says which took it."""
    result = Publication(head)
    channels: list[tuple[str, Callable[[], None]]] = []
    if config.witness_file is not None:
        channels.append(("file", lambda: append_to_file(config.witness_file, head)))
    if config.witness_url:
        channels.append(("url", lambda: post_to_url(config.witness_url, head)))
    if bus_publish is not None:
        channels.append(("bus", lambda: bus_publish(HEAD_SUBJECT, head.as_dict())))
    for name, send in channels:
        try:
            send()
            result.delivered.append(name)
        except Exception as exc:  # noqa: BLE001 - each witness is independent; the failure is reported
            result.failed[name] = str(exc) or type(exc).__name__
            log.warning("audit head #%s not delivered to the %s witness: %s", head.seq, name, result.failed[name])
    return result
