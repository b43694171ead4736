"""Evidence bundles you can check without trusting the server: verification against the installation's key (never
the key inside the bundle), the published key and fingerprint, bundles written and served piece by piece under a size
cap, and who may download them (auditors only with a grant). On SQLite and PostgreSQL, with real fMP4 archive files."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import tracemalloc
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from typer.testing import CliRunner

from kuzet.cli.main import app as cli_app
from kuzet.installation import Installation
from kuzet.services.audit import Actor
from kuzet.services.watching.evidence import build_bundle, build_export, create_export, verify_bundle
from kuzet.store.models import AuditRecord, User
from kuzet.store.models.recording import Recording
from kuzet.store.models.watching import Export
from tests.conftest import login
from tests.recording_support import TEST_SUB

# The archive the tests export: CLIP_ROWS consecutive files of the same real 12-second fMP4 recording.
ARCHIVE_START = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
CLIP_ROWS = 20


def _fragmented_sample(target: Path) -> None:
    from kuzet.services.recording.ffmpeg import ffmpeg_binary
    from kuzet.services.simulator.clips import ensure_clip

    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg_binary(), "-loglevel", "error", "-y", "-i", str(ensure_clip(TEST_SUB)), "-c", "copy",
                    "-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof",
                    "-frag_duration", "500000", str(target)], check=True, timeout=120)


def _record(inst: Installation, camera_id: int, rows: int = CLIP_ROWS) -> timedelta:
    """Index ``rows`` back-to-back copies of the sample as camera ``camera_id``'s archive; the length of one."""
    from kuzet.services.recording.index import scan_file

    sample = inst.settings.recordings_path / "evidence-sample.mp4"
    if not sample.exists():
        _fragmented_sample(sample)
    values, _ = scan_file(sample, ARCHIVE_START)
    length = values.pop("end_at") - ARCHIVE_START
    with inst.db.session() as session:
        session.execute(insert(Recording), [
            values | {"camera_id": camera_id, "stream": "main", "path": sample.name,
                      "start_at": ARCHIVE_START + k * length, "end_at": ARCHIVE_START + (k + 1) * length}
            for k in range(rows)])
    return length


@pytest.fixture(scope="module")
def city(demo_inst: Installation) -> Iterator[tuple[Installation, dict[str, int], timedelta]]:
    cams = demo_inst.city.cameras
    length = _record(demo_inst, cams["b1e1"])
    yield demo_inst, cams, length


def _export(inst: Installation, username: str, cameras: list[int], seconds: float, reason: str = "Дело № 7") -> str:
    with inst.db.session() as session:
        user = session.scalar(select(User).where(User.username == username))
        export = create_export(session, Actor(user.id, user.username, "test"), user, cameras, ARCHIVE_START,
                               ARCHIVE_START + timedelta(seconds=seconds), reason)
        export_id = export.id
    build_export(inst, export_id)
    return export_id


def _state(inst: Installation, export_id: str) -> Export:
    with inst.db.session() as session:
        return session.get(Export, export_id)


def _cli(*args: str):  # noqa: ANN202
    return CliRunner().invoke(cli_app, list(args))


def _re_sign(bundle: Path, target: Path, attacker: Ed25519PrivateKey) -> str:
    """What a forger does: alter a video, rewrite the manifest's hashes, sign it and ship their own public key.
    Returns the forger's key fingerprint."""
    pem = attacker.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    fingerprint = hashlib.sha256(pem).hexdigest()
    with zipfile.ZipFile(bundle) as src:
        prefix = src.namelist()[0].split("/", 1)[0]
        members = {n.split("/", 1)[1]: src.read(n) for n in src.namelist()}
    manifest = json.loads(members["manifest.json"])
    video = next(name for name in members if name.endswith(".mp4"))
    altered = bytearray(members[video])
    altered[len(altered) // 2] ^= 0xFF
    members[video] = bytes(altered)
    manifest["files"][video] = hashlib.sha256(altered).hexdigest()
    manifest["signing_key_sha256"] = fingerprint
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode()
    members["manifest.json"] = manifest_bytes
    members["manifest.sig"] = base64.b64encode(attacker.sign(manifest_bytes)) + b"\n"
    members["public_key.pem"] = pem
    members["SHA256SUMS"] = "".join(f"{hashlib.sha256(members[n]).hexdigest()}  {n}\n"
                                    for n in (video, "manifest.json")).encode()
    with zipfile.ZipFile(target, "w") as dst:
        for name, data in members.items():
            dst.writestr(f"{prefix}/{name}", data)
    return fingerprint


def test_bundle_verifies_only_against_the_installation_key(city, tmp_path: Path) -> None:  # noqa: ANN001
    inst, cams, length = city
    export_id = _export(inst, "center", [cams["b1e1"], cams["d1street1"]], 3 * length.total_seconds())
    export = _state(inst, export_id)
    assert export.state == "done", export.error
    bundle = inst.settings.data_dir / export.path
    real = inst.keys.fingerprint()
    assert real == hashlib.sha256((inst.keys.dir / "signing.pub").read_bytes()).hexdigest()
    with zipfile.ZipFile(bundle) as zf:
        manifest = json.loads(zf.read(f"{export_id}/manifest.json"))
        verify_text = zf.read(f"{export_id}/VERIFY.txt").decode()
        sums = zf.read(f"{export_id}/SHA256SUMS").decode()
    assert manifest["signing_key_sha256"] == real
    assert real in verify_text and "/api/v1/exports/public-key" in verify_text and "sha256sum public_key.pem" in \
        verify_text
    with_video, without = manifest["cameras"]
    assert with_video["bytes"] > 0 and with_video["sha256"] in sums
    assert without["file"] is None and "nothing was recorded" in without["note"]

    # without a key to check against: intact, the signer's fingerprint shown, and still a failure
    out = _cli("export", "verify", str(bundle))
    assert out.exit_code == 1
    assert real in out.stderr and "compare" in out.stderr.lower() and "--trust-bundled-key" in out.stderr
    out = _cli("export", "verify", str(bundle), "--json")
    report = json.loads(out.stdout)
    assert out.exit_code == 1 and report["intact"] and not report["ok"]
    assert report["trust"] == "unverified" and report["signer_fingerprint"] == real
    # with the installation, its published key, or the bundled key accepted explicitly: verified
    for flags, trust in ((["--data", str(inst.settings.data_dir)], "installation"),
                         (["--key", str(inst.keys.dir / "signing.pub")], "given_key"),
                         (["--trust-bundled-key"], "bundled_key")):
        out = _cli("export", "verify", str(bundle), "--json", *flags)
        assert out.exit_code == 0, out.stdout + out.stderr
        report = json.loads(out.stdout)
        assert report["ok"] and report["trust"] == trust and report["signer_fingerprint"] == real
    out = _cli("export", "verify", str(bundle), "--key", str(tmp_path / "absent.pem"))
    assert out.exit_code == 1 and "no such file" in out.stderr


def test_bundle_re_signed_by_an_attacker_is_rejected_unless_its_key_is_trusted(city, tmp_path: Path) -> None:  # noqa: ANN001
    inst, cams, length = city
    export_id = _export(inst, "center", [cams["b1e1"]], 2 * length.total_seconds())
    bundle = inst.settings.data_dir / _state(inst, export_id).path
    forged = tmp_path / "forged.zip"
    attacker = _re_sign(bundle, forged, Ed25519PrivateKey.generate())
    real = inst.keys.fingerprint()
    assert attacker != real
    assert verify_bundle(forged).intact  # internally consistent: only the key gives it away

    out = _cli("export", "verify", str(forged))
    assert out.exit_code == 1 and attacker in out.stderr and real not in out.stderr
    public = tmp_path / "operator.pem"
    public.write_bytes(inst.keys.public_key_pem())
    for flags in (["--key", str(public)], ["--data", str(inst.settings.data_dir)]):
        out = _cli("export", "verify", str(forged), *flags)
        assert out.exit_code == 1, out.stdout
        assert attacker in out.stderr and real in out.stderr and "signature does not verify" in out.stderr
        out = _cli("export", "verify", str(forged), "--json", *flags)
        report = json.loads(out.stdout)
        assert not report["ok"] and report["signer_fingerprint"] == attacker
        assert report["trusted_fingerprint"] == real
    # only when the checker explicitly trusts the bundled key does it pass, and the fingerprint shown is the forger's
    out = _cli("export", "verify", str(forged), "--trust-bundled-key")
    assert out.exit_code == 0 and attacker in out.stdout and real not in out.stdout


def test_installation_key_and_fingerprint_are_published(city) -> None:  # noqa: ANN001
    inst, _, _ = city
    from kuzet.api.app import create_app

    with TestClient(create_app(inst)) as client:
        assert client.get("/api/v1/exports/public-key").status_code == 401
        body = client.get("/api/v1/exports/public-key", headers=login(client, "resident1")).json()
    pem = inst.keys.public_key_pem()
    assert body == {"algorithm": "ed25519", "public_key_pem": pem.decode(),
                    "fingerprint": hashlib.sha256(pem).hexdigest()}
    out = _cli("keys", "show", "--data", str(inst.settings.data_dir), "--json")
    assert out.exit_code == 0 and json.loads(out.stdout) == body
    out = _cli("keys", "show", "--data", str(inst.settings.data_dir))
    assert body["fingerprint"] in out.stdout


def test_bundle_is_written_piece_by_piece_and_capped(city) -> None:  # noqa: ANN001
    inst, cams, length = city
    window = CLIP_ROWS * length.total_seconds()
    with inst.db.session() as session:
        user = session.scalar(select(User).where(User.username == "center"))
        export = create_export(session, Actor(user.id, user.username, "test"), user, [cams["b1e1"]], ARCHIVE_START,
                               ARCHIVE_START + timedelta(seconds=window), "Дело № 8")
        one_file = session.scalars(select(Recording.bytes).where(Recording.camera_id == cams["b1e1"])).first()
        tracemalloc.start()
        try:
            path = build_bundle(session, export, inst.settings.data_dir, inst.settings.recordings_path, inst.keys,
                                inst.settings.security.export_max_bytes)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        export_id = export.id
    size = path.stat().st_size
    assert size > 10 * one_file  # every file of the window is in it…
    assert peak < 4 * one_file + (2 << 20)  # …but never more than about one archive file was in memory at a time
    assert verify_bundle(path, inst.keys.public_key_pem()).ok

    exports_dir = inst.settings.data_dir / "exports"
    before = {p.name for p in exports_dir.iterdir()}
    cap = inst.settings.security.export_max_bytes
    inst.settings.security.export_max_bytes = size // 2
    try:
        failed_id = _export(inst, "center", [cams["b1e1"]], window)
    finally:
        inst.settings.security.export_max_bytes = cap
    failed = _state(inst, failed_id)
    assert failed.state == "failed" and failed.path is None
    assert "export_max_bytes" in failed.error and str(size // 2) in failed.error
    assert {p.name for p in exports_dir.iterdir()} == before  # no zip, no partial file
    assert export_id != failed_id


def test_auditors_read_the_log_but_download_bundles_only_with_a_grant(city) -> None:  # noqa: ANN001
    inst, cams, length = city
    from kuzet.api.app import create_app
    from kuzet.services.audit import SYSTEM
    from kuzet.services.grants import create_grant

    both = _export(inst, "center", [cams["b1e1"], cams["d1street1"]], length.total_seconds())
    entrance = _export(inst, "center", [cams["b1e1"]], length.total_seconds())
    with TestClient(create_app(inst)) as client:
        def sees(username: str, export_id: str) -> tuple[int, int, bool]:
            headers = login(client, username)
            listed = {e["id"] for e in client.get("/api/v1/exports", headers=headers).json()}
            return (client.get(f"/api/v1/exports/{export_id}", headers=headers).status_code,
                    client.get(f"/api/v1/exports/{export_id}/bundle", headers=headers).status_code,
                    export_id in listed)

        assert sees("center", both) == (200, 200, True)  # its creator
        assert sees("admin", both) == (200, 200, True)  # platform admin
        assert sees("duty1", both) == (200, 200, True)  # export on both cameras (district 1)
        assert sees("duty2", both) == (404, 404, False)
        assert sees("resident1", both) == (404, 404, False)  # export on the entrance, not on the street
        assert sees("resident1", entrance) == (200, 200, True)
        assert sees("auditor", both) == (404, 404, False)
        assert sees("auditor", entrance) == (404, 404, False)
        auditor = login(client, "auditor")
        log = client.get("/api/v1/audit", headers=auditor, params={"action": "video.export", "limit": 1000})
        assert log.status_code == 200
        assert {(r["action"], r["object_id"]) for r in log.json()["items"]} >= {
            ("video.export", both), ("video.export_download", both)}  # who exported it, who downloaded it
        with inst.db.session() as session:
            user = session.scalar(select(User).where(User.username == "auditor"))
            create_grant(session, SYSTEM, user_id=user.id, camera_id=cams["b1e1"], rights=["export"],
                         legal_basis="Проверка прокуратуры № 5 (тест)")
        assert sees("auditor", entrance) == (200, 200, True)
        assert sees("auditor", both) == (404, 404, False)
        assert client.get("/api/v1/exports/not-hex", headers=auditor).status_code == 422
        # bad input: a clear 422, nothing recorded
        admin = login(client, "admin")
        count = len(client.get("/api/v1/exports", headers=admin, params={"limit": 200}).json())
        window = {"start": ARCHIVE_START.isoformat(), "end": (ARCHIVE_START + length).isoformat(), "reason": "x"}
        for cameras in ([2**40], [], list(range(1, 40))):
            assert client.post("/api/v1/exports", headers=admin, json={"cameras": cameras, **window}).status_code == 422
        assert len(client.get("/api/v1/exports", headers=admin, params={"limit": 200}).json()) == count
    with inst.db.session() as session:
        downloads = session.scalars(select(AuditRecord.actor_name).where(
            AuditRecord.action == "video.export_download", AuditRecord.object_id == entrance)).all()
    assert "auditor" in downloads
