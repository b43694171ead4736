"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode and every writing transaction starts with ``BEGIN IMMEDIATE``: writers queue on the database
lock instead of failing halfway when two processes (the server and a CLI command) write at once. This is the recipe
from SQLAlchemy's pysqlite documentation ("Serializable isolation / Savepoints / Transactional DDL").

A read-only session (``Database.session(readonly=True)``, ``Database.reader``) starts with a plain (deferred)
``BEGIN`` under ``PRAGMA query_only``: WAL readers take no lock, so lists and details run side by side and beside a
writer holding the lock, and a write attempted in one fails at once ("attempt to write a readonly database") instead
of upgrading the read into a write (which SQLite may refuse with SQLITE_BUSY without waiting). On PostgreSQL the
flag changes nothing. docs/architecture.md says why a flag rather than upgrading deferred transactions on demand.

A new SQLite database file is created owner-only (0600) before SQLite opens it; SQLite gives its ``-wal`` and ``-shm``
files the mode of the database file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from weakref import WeakSet

from sqlalchemy import Engine, String, create_engine, event, make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.functions import FunctionElement

CONNECT_TIMEOUT = 5  # seconds to reach PostgreSQL
READONLY = "kuzet_readonly"  # execution option of the engine behind read-only sessions
# Connections a process keeps open (the API's worker threads are as many: kuzet.api.app.tune_serving_process), and
# the overflow beyond them for the services' own threads; 15 at most, as SQLAlchemy's defaults (5 + 10) allowed,
# but kept open instead of opened and closed per request (on SQLite each open also runs the pragmas below).
POOL_SIZE = 12
POOL_OVERFLOW = 3


def utcnow() -> datetime:
    """The recorder's and the server's clock: timezone-aware UTC."""
    return datetime.now(UTC)


def iso_utc(value: datetime) -> str:
    """``2026-01-31T22:00:00Z``: how times leave Kuzet in URLs, exports and messages."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other databases and for in-memory SQLite)."""
    parsed = make_url(url)
    if not parsed.get_backend_name() == "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:"):
        return None  # URI filenames: whoever wrote one chose the file and its mode
    return Path(parsed.database)


def _create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (SQLite treats an empty file as a new database)."""
    if not path.parent.is_dir():
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def unavailable(exc: BaseException) -> bool:
    """Whether a database error means the database is away for now — stopped, restarting, unreachable, or (SQLite)
    locked by another process beyond the busy timeout — rather than that the statement was wrong: worth trying the
    same work again later."""
    import sqlite3

    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    orig = getattr(exc, "orig", None)
    if isinstance(orig, sqlite3.Error):  # SQLite also reports bad SQL as OperationalError
        text = str(orig).lower()
        return any(s in text for s in ("locked", "busy", "unable to open", "disk i/o"))
    return True


def make_engine(url: str, **kwargs) -> Engine:
    if make_url(url).database not in (None, "", ":memory:"):  # an in-memory SQLite database has a pool of its own
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", POOL_OVERFLOW)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        db_file = sqlite_file(url)

        @event.listens_for(engine, "do_connect")
        def _private_file(_dialect, _record, _cargs, _cparams):  # noqa: ANN001, ANN202
            if db_file is not None:
                _create_private(db_file)
            return None  # SQLite opens it as usual

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            readonly = bool(conn.get_execution_options().get(READONLY))
            if conn.info.get(READONLY, False) != readonly:  # the pooled connection's mode, switched only on change
                conn.exec_driver_sql(f"PRAGMA query_only={'ON' if readonly else 'OFF'}")
                conn.info[READONLY] = readonly
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    # A connection found dead (the server restarted) is replaced before use instead of failing the request; a server
    # that does not answer at all (host down, network cut) fails a connect in seconds instead of the TCP timeout.
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", CONNECT_TIMEOUT)
    return create_engine(url, **kwargs)


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, **engine_kwargs) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises.

        ``readonly``: the block only reads. On SQLite it then waits for no lock and no one waits for it; a write in
        it fails (see the module's docstring). Whatever writes — an audit record of a view, a token's last use — needs
        a session without the flag."""
        with self.sessions() as session, session.begin():
            if readonly:  # the option reaches the SQLite "begin" hook: set before the connection's BEGIN
                session.connection(execution_options={READONLY: True})
            yield session

    def reader(self) -> AbstractContextManager[Session]:
        """``session(readonly=True)``."""
        return self.session(readonly=True)

    def dispose(self) -> None:
        self.engine.dispose()


class EventLoopBlocked(RuntimeError):
    """A database call on the thread of a running asyncio event loop (see ``forbid_on_event_loop``)."""


_serving_loops: WeakSet = WeakSet()


def serving_loop(loop: object) -> None:
    """Note the event loop the HTTP server (API, console, WebSockets, the runtime's services) runs on."""
    _serving_loops.add(loop)


def on_serving_loop() -> bool:
    """Whether this thread runs the HTTP server's event loop now (see ``serving_loop``)."""
    import asyncio

    try:
        return asyncio.get_running_loop() in _serving_loops
    except RuntimeError:
        return False


def forbid_on_event_loop(engine: Engine, *, any_loop: bool = False) -> None:
    """Make every statement on ``engine`` fail when it runs on the thread of the server's running event loop (of any
    running loop with ``any_loop``).

    One slow query, or one SQLite writer waiting for the lock, on the loop stalls every live viewer and alarm push of
    the process; async routes and services hand database work to a thread (``run_in_threadpool``,
    ``asyncio.to_thread``) and plain ``def`` routes run in FastAPI's pool. The test suite turns this on for every
    installation it makes (tests/conftest.py), so a route that forgets fails its tests; a test's own ``asyncio.run``
    scenario is not the server and may set up rows as it likes."""
    import asyncio

    @event.listens_for(engine, "before_cursor_execute")
    def _not_on_the_loop(_conn, _cursor, statement, _params, _context, _many):  # noqa: ANN001, ANN202
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if not any_loop and loop not in _serving_loops:
            return
        raise EventLoopBlocked(f"database call on the event loop's thread: {statement[:80]!r} "
                               "(run it in a thread: run_in_threadpool / asyncio.to_thread, or make the route def)")


def load_by_ids(session: Session, model: type, ids: Iterable[int | None]) -> dict[int, object]:
    """Rows of ``model`` by id in one statement. They stay in the session's identity map (held by the session until
    it ends: the map itself holds objects weakly), so a later ``session.get(model, id)`` for any of them runs no SQL:
    how a page of objects gets its related objects without a query per row."""
    from sqlalchemy import inspect, select
    from sqlalchemy.orm.util import identity_key

    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows, missing = {}, []
    for i in wanted:  # rows this session holds already, unexpired, are not read again
        held = session.identity_map.get(identity_key(model, i))
        if held is not None and not inspect(held).expired_attributes:
            rows[i] = held
        else:
            missing.append(i)
    if missing:
        loaded = {row.id: row for row in session.scalars(select(model).where(model.id.in_(missing)))}
        session.info.setdefault("kuzet.loaded", []).extend(loaded.values())
        rows.update(loaded)
    return rows


class by_bytes(FunctionElement):  # noqa: N801 - reads like the SQL function it stands for
    """A text column compared byte by byte: as it is on SQLite; ``COLLATE "C"`` on PostgreSQL, whatever the
    database's collation (an index ``ix_places_path_bytes`` on ``path COLLATE "C"`` serves it there)."""

    inherit_cache = True
    type = String()


@compiles(by_bytes)
def _by_bytes_default(element: by_bytes, compiler, **kw) -> str:  # noqa: ANN001
    return compiler.process(element.clauses, **kw)


@compiles(by_bytes, "postgresql")
def _by_bytes_postgresql(element: by_bytes, compiler, **kw) -> str:  # noqa: ANN001
    return f'({compiler.process(element.clauses, **kw)} COLLATE "C")'
