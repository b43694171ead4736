"""Backup and restore of a whole installation (issue 17): the restore drill — demo city with safe yards, an evidence
export and audit records, a backup taken while a real camera records, restored into a fresh data directory and a fresh
PostgreSQL database — and backups refused when a byte changed or the passphrase is wrong, naming the part."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select, update
from typer.testing import CliRunner

from kuzet.cli.main import app as cli_app
from kuzet.config import load_settings
from kuzet.installation import Installation
from kuzet.services.audit import SYSTEM
from kuzet.services.backup import BackupError, backups_in, make_backup, restore_backup, rotate
from kuzet.services.cameras import allowed_schemes, create_camera
from kuzet.services.demo import seed_demo_city
from kuzet.services.recording.archive import timeline
from kuzet.services.recording.recorder import Recorder
from kuzet.services.safeyard.demo import seed as seed_safe_yards
from kuzet.services.safeyard.passport import find
from kuzet.services.safeyard.vault import Vault
from kuzet.services.watching.evidence import Trust, verify_bundle
from kuzet.store.models import Camera
from kuzet.store.models.recording import Recording
from tests.conftest import PG_URL, _unavailable
from tests.recording_support import ThreadedSim, ffprobe
from tests.test_evidence import ARCHIVE_START, _export, _record
from tests.test_recording_engine import FAST, _wait_recording

PASSPHRASE = "correct horse battery staple"


@contextmanager
def _new_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on the test server (its public schema empty), dropped afterwards."""
    name = f"kzr_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001
        _unavailable("PostgreSQL", exc)
    try:
        yield sa.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def fresh_database(backend: str) -> Iterator[str | None]:
    """For PostgreSQL: a new, empty database on the test server (dropped afterwards); for SQLite: None."""
    if backend == "sqlite":
        yield None
        return
    with _new_database() as url:
        yield url


def _target_url(inst: Installation, fresh: str | None) -> str | None:
    """The fresh database, with the same search_path (schema) as the source's URL."""
    if fresh is None:
        return None
    query = sa.make_url(inst.settings.db_url).query
    return sa.make_url(fresh).update_query_dict(dict(query)).render_as_string(hide_password=False)


def _open(data_dir: Path, database_url: str | None, **extra: str) -> Installation:
    env = {"KUZET_DATA_DIR": str(data_dir), **extra}
    if database_url:
        env["KUZET_DATABASE_URL"] = database_url
    return Installation.open(settings=load_settings(environ=env))


def _rows(inst: Installation, camera_id: int) -> list[tuple]:
    with inst.db.session() as s:
        return [(r.id, r.path, r.start_at, r.end_at, r.bytes, r.state) for r in s.scalars(
            select(Recording).where(Recording.camera_id == camera_id).order_by(Recording.start_at))]


@pytest.fixture(scope="module")
def sim() -> Iterator[ThreadedSim]:
    server = ThreadedSim(1)
    yield server
    server.close()


def test_restore_drill(inst: Installation, backend: str, fresh_database: str | None, sim: ThreadedSim,
                       tmp_path: Path) -> None:
    # The installation as it runs: demo city, safe yards with personal data, an export, one camera recording.
    inst.settings = load_settings(environ={"KUZET_DATA_DIR": str(inst.settings.data_dir), **FAST,
                                           **({"KUZET_DATABASE_URL": inst.settings.database_url}
                                              if inst.settings.database_url else {})})
    with inst.db.session() as s:
        city = seed_demo_city(s, inst.keys)
    seed_safe_yards(inst, city)
    archived = city.cameras["b1e1"]
    _record(inst, archived)
    export_id = _export(inst, "duty1", [archived], 20)
    bundle = tmp_path / "earlier-export.zip"
    with inst.db.session() as s:
        from kuzet.store.models.watching import Export

        shutil.copyfile(inst.settings.data_dir / s.get(Export, export_id).path, bundle)
        s.execute(update(Camera).values(enabled=False))  # the demo's file cameras stay off: one real camera records
        live = create_camera(s, SYSTEM, inst.keys, name="Подъезд (RTSP)", place_id=city.city_id,
                             main_url=sim.url(1), url_schemes=allowed_schemes(inst.settings)).id

    async def record_and_back_up():  # noqa: ANN202
        recorder = Recorder(inst.settings, inst.db, inst.keys)
        await recorder.start()
        try:
            await _wait_recording(recorder, live)
            deadline = time.monotonic() + 90  # at least one closed file, however busy the machine
            while not any(r[5] == "closed" for r in await asyncio.to_thread(_rows, inst, live)):
                assert time.monotonic() < deadline, "no recording was closed within 90 s"
                await asyncio.sleep(0.5)
            result = await asyncio.to_thread(make_backup, inst, tmp_path / "backups", PASSPHRASE, media=True)
            await asyncio.sleep(2)  # still recording after the snapshot
        finally:
            await recorder.stop()
        return result

    result = asyncio.run(record_and_back_up())
    assert [p["name"] for p in result.manifest["parts"]] == ["audit_anchor", "database", "keys", "config",
                                                             "documents", "media"]
    source_rows = _rows(inst, live)
    with inst.db.session() as s:
        source_timeline = timeline(s, archived, ARCHIVE_START, ARCHIVE_START.replace(hour=12))

    # Restore on "another machine": a fresh data directory and (PostgreSQL) a fresh database.
    target_url = _target_url(inst, fresh_database)
    restored_dir = tmp_path / "restored"
    out = restore_backup(result.path, restored_dir, PASSPHRASE, database_url=target_url)
    assert set(out.restored) == {"keys", "config", "audit_anchor", "documents", "media", "database"}
    restored = _open(restored_dir, target_url)
    try:
        check = restored.verify_audit()
        assert check.ok, check.problems
        assert check.anchor["seq"] == result.manifest["audit_anchor_seq"]
        # a passport's personal data decrypts with the restored keys
        vault = Vault(restored.settings.keys_path)
        with restored.db.session() as s:
            found = find(s, vault, name="охотник демо")
            assert found and all(vault.open(r.payload)["weapon"] for r in found)
        # the earlier export verifies against the restored installation's key
        report = verify_bundle(bundle, restored.keys.public_key_pem(), trusted_source=Trust.INSTALLATION)
        assert report.ok, report.problems
        # the archive's timeline is the same, and what was recorded before the snapshot plays
        with restored.db.session() as s:
            assert timeline(s, archived, ARCHIVE_START, ARCHIVE_START.replace(hour=12)) == source_timeline
        restored_rows = _rows(restored, live)
        closed = [r for r in restored_rows if r[5] == "closed"]
        assert closed and set(closed) <= set(source_rows)
        for _id, path, _start, _end, size, _state in closed:
            file = restored.settings.recordings_path / path
            assert file.stat().st_size == size and ffprobe(file)["codec"] == "h264"
        # the CLI agrees
        env = {"KUZET_DATA_DIR": str(restored_dir)} | ({"KUZET_DATABASE_URL": target_url} if target_url else {})
        verified = CliRunner().invoke(cli_app, ["audit", "verify", "--json"], env=env)
        assert verified.exit_code == 0, verified.output
    finally:
        restored.close()


def _backup(inst: Installation, tmp_path: Path) -> Path:
    return make_backup(inst, tmp_path / "backups", PASSPHRASE).path


def test_changed_byte_is_refused_naming_the_part(inst: Installation, tmp_path: Path) -> None:
    backup = _backup(inst, tmp_path)
    part = next(backup.glob("database.*"))
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x01
    part.write_bytes(bytes(data))
    with pytest.raises(BackupError, match=rf"part database \({part.name}\) fails its SHA-256"):
        restore_backup(backup, tmp_path / "restored", PASSPHRASE)
    assert not (tmp_path / "restored").exists()


def test_wrong_passphrase_is_refused_naming_the_part(inst: Installation, tmp_path: Path) -> None:
    backup = _backup(inst, tmp_path)
    with pytest.raises(BackupError, match="part keys: keys does not open with this passphrase"):
        restore_backup(backup, tmp_path / "restored", "not the passphrase")
    assert not (tmp_path / "restored").exists()


def test_altered_manifest_is_refused(inst: Installation, tmp_path: Path) -> None:
    backup = _backup(inst, tmp_path)
    manifest = json.loads((backup / "manifest.json").read_text())
    manifest["schema_revision"] = "0001_core"
    (backup / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="manifest.json was altered"):
        restore_backup(backup, tmp_path / "restored", PASSPHRASE)


def test_restore_refuses_a_data_directory_in_use(inst: Installation, tmp_path: Path) -> None:
    backup = _backup(inst, tmp_path)
    with pytest.raises(BackupError, match="is not empty"):
        restore_backup(backup, inst.settings.data_dir, PASSPHRASE)


def test_cli_backup_json_restore_and_rotation(inst: Installation, tmp_path: Path) -> None:
    pass_file = tmp_path / "pass"
    pass_file.write_text(PASSPHRASE + "\n")
    env = {"KUZET_DATA_DIR": str(inst.settings.data_dir)}
    if inst.settings.database_url:
        env["KUZET_DATABASE_URL"] = inst.settings.database_url
    runner = CliRunner()
    for _ in range(3):
        done = runner.invoke(cli_app, ["backup", str(tmp_path / "b"), "--passphrase-file", str(pass_file),
                                       "--keep", "2", "--json"], env=env)
        assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert {p["name"] for p in out["parts"]} >= {"database", "keys", "config", "audit_anchor"}
    assert len(out["removed"]) == 1 and len(backups_in(tmp_path / "b")) == 2
    assert PASSPHRASE not in done.output
    wrong = tmp_path / "wrong"
    wrong.write_text("something else entirely\n")
    refused = runner.invoke(cli_app, ["restore", out["path"], "--data", str(tmp_path / "r"),
                                      "--passphrase-file", str(wrong)], env={"KUZET_DATABASE_URL": ""})
    assert refused.exit_code == 1 and "part keys" in refused.output
    checked = runner.invoke(cli_app, ["restore", out["path"], "--check", "--passphrase-file", str(pass_file),
                                      "--json"])
    assert checked.exit_code == 0 and json.loads(checked.stdout)["ok"], checked.output
    assert not (tmp_path / "r").exists()
    if inst.db.is_sqlite:  # (PostgreSQL restores are in the drill)
        done = runner.invoke(cli_app, ["restore", out["path"], "--data", str(tmp_path / "r"),
                                       "--passphrase-file", str(pass_file), "--json"], env={"KUZET_DATABASE_URL": ""})
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)["schema"]["now"] is not None
    assert rotate(tmp_path / "b", 1) and len(backups_in(tmp_path / "b")) == 1


def test_scheduled_backups_run_when_due_and_rotate(inst: Installation, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from kuzet.capabilities import services
    from kuzet.config import BackupConfig
    from kuzet.services.backup.runtime import ScheduledBackup

    pass_file = tmp_path / "backup.pass"
    pass_file.write_text(PASSPHRASE + "\n")
    inst.settings.backup = BackupConfig(dir=tmp_path / "scheduled", passphrase_file=pass_file, keep=2,
                                        interval_hours=24)
    (service,) = [s for s in services(inst) if s.name == "backup-schedule"]
    assert isinstance(service, ScheduledBackup)
    first = service.run_once()
    assert first is not None and backups_in(tmp_path / "scheduled") == [first.path]
    assert service.run_once() is None  # not due again for a day
    assert service.due(datetime.now(UTC) + timedelta(hours=25))
    inst.settings.backup.interval_hours = 1e-6
    for _ in range(2):
        assert service.run_once() is not None
    kept = backups_in(tmp_path / "scheduled")
    assert len(kept) == 2 and first.path not in kept
    # without a passphrase file nothing is scheduled (and the log says why)
    inst.settings.backup = BackupConfig(dir=tmp_path / "scheduled")
    assert not [s for s in services(inst) if s.name == "backup-schedule"]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgresql_public_schema_restores_into_a_new_database(backend: str, tmp_path: Path) -> None:
    """The usual production set-up: Kuzet's tables in the public schema of its own database."""
    from kuzet.services import accounts

    with _new_database() as source_url, _new_database() as target_url:
        source = _open(tmp_path / "source", source_url)
        source.init()
        with source.db.session() as s:
            accounts.create_user(s, SYSTEM, "admin", "a-long-password-1", "platform_admin")
        result = make_backup(source, tmp_path / "b", PASSPHRASE)
        source.close()
        assert result.manifest["database"] == {"backend": "postgresql", "schema": "public"}
        restore_backup(result.path, tmp_path / "restored", PASSPHRASE, database_url=target_url)
        restored = _open(tmp_path / "restored", target_url)
        try:
            check = restored.verify_audit()
            assert check.ok and check.checked >= 1, check.problems
        finally:
            restored.close()
