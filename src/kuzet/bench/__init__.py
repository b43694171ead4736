"""The harnesses of ``kuzet bench``: each builds what it measures (a city, cameras, viewers, load) and measures it
against a ceiling from the same run. They sit above the layers they drive (some serve the API app), so they do not
belong in ``kuzet.services``: one module per ``kuzet bench`` command (``api``, ``recording``, ``storage``,
``tiers``, ``watching``, ``alarms``, ``motion``, ``crime``, ``billing``, ``scale``, ``bodycam``, ``redaction``)."""

from __future__ import annotations

import uuid


def create_scratch_schema(database_url: str, prefix: str = "kz_bench") -> tuple[str, str]:
    """A new, empty PostgreSQL schema for one benchmark run: (its name, ``database_url`` pointed at it)."""
    import sqlalchemy as sa

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    finally:
        engine.dispose()
    sep = "&" if "?" in database_url else "?"
    return schema, f"{database_url}{sep}options=-csearch_path%3D{schema}"


def drop_scratch_schema(database_url: str, schema: str) -> None:
    """Drop what ``create_scratch_schema`` made, with everything in it."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        engine.dispose()
