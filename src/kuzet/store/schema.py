"""Bring a database to the newest schema with Alembic (``kuzet db upgrade``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from kuzet.store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    cfg = alembic_config(db.url)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


class SchemaError(Exception):
    """The database's schema is one this version of Kuzet cannot (or will not) move to or from."""


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config("sqlite://")).walk_revisions()}


def check_not_newer(db: Database) -> str | None:
    """The database's revision; SchemaError if a newer Kuzet made it (this one knows no such revision)."""
    from kuzet import __version__

    revision = current_revision(db)
    if revision is not None and revision not in known_revisions():
        raise SchemaError(
            f"the database is at schema revision {revision}, which Kuzet {__version__} does not know: a newer "
            "version upgraded it. Kuzet never migrates a database down (the newer schema's data would be lost). "
            "Run the newer version again, or restore the backup taken before that upgrade (`kuzet restore`).")
    return revision


DOWNGRADE_REFUSED = (
    "Kuzet does not migrate databases down: a downgrade drops the columns and tables later versions added, and the "
    "data in them (subscribers, agreements, storage tiers, …) with them. To go back, restore the backup `kuzet db "
    "upgrade` took before the upgrade (`kuzet restore BACKUP --data NEW_DIR`) and run the older version on it.")
