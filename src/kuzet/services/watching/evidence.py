"""Sealed evidence export: one MP4 per camera cut from the archive, a signed manifest, and a way to check it
without Kuzet (see docs/evidence.md)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import secrets
import socket
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from sqlalchemy.orm import Session

from kuzet import __version__
from kuzet.domain.access import Right
from kuzet.domain.audit import Action
from kuzet.services import access, audit
from kuzet.services.audit import Actor
from kuzet.services.keys import KeyError_, Keyring, fingerprint, load_public_pem
from kuzet.services.places import ancestors
from kuzet.services.recording.archive import plan_window, timeline, window_fmp4
from kuzet.services.recording.retention import create_hold
from kuzet.services.recording.storage import ArchiveStore, archive_store
from kuzet.store.db import utcnow
from kuzet.store.models import Camera, Place, User
from kuzet.store.models.watching import Export

if TYPE_CHECKING:
    from kuzet.installation import Installation

log = logging.getLogger("kuzet.evidence")

MAX_WINDOW = timedelta(hours=24)
MAX_CAMERAS = 32

VERIFY_TEXT = """\
How to check this evidence bundle without Kuzet
===============================================

This bundle was signed by the Kuzet installation whose signing key has the fingerprint

    {fingerprint}

1. Make sure that key is the installation's. Anyone can make a key, re-cut the video and sign a bundle of their own,
   so a signature that verifies with public_key.pem proves nothing until you know whose key it is. Compare the
   fingerprint above with the one the operator of the installation publishes (shown in the Kuzet console, at
   GET /api/v1/exports/public-key, and by `kuzet keys show` on the server), obtained from the operator, not from this
   bundle. The fingerprint is the SHA-256 of public_key.pem:

       sha256sum public_key.pem

   It must print the same 64 hex digits as above and as the operator publishes (also in manifest.json as
   signing_key_sha256).

2. Every file is listed with its SHA-256 in SHA256SUMS (and in manifest.json):

       sha256sum -c SHA256SUMS

   Every line must say OK.

3. manifest.json is signed with that Ed25519 key. The signature is manifest.sig (base64). With OpenSSL 3:

       base64 -d manifest.sig > manifest.sig.bin
       openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin -in manifest.json -sigfile manifest.sig.bin

   It must print "Signature Verified Successfully".

4. manifest.json says which cameras, where they are, the UTC window, the gaps inside it (periods with no recording
   and why), the recorder's clock source, who exported the bundle, when and on what legal basis.

With Kuzet: `kuzet export verify BUNDLE.zip --key OPERATOR_KEY.pem` does all of this against the operator's key and
names whatever does not match (`--data DIR` on the installation itself). Without --key or --data it shows the
fingerprint of the key inside the bundle and fails until you compare it and pass --trust-bundled-key.
"""


class ExportError(ValueError):
    pass


def validate_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ExportError("start and end must carry a timezone (e.g. 2025-01-31T10:00:00Z)")
    if end <= start:
        raise ExportError("end must be after start")
    if end - start > MAX_WINDOW:
        raise ExportError("an export may span at most 24 hours")


def create_export(session: Session, actor: Actor, user: User, camera_ids: list[int], start: datetime,
                  end: datetime, reason: str) -> Export:
    """Record the export, put its window on evidence hold for every camera, audit it. The bundle is built later."""
    validate_window(start, end)
    if not reason or not reason.strip():
        raise ExportError("an export needs a reason (the legal basis)")
    if not camera_ids or len(camera_ids) > MAX_CAMERAS:
        raise ExportError(f"an export covers 1 to {MAX_CAMERAS} cameras")
    export = Export(id=secrets.token_hex(8), created_by=user.id, start_at=start, end_at=end,
                    cameras=sorted(set(camera_ids)), reason=reason.strip(), state="pending")
    session.add(export)
    session.flush()
    for camera_id in export.cameras:
        create_hold(session, camera_id, start, end, f"export {export.id}: {export.reason}", user.id)
        audit.append(session, actor, Action.EXPORT_CREATED, object_type="export", object_id=export.id,
                     camera_id=camera_id, legal_basis=export.reason,
                     details={"start": start.isoformat(), "end": end.isoformat()})
    return export


class BeyondArchiveReach(ExportError):
    """The window starts before the part of a camera's archive the user may see."""


def check_reach(session: Session, user: User, camera: Camera, start: datetime) -> None:
    """Refuse (:class:`BeyondArchiveReach`) a window that starts before the part of the camera's archive the user
    may see (a grant limited in depth)."""
    floor = access.archive_floor(session, user, camera)
    if floor is not None and start.tzinfo is not None and start < floor:
        raise BeyondArchiveReach(f"your access reaches the archive of camera {camera.id} back to "
                                 f"{floor.isoformat()} only")


def may_see(session: Session, user: User, export: Export, exportable: set[int] | None = None) -> bool:
    """Who sees an export: its creator, platform admins, and holders of ``export`` on every camera of the bundle
    (``exportable``: the ids of the cameras the user may export, when the caller has them at hand)."""
    if export.created_by == user.id or access.is_platform_admin(user):
        return True
    if exportable is None:
        for camera_id in export.cameras:
            camera = session.get(Camera, camera_id)
            if camera is None or Right.EXPORT not in access.camera_rights(session, user, camera):
                return False
        return True
    return set(export.cameras) <= exportable


def bundle_file(data_dir: Path, export: Export) -> Path | None:
    """The finished bundle's zip on disk, None when the export has none (not done) or its file is gone."""
    if export.state != "done" or not export.path:
        return None
    path = data_dir / export.path
    return path if path.is_file() else None


def record_download(session: Session, actor: Actor, export: Export) -> None:
    """One audit record per camera of the bundle for each download."""
    for camera_id in export.cameras:
        audit.append(session, actor, Action.EXPORT_DOWNLOADED, object_type="export", object_id=export.id,
                     camera_id=camera_id, legal_basis=export.reason)


class BundleTooLarge(ExportError):
    pass


class _CappedZip:
    """A bundle zip written piece by piece to ``<id>.part``: every write first checks the size cap, so a bundle never
    grows past it and is never held whole in memory."""

    CHUNK = 1 << 20

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.raw = open(path, "wb")  # closed in close() or abandon()
        self.zip = zipfile.ZipFile(self.raw, "w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def _room(self, size: int) -> None:
        if self.raw.tell() + size > self.max_bytes:
            raise BundleTooLarge(f"the bundle would exceed the export size cap of {self.max_bytes} bytes "
                                 "(security.export_max_bytes); export fewer cameras or a shorter window")

    def write_stream(self, name: str, chunks: Iterator[bytes]) -> tuple[str, int]:
        """Write one member from ``chunks``; its (SHA-256, size). Nothing is written when ``chunks`` is empty."""
        digest, size = hashlib.sha256(), 0
        member = None
        try:
            for chunk in chunks:
                if member is None:
                    member = self.zip.open(_member(name), "w", force_zip64=True)
                for offset in range(0, len(chunk), self.CHUNK):
                    piece = chunk[offset:offset + self.CHUNK]
                    self._room(len(piece) + 1024)  # with room for this member's entry in the central directory
                    member.write(piece)
                    digest.update(piece)
                    size += len(piece)
        finally:
            if member is not None:
                member.close()
        return digest.hexdigest(), size

    def write_bytes(self, name: str, data: bytes) -> None:
        self._room(len(data) + 1024)
        self.zip.writestr(_member(name), data)

    def close(self) -> None:
        try:
            self.zip.close()
        finally:
            self.raw.close()
        if self.path.stat().st_size > self.max_bytes:
            raise BundleTooLarge(f"the bundle would exceed the export size cap of {self.max_bytes} bytes "
                                 "(security.export_max_bytes)")

    def abandon(self) -> None:
        with contextlib.suppress(Exception):
            self.zip.close()
        self.raw.close()
        self.path.unlink(missing_ok=True)


_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def verify_text(signer: str) -> str:
    """VERIFY.txt of a bundle signed by the key whose fingerprint is ``signer``."""
    return VERIFY_TEXT.format(fingerprint=signer)


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)  # members carry no meaningful time; the manifest says when
    info.external_attr = 0o644 << 16
    return info


def build_bundle(session: Session, export: Export, root: Path, recordings: Path | ArchiveStore, keys: Keyring,
                 max_bytes: int) -> Path:
    """Write ``exports/<id>.zip`` under ``root`` and return its path.

    Each camera's video is cut from the archive straight into the zip (one archive file in memory at a time) and
    hashed on the way; the manifest, its signature and the checking aids follow. If the zip would exceed
    ``max_bytes``, :class:`BundleTooLarge` is raised and nothing is left on disk.
    """
    user = session.get(User, export.created_by)
    out_dir = root / "exports"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{export.id}.zip"
    bundle = _CappedZip(target.with_suffix(".part"), max_bytes)
    try:
        hashes: dict[str, str] = {}
        cameras = []
        for camera_id in export.cameras:
            camera = session.get(Camera, camera_id)
            place = session.get(Place, camera.place_id)
            pieces = plan_window(session, recordings, camera_id, export.start_at, export.end_at)
            name = f"camera-{camera_id}.mp4"
            digest, size = bundle.write_stream(f"{export.id}/{name}",
                                               window_fmp4(pieces, export.start_at, export.end_at))
            tl = timeline(session, camera_id, export.start_at, export.end_at)
            entry = {
                "camera_id": camera_id, "name": camera.name, "kind": camera.kind,
                "place": {"id": place.id, "name": place.name, "address": place.address,
                          "path": [p.name for p in ancestors(session, place)]},
                "lat": camera.lat, "lon": camera.lon, "bearing": camera.bearing,
                "recorded": [{"start": r["start"].isoformat(), "end": r["end"].isoformat()}
                             for r in tl["recorded"]],
                "gaps": [{"start": g["start"].isoformat(), "end": g["end"].isoformat() if g["end"] else None,
                          "reason": g["reason"]} for g in tl["gaps"]],
                "recorded_seconds": round(tl["recorded_seconds"], 3),
            }
            if size:
                hashes[name] = digest
                entry.update(file=name, sha256=digest, bytes=size)
            else:
                entry["file"] = None
                entry["note"] = "nothing was recorded in the window"
            cameras.append(entry)
        public_pem = keys.public_key_pem()
        signer = fingerprint(public_pem)
        manifest = {
            "format": "kuzet-evidence/1",
            "export_id": export.id,
            "window": {"start": export.start_at.isoformat(), "end": export.end_at.isoformat(), "timezone": "UTC"},
            "cameras": cameras,
            "clock_source": f"wall-clock UTC of the recorder host {socket.gethostname()} (camera clocks are not "
                            "trusted; see the installation's docs/time.md)",
            "exported_by": {"user_id": user.id, "username": user.username, "full_name": user.full_name},
            "exported_at": utcnow().isoformat(),
            "reason": export.reason,
            "generator": f"Kuzet {__version__}",
            "signing_key_sha256": signer,
            "files": dict(sorted(hashes.items())),
        }
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
        hashes["manifest.json"] = hashlib.sha256(manifest_bytes).hexdigest()
        signature = keys.signing_key().sign(manifest_bytes)
        sums = "".join(f"{digest}  {name}\n" for name, digest in sorted(hashes.items()))
        for name, data in (("manifest.json", manifest_bytes), ("manifest.sig", base64.b64encode(signature) + b"\n"),
                           ("public_key.pem", public_pem), ("VERIFY.txt", verify_text(signer).encode("utf-8")),
                           ("SHA256SUMS", sums.encode())):
            bundle.write_bytes(f"{export.id}/{name}", data)
        bundle.close()
    except BaseException:
        bundle.abandon()
        raise
    bundle.path.replace(target)
    return target


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def build_export(inst: Installation, export_id: str) -> None:
    """Build the bundle (in a worker thread, or the CLI); the export's state says how it went."""
    with inst.db.session() as session:
        export = session.get(Export, export_id)
        export.state = "running"
    try:
        with inst.db.session() as session:
            export = session.get(Export, export_id)
            path = build_bundle(session, export, inst.settings.data_dir, archive_store(inst.settings), inst.keys,
                                inst.settings.security.export_max_bytes)
        digest, size = file_sha256(path), path.stat().st_size
        with inst.db.session() as session:
            export = session.get(Export, export_id)
            export.state, export.finished_at = "done", utcnow()
            export.path = str(path.relative_to(inst.settings.data_dir))
            export.sha256, export.bytes = digest, size
    except Exception as exc:  # a failed export is reported, never crashes the server
        if not isinstance(exc, ExportError):
            log.exception("export %s failed", export_id)
        with inst.db.session() as session:
            export = session.get(Export, export_id)
            export.state, export.error, export.finished_at = "failed", str(exc)[:500], utcnow()


class Trust(StrEnum):
    """Whose key the bundle's signature was checked against."""

    INSTALLATION = "installation"  # the key of an installation given with --data
    GIVEN_KEY = "given_key"  # a public key file the checker trusts (--key)
    BUNDLED_KEY = "bundled_key"  # the key inside the bundle, accepted explicitly (--trust-bundled-key)
    UNVERIFIED = "unverified"  # the key inside the bundle, not known to belong to anyone


@dataclass
class VerifyReport:
    ok: bool
    problems: list[str] = field(default_factory=list)
    checked_files: list[str] = field(default_factory=list)
    signer_fingerprint: str | None = None  # SHA-256 of the bundle's public_key.pem
    trusted_fingerprint: str | None = None  # SHA-256 of the key checked against, when one was given
    trust: Trust = Trust.UNVERIFIED
    intact: bool = False  # every hash and the signature hold (with whichever key was used)

    @property
    def key_fingerprint(self) -> str | None:
        return self.trusted_fingerprint or self.signer_fingerprint

    def as_dict(self) -> dict:
        return {"ok": self.ok, "intact": self.intact, "trust": self.trust.value,
                "signer_fingerprint": self.signer_fingerprint, "trusted_fingerprint": self.trusted_fingerprint,
                "problems": self.problems, "checked_files": self.checked_files}


def verify_bundle(path: Path, trusted_public_pem: bytes | None = None, *, trusted_source: Trust = Trust.GIVEN_KEY,
                  trust_bundled_key: bool = False) -> VerifyReport:
    """Check every file's SHA-256 against the manifest and the manifest's Ed25519 signature.

    With ``trusted_public_pem`` the signature must be by that key; a bundle signed by any other key fails naming both
    fingerprints. Without it the signature is checked against the key inside the bundle, which proves nothing about
    who signed it: the report is then ``intact`` but not ``ok`` (trust ``unverified``) unless ``trust_bundled_key``.
    """
    report = VerifyReport(ok=False)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        report.problems.append(f"{path}: not a readable bundle ({exc})")
        return report
    with zf:
        names = {n.split("/", 1)[-1]: n for n in zf.namelist() if not n.endswith("/")}
        for required in ("manifest.json", "manifest.sig", "public_key.pem"):
            if required not in names:
                report.problems.append(f"{required} is missing")
        if report.problems:
            return report
        manifest_bytes = zf.read(names["manifest.json"])
        bundled_pem = zf.read(names["public_key.pem"])
        report.signer_fingerprint = fingerprint(bundled_pem)
        if trusted_public_pem is not None:
            report.trust = trusted_source
            report.trusted_fingerprint = fingerprint(trusted_public_pem)
            if report.trusted_fingerprint != report.signer_fingerprint:
                report.problems.append(f"public_key.pem: the bundle was signed by key {report.signer_fingerprint}, "
                                       f"not by the trusted key {report.trusted_fingerprint}")
        elif trust_bundled_key:
            report.trust = Trust.BUNDLED_KEY
        try:
            key = load_public_pem(trusted_public_pem if trusted_public_pem is not None else bundled_pem)
            key.verify(base64.b64decode(zf.read(names["manifest.sig"]).strip(), validate=True), manifest_bytes)
        except (InvalidSignature, ValueError, KeyError_):
            report.problems.append("manifest.json: signature does not verify (the manifest was altered or signed "
                                   "with another key)")
        try:
            manifest = json.loads(manifest_bytes)
            files = manifest.get("files", {})
            if not isinstance(files, dict):
                raise ValueError
        except (ValueError, AttributeError):
            report.problems.append("manifest.json: not a valid manifest")
            return report
        if manifest.get("signing_key_sha256") != report.signer_fingerprint:
            report.problems.append(f"manifest.json: signing_key_sha256 {manifest.get('signing_key_sha256')} is not "
                                   f"the fingerprint of public_key.pem ({report.signer_fingerprint})")
        for name, digest in sorted(files.items()):
            if name not in names:
                report.problems.append(f"{name}: listed in the manifest but missing")
                continue
            actual = hashlib.sha256()
            with zf.open(names[name]) as member:
                while block := member.read(1 << 20):
                    actual.update(block)
            if actual.hexdigest() != digest:
                report.problems.append(f"{name}: SHA-256 does not match the manifest")
            report.checked_files.append(name)
        extra = set(names) - set(files) - {"manifest.json", "manifest.sig", "public_key.pem", "VERIFY.txt",
                                           "SHA256SUMS"}
        for name in sorted(extra):
            report.problems.append(f"{name}: not listed in the manifest")
    report.intact = not report.problems
    report.ok = report.intact and report.trust is not Trust.UNVERIFIED
    return report
