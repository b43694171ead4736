"""Databases made by earlier releases' schemas, kept as SQL (one file per release, ``<revision>.sql``), for the upgrade
tests: the schema comes from the migrations up to that revision, the rows from the file.

Regenerate (or make the next release's) with::

    PYTHONPATH=src python -m tests.release_fixtures 0011_onboarding

It builds the demo city with every capability's demo data at the current head, migrates it *down* to the revision,
keeps a few rows of the big tables, fills every table still empty with one made-up row, and writes the rows as
INSERT statements both SQLite and PostgreSQL read (booleans TRUE/FALSE, times as UTC text, bytes as X'…').
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa

from kuzet.store.db import Database

HERE = Path(__file__).parent
KEEP_ROWS = {"offences": 40, "population": 8}  # big demo tables, trimmed (by id) to keep the file small


def fixture_path(revision: str) -> Path:
    return HERE / f"{revision}.sql"


def fixture_revision(path: Path) -> str:
    match = re.search(r"^-- revision: (\S+)$", path.read_text(encoding="utf-8"), re.M)
    assert match, f"{path} names no revision"
    return match.group(1)


def load(db: Database, path: Path) -> dict[str, int]:
    """Create the schema of the file's revision in the empty ``db`` and load the rows; rows per table."""
    from kuzet.store.schema import upgrade

    upgrade(db, fixture_revision(path))
    sql = path.read_text(encoding="utf-8")
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        if db.is_sqlite:
            raw.executescript("PRAGMA foreign_keys=OFF;" + sql + ";PRAGMA foreign_keys=ON;")
        else:
            sql = re.sub(r"X'([0-9A-Fa-f]*)'", r"'\\x\1'::bytea", sql)
            with raw.cursor() as cur:
                cur.execute("SET TIME ZONE 'UTC'")
                cur.execute(sql)
                for (table,) in cur.execute("SELECT table_name FROM information_schema.columns WHERE column_name = "
                                            "'id' AND table_schema = current_schema() AND data_type IN "
                                            "('integer', 'bigint', 'smallint')").fetchall():
                    cur.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                                f"coalesce((SELECT max(id) FROM \"{table}\"), 0) + 1, false) "
                                f"WHERE pg_get_serial_sequence('\"{table}\"', 'id') IS NOT NULL")
            raw.commit()
    return counts(db)


def counts(db: Database) -> dict[str, int]:
    meta = sa.MetaData()
    meta.reflect(db.engine)
    with db.engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in meta.sorted_tables if t.name != "alembic_version"}


def _literal(value: object, declared: str) -> str:
    if value is None:
        return "NULL"
    if "BOOL" in declared.upper():
        return "TRUE" if value else "FALSE"
    if isinstance(value, bytes):
        return f"X'{value.hex().upper()}'"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _made_up(column: sa.Column, refs: dict[str, object]) -> object:
    if column.name in refs:
        return refs[column.name]
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer | sa.Numeric | sa.Float):
        return 1
    if isinstance(kind, sa.DateTime):
        return datetime(2025, 6, 1, 10, 0)
    if isinstance(kind, sa.Date):
        return date(2025, 6, 1)
    if isinstance(kind, sa.JSON):
        return {}
    if isinstance(kind, sa.LargeBinary):
        return b"\x00fixture"
    length = getattr(kind, "length", None) or 40
    return f"fixture {column.name}"[:length]


def build(revision: str) -> Path:
    from alembic import command

    from kuzet.services.demo import seed_demo_city
    from kuzet.services.demo_extras import seed_capabilities
    from kuzet.store.schema import alembic_config
    from tests.conftest import make_installation

    work = Path(tempfile.mkdtemp(prefix="kuzet-fixture-"))
    inst, _ = make_installation("sqlite", work / "data")
    with inst.db.session() as session:
        city = seed_demo_city(session, inst.keys)
    seed_capabilities(inst, city)
    inst.close()
    plain = sa.create_engine(inst.db.url)  # without Kuzet's PRAGMA foreign_keys=ON: SQLite's batch downgrades
    cfg = alembic_config(inst.db.url)
    with plain.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
    meta = sa.MetaData()
    meta.reflect(plain)
    with plain.begin() as conn:
        for table, keep in KEEP_ROWS.items():
            if table in meta.tables:
                t = meta.tables[table]
                rowid = sa.literal_column("rowid")
                kept = sa.select(rowid).select_from(t).order_by(rowid).limit(keep).scalar_subquery()
                conn.execute(sa.delete(t).where(rowid.not_in(kept)))
        for table in meta.sorted_tables:
            if table.name == "alembic_version" or conn.execute(sa.select(sa.func.count()).select_from(table)).scalar():
                continue
            refs: dict[str, object] = {}
            for fk in table.foreign_keys:
                refs[fk.parent.name] = conn.execute(sa.select(fk.column).limit(1)).scalar()
            row = {c.name: _made_up(c, refs) for c in table.columns
                   if not (c.primary_key and isinstance(c.type, sa.Integer) and c.name not in refs)}
            conn.execute(sa.insert(table).values(**row))
    plain.dispose()
    raw = sqlite3.connect(work / "data" / "kuzet.db")
    lines = [f"-- Rows of a Kuzet database at schema revision {revision}, for tests/test_ops_upgrade.py.",
             "-- Made by: PYTHONPATH=src python -m tests.release_fixtures " + revision + " (see its docstring).",
             f"-- revision: {revision}"]
    for table in meta.sorted_tables:
        if table.name == "alembic_version":
            continue
        declared = {r[1]: r[2] for r in raw.execute(f'PRAGMA table_info("{table.name}")')}
        names = list(declared)
        rows = raw.execute(f'SELECT {", ".join(chr(34) + n + chr(34) for n in names)} FROM "{table.name}" '
                           f"ORDER BY 1").fetchall()
        assert rows, f"{table.name} is empty"
        cols = ", ".join(f'"{n}"' for n in names)
        for row in rows:
            values = ", ".join(_literal(v, declared[n]) for n, v in zip(names, row, strict=True))
            lines.append(f'INSERT INTO "{table.name}" ({cols}) VALUES ({values});')
    raw.close()
    out = fixture_path(revision)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out

