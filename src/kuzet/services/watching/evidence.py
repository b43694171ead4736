"""Sealed evidence export: one MP4 per camera cut from the archive, a signed manifest, and a way to check it
without Kuzet (see docs/evidence.md)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from kuzet import __version__
from kuzet.domain.audit import Action
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.services.places import ancestors
from kuzet.services.recording.archive import plan_window, timeline, window_fmp4
from kuzet.services.recording.retention import create_hold
from kuzet.store.db import utcnow
from kuzet.store.models import Camera, Place, User
from kuzet.store.models.watching import Export

MAX_WINDOW = timedelta(hours=24)
MAX_CAMERAS = 32

VERIFY_TEXT = """\
How to check this evidence bundle without Kuzet
===============================================

1. Every file is listed with its SHA-256 in SHA256SUMS (and in manifest.json):

       sha256sum -c SHA256SUMS

   Every line must say OK.

2. manifest.json is signed with the Ed25519 key of the Kuzet installation that recorded the video. The signature is
   manifest.sig (base64) and the installation's public key is public_key.pem. With OpenSSL 3:

       base64 -d manifest.sig > manifest.sig.bin
       openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin -in manifest.json -sigfile manifest.sig.bin

   It must print "Signature Verified Successfully". Compare the key's fingerprint (SHA-256 of public_key.pem, also in
   manifest.json as signing_key_sha256) with the one the operator of the installation publishes.

3. manifest.json says which cameras, where they are, the UTC window, the gaps inside it (periods with no recording
   and why), the recorder's clock source, who exported the bundle, when and on what legal basis.

With Kuzet: `kuzet export verify BUNDLE.zip` does all of this and names whatever does not match.
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


def build_bundle(session: Session, export: Export, root: Path, recordings: Path, keys) -> Path:  # noqa: ANN001
    """Write ``exports/<id>.zip`` under ``root`` and return its path."""
    user = session.get(User, export.created_by)
    files: dict[str, bytes] = {}
    cameras = []
    for camera_id in export.cameras:
        camera = session.get(Camera, camera_id)
        place = session.get(Place, camera.place_id)
        pieces = plan_window(session, recordings, camera_id, export.start_at, export.end_at)
        video = b"".join(window_fmp4(pieces, export.start_at, export.end_at))
        name = f"camera-{camera_id}.mp4"
        tl = timeline(session, camera_id, export.start_at, export.end_at)
        entry = {
            "camera_id": camera_id, "name": camera.name, "kind": camera.kind,
            "place": {"id": place.id, "name": place.name, "address": place.address,
                      "path": [p.name for p in ancestors(session, place)]},
            "lat": camera.lat, "lon": camera.lon, "bearing": camera.bearing,
            "recorded": [{"start": r["start"].isoformat(), "end": r["end"].isoformat()} for r in tl["recorded"]],
            "gaps": [{"start": g["start"].isoformat(), "end": g["end"].isoformat() if g["end"] else None,
                      "reason": g["reason"]} for g in tl["gaps"]],
            "recorded_seconds": round(tl["recorded_seconds"], 3),
        }
        if video:
            files[name] = video
            entry["file"] = name
            entry["sha256"] = hashlib.sha256(video).hexdigest()
            entry["bytes"] = len(video)
        else:
            entry["file"] = None
            entry["note"] = "nothing was recorded in the window"
        cameras.append(entry)
    public_pem = keys.public_key_pem()
    manifest = {
        "format": "kuzet-evidence/1",
        "export_id": export.id,
        "window": {"start": export.start_at.isoformat(), "end": export.end_at.isoformat(), "timezone": "UTC"},
        "cameras": cameras,
        "clock_source": f"wall-clock UTC of the recorder host {socket.gethostname()} (camera clocks are not trusted; "
                        "see the installation's docs/time.md)",
        "exported_by": {"user_id": user.id, "username": user.username, "full_name": user.full_name},
        "exported_at": utcnow().isoformat(),
        "reason": export.reason,
        "generator": f"Kuzet {__version__}",
        "signing_key_sha256": hashlib.sha256(public_pem).hexdigest(),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
    signature = keys.signing_key().sign(manifest_bytes)
    files["manifest.json"] = manifest_bytes
    files["manifest.sig"] = base64.b64encode(signature) + b"\n"
    files["public_key.pem"] = public_pem
    files["VERIFY.txt"] = VERIFY_TEXT.encode("utf-8")
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())
                   if name.endswith(".mp4") or name == "manifest.json")
    files["SHA256SUMS"] = sums.encode()
    out_dir = root / "exports"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{export.id}.zip"
    tmp = target.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(f"{export.id}/{name}", data)
    tmp.replace(target)
    return target


@dataclass
class VerifyReport:
    ok: bool
    problems: list[str] = field(default_factory=list)
    checked_files: list[str] = field(default_factory=list)
    key_fingerprint: str | None = None
    key_source: str = "bundle"


def verify_bundle(path: Path, trusted_public_pem: bytes | None = None) -> VerifyReport:
    """Check every file's SHA-256 against the manifest and the manifest's Ed25519 signature."""
    report = VerifyReport(ok=False)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, FileNotFoundError) as exc:
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
        pem = trusted_public_pem or bundled_pem
        report.key_source = "installation" if trusted_public_pem else "bundle"
        report.key_fingerprint = hashlib.sha256(pem).hexdigest()
        try:
            key = serialization.load_pem_public_key(pem)
            assert isinstance(key, Ed25519PublicKey)
            key.verify(base64.b64decode(zf.read(names["manifest.sig"])), manifest_bytes)
        except (InvalidSignature, ValueError, AssertionError):
            report.problems.append("manifest.json: signature does not verify (the manifest was altered or signed "
                                   "with another key)")
        try:
            manifest = json.loads(manifest_bytes)
        except ValueError:
            report.problems.append("manifest.json: not valid JSON")
            return report
        if trusted_public_pem and manifest.get("signing_key_sha256") != report.key_fingerprint:
            report.problems.append("public_key.pem: the bundle was not signed by this installation's key")
        for name, digest in sorted(manifest.get("files", {}).items()):
            if name not in names:
                report.problems.append(f"{name}: listed in the manifest but missing")
                continue
            actual = hashlib.sha256(zf.read(names[name])).hexdigest()
            if actual != digest:
                report.problems.append(f"{name}: SHA-256 does not match the manifest")
            report.checked_files.append(name)
        extra = set(names) - set(manifest.get("files", {})) - {"manifest.json", "manifest.sig", "public_key.pem",
                                                                 "VERIFY.txt", "SHA256SUMS"}
        for name in sorted(extra):
            report.problems.append(f"{name}: not listed in the manifest")
    report.ok = not report.problems
    return report

