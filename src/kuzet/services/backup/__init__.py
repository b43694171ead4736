"""Backups of a whole installation while it runs, and restoring one onto an empty data directory and database.

A backup is a directory ``kuzet-backup-<UTC time>`` (owner-only) of parts and a ``manifest.json`` naming each part
with its size and SHA-256; the manifest itself is sealed with an HMAC from the passphrase (see ``seal``):

| part | file | what |
|---|---|---|
| database | ``database.sqlite`` / ``database.pgdump`` | a consistent snapshot (``database``) |
| keys | ``keys.sealed`` | the ``keys/`` directory as tar, AES-GCM under the passphrase |
| config | ``config.sealed`` | ``kuzet.toml`` (it may hold tokens), sealed likewise |
| audit_anchor | ``audit.anchor`` | the audit chain's signed anchor, read *before* the database (never ahead of it) |
| documents | ``documents.tar`` | signed agreements kept beside the database |
| media | ``media.tar`` | optional: recordings, event snapshots, evidence exports |

Without ``media`` the recordings' index is still in the database (the files are expected to come back from the
recording volume or its own copy). The directory is written as ``….partial`` and renamed when complete, so rotation
and "the newest backup" only ever see whole backups. docs/operations-guide.md is the runbook.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kuzet import __version__
from kuzet.config import Settings
from kuzet.installation import PRIVATE_DIR_MODE, Installation, make_private_dir
from kuzet.services.backup.database import DatabaseBackupError, Target, put_back, snapshot
from kuzet.services.backup.seal import Kdf, Sealer, SealError
from kuzet.store.db import Database, iso_utc, sqlite_file

FORMAT = "kuzet-backup/1"
MANIFEST = "manifest.json"
PREFIX = "kuzet-backup-"
PARTIAL = ".partial"

Progress = Callable[[str], None]  # called with the name of each step as it starts
BytesProgress = Callable[[int, int], None]  # (bytes copied so far, bytes in all) while the media part is written


class BackupError(Exception):
    """A backup cannot be made, or is refused on restore; the message names the part."""


@dataclass
class Part:
    name: str
    file: str
    bytes: int
    sha256: str
    sealed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.file, "bytes": self.bytes, "sha256": self.sha256,
                "sealed": self.sealed}


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "created_at": self.manifest["created_at"],
                "schema_revision": self.manifest["schema_revision"], "database": self.manifest["database"],
                "audit_anchor_seq": self.manifest["audit_anchor_seq"],
                "parts": self.manifest["parts"], "bytes": sum(p["bytes"] for p in self.manifest["parts"])}


@dataclass
class RestoreResult:
    data_dir: Path
    manifest: dict[str, Any]
    schema_before: str | None
    schema_after: str | None
    restored: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"data_dir": str(self.data_dir), "backup_created_at": self.manifest["created_at"],
                "schema": {"backup": self.schema_before, "now": self.schema_after}, "restored": self.restored}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "seal"}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _tar_bytes(root: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(root, arcname=".")
    return buffer.getvalue()


def _tar_dirs(out: Path, dirs: dict[str, Path], skip: tuple[str, ...] = (),
              progress: BytesProgress | None = None) -> None:
    """Tar each existing folder of ``dirs`` under its name; members whose name starts with one of ``skip`` are left
    out (they travel in another part). ``progress`` hears the bytes copied after each file. A file that disappears
    meanwhile (retention deleting the oldest minute of a camera) is left out, not an error."""
    total = sum(f.stat().st_size for path in dirs.values() if path.is_dir() for f in path.rglob("*")
                if f.is_file()) if progress is not None else 0
    done = 0
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w") as tar:
        for arcname, root in dirs.items():
            if not root.is_dir():
                continue
            for folder, subdirs, files in os.walk(root):
                subdirs.sort()
                relative = Path(arcname) / Path(folder).relative_to(root)
                name = relative.as_posix().removesuffix("/.")
                if skip and name.startswith(skip):
                    subdirs.clear()
                    continue
                tar.add(folder, arcname=name, recursive=False)
                for file in sorted(files):
                    try:
                        info = tar.gettarinfo(os.path.join(folder, file), arcname=f"{name}/{file}")
                        if info.isfile():
                            with open(os.path.join(folder, file), "rb") as data:
                                tar.addfile(info, data)
                        else:
                            tar.addfile(info)
                    except FileNotFoundError:
                        continue
                    done += info.size if info.isfile() else 0
                    if progress is not None:
                        progress(done, max(total, done))


def _extract(tar_source: Path | bytes, dest: Path) -> None:
    """Unpack a tar of a backup; the ``data`` filter refuses absolute paths, ``..``, devices and links outside."""
    fileobj = io.BytesIO(tar_source) if isinstance(tar_source, bytes) else tar_source.open("rb")
    with fileobj, tarfile.open(fileobj=fileobj, mode="r") as tar:
        tar.extractall(dest, filter="data")


def _document_dirs(settings: Settings) -> dict[str, Path]:
    """Files beside the database that records point to: signed agreements, safe-yard house photos."""
    return {"agreements": settings.data_dir / "agreements", "safeyard": settings.recordings_path / "safeyard"}


def _media_dirs(settings: Settings) -> dict[str, Path]:
    return {"recordings": settings.recordings_path, "events": settings.events_path,
            "exports": settings.data_dir / "exports"}


def _unpack(tar_file: Path, data_dir: Path, dirs: dict[str, Path]) -> None:
    """Extract a tar of :func:`_tar_dirs` into a staging folder, then move each folder's files to where ``dirs``
    puts it in this installation (folders merge; an existing file is never overwritten)."""
    staging = data_dir / ".restore-staging"
    shutil.rmtree(staging, ignore_errors=True)
    _extract(tar_file, staging)

    def move(src: str, dst: str) -> None:
        if os.path.exists(dst):
            raise BackupError(f"{dst} exists already: restore only onto an empty installation")
        shutil.move(src, dst)

    try:
        for arcname, dest in dirs.items():
            if (staging / arcname).is_dir():
                shutil.copytree(staging / arcname, dest, copy_function=move, dirs_exist_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def make_backup(inst: Installation, into: Path, passphrase: str, *, media: bool = False,
                progress: Progress | None = None, media_progress: BytesProgress | None = None) -> BackupResult:
    """Back up ``inst`` into a new directory under ``into`` while the installation keeps running. Files written while
    the backup runs (a recording's newest minute) may be in ``media`` without being in the database copy, never the
    other way round: the database is copied first."""
    from kuzet.store.schema import current_revision

    step = progress or (lambda _name: None)
    settings = inst.settings
    created = datetime.now(UTC)
    into.mkdir(parents=True, exist_ok=True)
    name = PREFIX + created.strftime("%Y%m%dT%H%M%SZ")
    final = into / name
    suffix = 1
    while final.exists() or (into / (final.name + PARTIAL)).exists():
        suffix += 1
        final = into / f"{name}-{suffix}"
    work = into / (final.name + PARTIAL)
    work.mkdir(mode=PRIVATE_DIR_MODE)
    try:
        step("passphrase")
        try:
            sealer = Sealer(passphrase, Kdf.new())
        except SealError as exc:
            raise BackupError(str(exc)) from None
        parts: list[Part] = []

        def add(part_name: str, file: str, sealed: bool = False) -> None:
            path = work / file
            parts.append(Part(part_name, file, path.stat().st_size, _sha256(path), sealed))

        # The anchor first: it never runs ahead of the database copied after it, so the restored chain verifies.
        step("audit anchor")
        anchor_seq = None
        if inst.audit_anchor_file.exists():
            data = inst.audit_anchor_file.read_bytes()
            _write_new(work / "audit.anchor", data)
            add("audit_anchor", "audit.anchor")
            try:
                anchor_seq = json.loads(data).get("seq")
            except (ValueError, AttributeError):
                anchor_seq = None
        step("database")
        file = "database.sqlite" if inst.db.is_sqlite else "database.pgdump"
        try:
            target = snapshot(inst.db, work / file)
        except DatabaseBackupError as exc:
            raise BackupError(f"database: {exc}") from None
        add("database", file)
        step("keys")
        if not inst.keys.dir.is_dir():
            raise BackupError(f"keys: {inst.keys.dir} does not exist")
        _write_new(work / "keys.sealed", sealer.seal("keys", _tar_bytes(inst.keys.dir)))
        add("keys", "keys.sealed", sealed=True)
        step("configuration")
        if settings.config_file.exists():
            _write_new(work / "config.sealed", sealer.seal("config", settings.config_file.read_bytes()))
            add("config", "config.sealed", sealed=True)
        step("documents")
        _tar_dirs(work / "documents.tar", _document_dirs(settings))
        add("documents", "documents.tar")
        if media:
            step("recordings")
            _tar_dirs(work / "media.tar", _media_dirs(settings), skip=("recordings/safeyard",),
                      progress=media_progress)
            add("media", "media.tar")
        manifest: dict[str, Any] = {
            "format": FORMAT, "created_at": iso_utc(created), "kuzet_version": __version__,
            "schema_revision": current_revision(inst.db),
            "database": {"backend": target.backend, "schema": target.schema},
            "audit_anchor_seq": anchor_seq, "media": media, "kdf": sealer.kdf.as_dict(),
            "parts": [p.as_dict() for p in parts]}
        manifest["seal"] = sealer.mac(_canonical(manifest))
        _write_new(work / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupResult(final, manifest)


def read_manifest(backup: Path) -> dict[str, Any]:
    path = backup / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{backup} is not a Kuzet backup: it has no {MANIFEST}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupError(f"{MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{MANIFEST}: not a {FORMAT} manifest")
    if not isinstance(manifest.get("parts"), list):
        raise BackupError(f"{MANIFEST}: no list of parts")
    return manifest


def check_backup(backup: Path, passphrase: str, progress: Progress | None = None) -> tuple[dict[str, Any], Sealer]:
    """Every part against its SHA-256, the keys against the passphrase, the manifest against its seal; BackupError
    naming the first part that fails."""
    step = progress or (lambda _name: None)
    manifest = read_manifest(backup)
    parts = {p.get("name"): p for p in manifest["parts"] if isinstance(p, dict)}
    for part in manifest["parts"]:
        name, file = part.get("name"), str(part.get("file", ""))
        step(f"checking {name}")
        path = backup / file
        if "/" in file or file.startswith(".") or not path.is_file():
            raise BackupError(f"part {name} ({file}) is missing from the backup")
        got = _sha256(path)
        if got != part.get("sha256"):
            raise BackupError(f"part {name} ({file}) fails its SHA-256 check: the manifest says "
                              f"{part.get('sha256')}, the file has {got}; this backup was altered or damaged")
    if "keys" not in parts or "database" not in parts:
        raise BackupError(f"{MANIFEST} lists no {'keys' if 'keys' not in parts else 'database'} part")
    step("passphrase")
    try:
        sealer = Sealer(passphrase, Kdf.from_dict(manifest.get("kdf")))
        sealer.open("keys", (backup / parts["keys"]["file"]).read_bytes())
    except SealError as exc:
        raise BackupError(f"part keys: {exc}") from None
    if not sealer.mac_ok(_canonical(manifest), manifest.get("seal", "")):
        raise BackupError(f"{MANIFEST} was altered: its seal does not verify with this passphrase")
    return manifest, sealer


def _empty_dir(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def restore_backup(backup: Path, data_dir: Path, passphrase: str, *, database_url: str | None = None,
                   progress: Progress | None = None) -> RestoreResult:
    """Put a backup back onto an empty data directory (and an empty database), then bring the schema to head.

    ``database_url`` is where the database goes (else the restored configuration's, else SQLite in ``data_dir``).
    Nothing is written before every check passed; a failure halfway removes what this restore wrote.
    """
    from kuzet.config import load_settings
    from kuzet.store.schema import current_revision, upgrade

    step = progress or (lambda _name: None)
    manifest, sealer = check_backup(backup, passphrase, progress)
    parts = {p["name"]: p for p in manifest["parts"]}
    data_dir = data_dir.expanduser().resolve()
    if not _empty_dir(data_dir):
        raise BackupError(f"{data_dir} is not empty: restore only onto an empty (or new) data directory")
    config = sealer.open("config", (backup / parts["config"]["file"]).read_bytes()) if "config" in parts else None
    keys_tar = sealer.open("keys", (backup / parts["keys"]["file"]).read_bytes())
    created_dir = make_private_dir(data_dir)
    written_db: list[Path] = []  # the SQLite file once this restore created it (removed again if a later step fails)
    try:
        if config is not None:
            _write_new(data_dir / "kuzet.toml", config)
        environ = dict(os.environ)
        environ.pop("KUZET_CONFIG", None)
        if database_url:
            environ["KUZET_DATABASE_URL"] = database_url
        try:
            settings = load_settings(data_dir, environ)
        except Exception as exc:  # noqa: BLE001 - a ConfigError or a bad value: named, nothing kept
            raise BackupError(f"part config: {exc}") from None
        target = Target(manifest["database"]["backend"], manifest["database"].get("schema"))
        db = Database(settings.db_url)
        try:
            from kuzet.services.backup.database import ensure_empty

            ensure_empty(db, target)
            restored = []
            step("keys")
            make_private_dir(settings.keys_path)
            _extract(keys_tar, settings.keys_path)
            restored.append("keys")
            if config is not None:
                restored.append("config")
            if "audit_anchor" in parts:
                step("audit anchor")
                shutil.copyfile(backup / parts["audit_anchor"]["file"], data_dir / "audit.anchor")
                os.chmod(data_dir / "audit.anchor", 0o600)
                restored.append("audit_anchor")
            if "documents" in parts:
                step("documents")
                _unpack(backup / parts["documents"]["file"], data_dir, _document_dirs(settings))
                restored.append("documents")
            if "media" in parts:
                step("recordings")
                _unpack(backup / parts["media"]["file"], data_dir, _media_dirs(settings))
                restored.append("media")
            settings.recordings_path.mkdir(parents=True, exist_ok=True)
            step("database")
            if db.is_sqlite:
                written_db.append(sqlite_file(db.url))
            put_back(db, target, backup / parts["database"]["file"])
            restored.append("database")
            step("schema")
            before = current_revision(db)
            upgrade(db)
            after = current_revision(db)
        finally:
            db.engine.dispose()
    except DatabaseBackupError as exc:
        _undo(data_dir, created_dir, written_db)
        raise BackupError(f"part database: {exc}") from None
    except BaseException:
        _undo(data_dir, created_dir, written_db)
        raise
    return RestoreResult(data_dir, manifest, before, after, restored)


def _undo(data_dir: Path, created_dir: bool, db_files: list[Path]) -> None:
    """Remove what a failed restore wrote (the data directory was empty or new before it)."""
    if data_dir.is_dir():
        for child in data_dir.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        if created_dir:
            data_dir.rmdir()
    for db_file in db_files:
        for suffix in ("", "-wal", "-shm"):
            db_file.with_name(db_file.name + suffix).unlink(missing_ok=True)


def backups_in(folder: Path) -> list[Path]:
    """Complete backups in ``folder``, oldest first (their names sort by time)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and p.name.startswith(PREFIX) and not p.name.endswith(PARTIAL)
                  and (p / MANIFEST).is_file())


def rotate(folder: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` complete backups (and leftovers of interrupted ones); return the removed."""
    removed = []
    complete = backups_in(folder)
    for old in complete[:-keep] if keep > 0 else complete:
        shutil.rmtree(old)
        removed.append(old)
    if folder.is_dir():  # interrupted backups, a day old (a younger one may still be being written)
        day_ago = datetime.now(UTC).timestamp() - 86400
        for leftover in folder.glob(PREFIX + "*" + PARTIAL):
            if leftover.stat().st_mtime < day_ago:
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(leftover)
    return removed


def newest_backup_time(folder: Path) -> datetime | None:
    """When the newest complete backup in ``folder`` was taken (from its manifest)."""
    for path in reversed(backups_in(folder)):
        try:
            created = read_manifest(path)["created_at"]
            return datetime.fromisoformat(created.replace("Z", "+00:00"))
        except (BackupError, KeyError, ValueError, TypeError):
            continue
    return None
