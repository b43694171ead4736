"""Upgrades tested on data (issue 17): the previous release's database (tests/release_fixtures/<revision>.sql, rows in
every table) migrates to the current head with every row intact, on SQLite and PostgreSQL; `kuzet db upgrade` takes a
backup first unless --no-backup; downgrades, and databases made by a newer Kuzet, are refused with the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from kuzet.cli.main import app as cli_app
from kuzet.services import audit
from kuzet.services.backup import backups_in
from kuzet.services.keys import Keyring
from kuzet.store.db import Database
from kuzet.store.schema import current_revision, head_revision, upgrade
from tests.conftest import PostgresSchema, _unavailable
from tests.release_fixtures import HERE, counts, fixture_revision, load

FIXTURES = sorted(HERE.glob("*.sql"))


@pytest.fixture
def empty_db(backend: str, tmp_path: Path) -> Iterator[Database]:
    schema = None
    if backend == "postgresql":
        try:
            schema = PostgresSchema()
        except Exception as exc:  # noqa: BLE001
            _unavailable("PostgreSQL", exc)
        db = Database(schema.url)
    else:
        (tmp_path / "data").mkdir()
        db = Database(f"sqlite:///{tmp_path / 'data' / 'kuzet.db'}")
    yield db
    db.dispose()
    if schema:
        schema.drop()


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat() if value.tzinfo is None else value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def _rows(db: Database) -> dict[str, dict[str, list[tuple]]]:
    """Every table's rows, column by column (so columns added later can be left out of the comparison)."""
    meta = sa.MetaData()
    meta.reflect(db.engine)
    out: dict[str, dict[str, list]] = {}
    with db.engine.connect() as conn:
        for table in meta.sorted_tables:
            if table.name == "alembic_version":
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            rows = conn.execute(sa.select(table).order_by(*order)).mappings().all()
            out[table.name] = {c.name: [_plain(r[c.name]) for r in rows] for c in table.columns}
    return out


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_previous_release_upgrades_with_rows_intact(empty_db: Database, fixture: Path) -> None:
    loaded = load(empty_db, fixture)
    assert current_revision(empty_db) == fixture_revision(fixture)
    assert loaded and all(n > 0 for n in loaded.values()), [t for t, n in loaded.items() if not n]
    before = _rows(empty_db)
    upgrade(empty_db)
    assert current_revision(empty_db) == head_revision()
    after = _rows(empty_db)
    for table, columns in before.items():
        assert table in after, f"table {table} was dropped by the upgrade"
        for column, values in columns.items():
            if column in after[table]:
                assert after[table][column] == values, f"{table}.{column} changed in the upgrade"
    # the audit chain's hashes cover every record's content: the chain still verifies after the migrations
    result = audit.verify(empty_db)
    assert result.ok and result.checked == loaded["audit_log"], result
    # and the upgraded database takes new rows (PostgreSQL's sequences continue after the loaded ids)
    with empty_db.session() as session:
        from kuzet.services.audit import SYSTEM
        from kuzet.services.places import create_place

        assert create_place(session, SYSTEM, "district", "После обновления").id > 0
    assert counts(empty_db)["places"] == loaded["places"] + 1


def _old_installation(tmp_path: Path, backend: str, empty_db: Database) -> dict[str, str]:
    """A data directory with keys and a starter config, its database at the previous release's schema."""
    from kuzet.config import STARTER_CONFIG
    from kuzet.services.safeyard.vault import Vault

    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "kuzet.toml").write_text(STARTER_CONFIG)
    Keyring(data / "keys").ensure()
    Vault(data / "keys").ensure()
    load(empty_db, FIXTURES[-1])
    env = {"KUZET_DATA_DIR": str(data)}
    if backend == "postgresql":
        env["KUZET_DATABASE_URL"] = empty_db.url
    return env


def test_db_upgrade_takes_a_backup_first(empty_db: Database, backend: str, tmp_path: Path) -> None:
    env = _old_installation(tmp_path, backend, empty_db)
    runner = CliRunner()
    refused = runner.invoke(cli_app, ["db", "upgrade"], env=env)
    assert refused.exit_code == 1 and "--backup-dir" in refused.output
    assert current_revision(empty_db) == FIXTURES[-1].stem
    env["KUZET_BACKUP_PASSPHRASE"] = "before the upgrade, 2026"
    done = runner.invoke(cli_app, ["db", "upgrade", "--backup-dir", str(tmp_path / "b"), "--json"], env=env)
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert out["before"] == FIXTURES[-1].stem and out["after"] == head_revision()
    (backup,) = backups_in(tmp_path / "b")
    assert out["backup"] == str(backup)
    assert json.loads((backup / "manifest.json").read_text())["schema_revision"] == FIXTURES[-1].stem
    again = runner.invoke(cli_app, ["db", "upgrade", "--json"], env=env)  # at head: nothing to back up
    assert again.exit_code == 0 and json.loads(again.stdout)["backup"] is None


def test_no_backup_and_downgrades_refused(empty_db: Database, backend: str, tmp_path: Path) -> None:
    env = _old_installation(tmp_path, backend, empty_db)
    runner = CliRunner()
    done = runner.invoke(cli_app, ["db", "upgrade", "--no-backup"], env=env)
    assert done.exit_code == 0, done.output
    refused = runner.invoke(cli_app, ["db", "downgrade", FIXTURES[-1].stem], env=env)
    assert refused.exit_code == 1 and "does not migrate databases down" in " ".join(refused.output.split())
    assert current_revision(empty_db) == head_revision()
    # a database a newer Kuzet upgraded: this version neither serves nor "upgrades" it
    with empty_db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099_future'"))
    for command in (["db", "upgrade", "--no-backup"], ["serve"]):
        result = runner.invoke(cli_app, command, env=env)
        said = " ".join(result.output.split())
        assert result.exit_code == 1 and "0099_future" in said and "newer" in said, said
