"""A consistent copy of the metadata database while the server writes to it, and putting one back.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies every page inside one read transaction; in WAL
mode writers go on meanwhile, and the copy is the database as of the moment it began. PostgreSQL: ``pg_dump`` (custom
format) of the installation's schema, which runs in one repeatable-read transaction; ``pg_restore`` puts it back. The
client's major version must be at least the server's: Debian's ``postgresql-client-<major>`` (see the Makefile).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url, text

from kuzet.store.db import Database, sqlite_file


class DatabaseBackupError(Exception):
    """The database could not be copied or put back; the message says why."""


@dataclass(frozen=True)
class Target:
    """Where a database lives, as a backup names it."""

    backend: str  # "sqlite" or "postgresql"
    schema: str | None = None  # PostgreSQL: the schema holding Kuzet's tables


def backend_of(url: str) -> str:
    return "sqlite" if make_url(url).get_backend_name() == "sqlite" else "postgresql"


def _libpq_env(url: str) -> dict[str, str]:
    """libpq's environment for a SQLAlchemy URL: the password travels in PGPASSWORD, never on a command line."""
    parsed = make_url(url)
    env = dict(os.environ)
    for var, value in (("PGHOST", parsed.host), ("PGPORT", parsed.port), ("PGUSER", parsed.username),
                       ("PGPASSWORD", parsed.password), ("PGDATABASE", parsed.database)):
        if value is not None:
            env[var] = str(value)
    options = parsed.query.get("options")
    if options:
        env["PGOPTIONS"] = options if isinstance(options, str) else " ".join(options)
    return env


def _server_major(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000


def _client(tool: str, server_major: int) -> str:
    """``pg_dump``/``pg_restore`` of the server's major version (or newer) from Debian's per-version directories,
    else the one on PATH if its version is new enough."""
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), key=lambda p: -int(p.split("/")[-3])):
        if int(candidate.split("/")[-3]) >= server_major:
            return candidate
    found = shutil.which(tool)
    if found:
        out = subprocess.run([found, "--version"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"(\d+)(?:\.\d+)?", out)
        if match and int(match.group(1)) >= server_major:
            return found
    raise DatabaseBackupError(f"{tool} for PostgreSQL {server_major} is not installed: "
                              f"apt-get install postgresql-client-{server_major}")


def current_schema(db: Database) -> str | None:
    """The schema new tables would go to (the first of search_path), whether it exists yet or not."""
    with db.engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar()
        if schema:
            return schema
        path = conn.execute(text("SHOW search_path")).scalar_one()
    for entry in (e.strip().strip('"') for e in path.split(",")):
        if entry and entry != "$user":
            return entry
    return None


def snapshot(db: Database, out: Path) -> Target:
    """Write a consistent copy of ``db`` to ``out`` (owner-only)."""
    if db.is_sqlite:
        source_file = sqlite_file(db.url)
        if source_file is None or not source_file.exists():
            raise DatabaseBackupError(f"no SQLite database file at {db.url}")
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        source = sqlite3.connect(source_file, timeout=30)
        try:
            dest = sqlite3.connect(out)
            try:
                source.backup(dest)  # all pages in one step: one read transaction, one consistent moment
                if dest.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                    raise DatabaseBackupError("the copy of the SQLite database fails its integrity check")
            finally:
                dest.close()
        finally:
            source.close()
        return Target("sqlite")
    schema = current_schema(db)
    tool = _client("pg_dump", _server_major(db))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    command = [tool, "--format=custom", "--no-owner", "--no-privileges", "--file", str(out)]
    if schema:
        command += ["--schema", schema]
    done = subprocess.run(command, env=_libpq_env(db.url), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DatabaseBackupError(f"pg_dump failed: {done.stderr.strip()[-800:]}")
    return Target("postgresql", schema)


def ensure_empty(db: Database, target: Target) -> None:
    """Refuse to restore over data: the SQLite file must not exist, the PostgreSQL schema must hold no table."""
    if backend_of(db.url) != target.backend:
        raise DatabaseBackupError(f"the backup holds a {target.backend} database but the target is "
                                  f"{backend_of(db.url)}: restore onto the same kind of database")
    if db.is_sqlite:
        path = sqlite_file(db.url)
        if path is None:
            raise DatabaseBackupError("restore needs a SQLite database file, not an in-memory one")
        if path.exists() and path.stat().st_size > 0:
            raise DatabaseBackupError(f"{path} exists: restore only onto an empty data directory")
        return
    schema = current_schema(db)
    if schema != target.schema:
        raise DatabaseBackupError(
            f"the backup's tables are in schema {target.schema!r} but the target database URL would use "
            f"{schema!r}: point its search_path there (…?options=-csearch_path%3D{target.schema})")
    with db.engine.connect() as conn:
        tables = conn.execute(text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"),
                              {"s": schema}).scalar_one()
    if tables:
        raise DatabaseBackupError(f"schema {schema!r} of the target database holds {tables} tables: restore only "
                                  "into an empty database (or schema)")


def _list_without_schema(tool: str, dump: Path, schema: str | None, url: str) -> Path:
    """pg_restore's table of contents of ``dump`` without the creation of (and comment on) ``schema``, in a temporary
    file (the caller removes it)."""
    import tempfile

    listed = subprocess.run([tool, "--list", str(dump)], env=_libpq_env(url), capture_output=True, text=True,
                            check=False)
    if listed.returncode != 0:
        raise DatabaseBackupError(f"pg_restore --list failed: {listed.stderr.strip()[-800:]}")
    own = re.compile(rf"^\d+; \d+ \d+ (SCHEMA - {re.escape(schema or '')}|COMMENT - SCHEMA {re.escape(schema or '')}) ")
    kept = [line for line in listed.stdout.splitlines() if not own.match(line)]
    fd, name = tempfile.mkstemp(prefix="kuzet-restore-", suffix=".list")
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(kept) + "\n")
    return Path(name)


def put_back(db: Database, target: Target, source: Path) -> None:
    """Load a snapshot made by :func:`snapshot` into the (empty) database ``db``."""
    ensure_empty(db, target)
    if db.is_sqlite:
        path = sqlite_file(db.url)
        assert path is not None
        db.engine.dispose()
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as dst, source.open("rb") as src:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        return
    db.engine.dispose()
    tool = _client("pg_restore", _server_major(db))
    with db.engine.connect() as conn:
        exists = conn.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"),
                              {"s": target.schema}).scalar_one()
    command = [tool, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
               "--dbname", make_url(db.url).database or "postgres"]
    listing = _list_without_schema(tool, source, target.schema, db.url) if exists else None
    if listing is not None:  # the (empty) schema is there already — always so for "public": all but its creation
        command += ["--use-list", str(listing)]
    command.append(str(source))
    try:
        done = subprocess.run(command, env=_libpq_env(db.url), capture_output=True, text=True, check=False)
    finally:
        if listing is not None:
            listing.unlink(missing_ok=True)
    if done.returncode != 0:
        raise DatabaseBackupError(f"pg_restore failed: {done.stderr.strip()[-800:]}")
    db.engine.dispose()
