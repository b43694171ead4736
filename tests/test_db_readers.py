"""Read-only sessions (issue 16): on SQLite they begin DEFERRED, so WAL readers run side by side and beside a writer
that holds the lock, while writing sessions still take the lock up front (``BEGIN IMMEDIATE``) and queue. Real
threads on the installation's real database file; the same sessions on PostgreSQL, where nothing changes.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.audit import SYSTEM
from kuzet.services.places import create_place
from kuzet.store.models import ApiToken, Place

WAIT = 60  # seconds: a bound against a hung test, never a measured time


def _places(session) -> int:  # noqa: ANN001
    return session.scalar(select(func.count()).select_from(Place)) or 0


def _run(target, *args) -> tuple[threading.Thread, list[BaseException]]:  # noqa: ANN001
    errors: list[BaseException] = []

    def body() -> None:
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, errors


def test_two_readers_run_at_once_while_a_writer_holds_the_lock(inst: Installation) -> None:
    with inst.db.session() as session:
        create_place(session, SYSTEM, "district", "Before")
    holding, release = threading.Event(), threading.Event()
    both_inside = threading.Barrier(2, timeout=WAIT)
    seen: list[tuple[int, int]] = []
    second_writer_done = threading.Event()

    def writer() -> None:
        with inst.db.session() as session:
            create_place(session, SYSTEM, "district", "Uncommitted")
            session.flush()  # the row is written: on SQLite the writer now holds the database's write lock
            holding.set()
            assert release.wait(WAIT)

    def reader() -> None:
        with inst.db.session(readonly=True) as session:
            first = _places(session)
            both_inside.wait()  # both readers are inside their transactions at the same moment
            seen.append((first, _places(session)))

    def second_writer() -> None:
        with inst.db.session() as session:
            create_place(session, SYSTEM, "district", "Queued")
        second_writer_done.set()

    w, w_errors = _run(writer)
    assert holding.wait(WAIT)
    queued, q_errors = _run(second_writer)
    readers = [_run(reader) for _ in range(2)]
    for thread, _ in readers:
        thread.join(WAIT)
    assert [e for _, errors in readers for e in errors] == []
    assert not release.is_set(), "the readers finished while the writer still held its transaction"
    assert seen == [(1, 1), (1, 1)]  # neither saw the uncommitted row
    if inst.db.is_sqlite:
        # a writing session queues behind the lock holder (BEGIN IMMEDIATE waits; it cannot have run yet)
        assert not second_writer_done.is_set()
    release.set()
    w.join(WAIT)
    queued.join(WAIT)
    assert w_errors == [] and q_errors == [] and second_writer_done.is_set()
    with inst.db.session(readonly=True) as session:
        assert _places(session) == 3


def test_how_sessions_begin(inst: Installation) -> None:
    """SQLite: writing sessions BEGIN IMMEDIATE, read-only ones a deferred BEGIN under ``query_only``; PostgreSQL:
    the same statements for both."""
    statements: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        statements.append(statement)

    event.listen(inst.db.engine, "before_cursor_execute", note)
    try:
        with inst.db.session() as session:
            _places(session)
        writing = list(statements)
        statements.clear()
        with inst.db.session(readonly=True) as session:
            _places(session)
        reading = list(statements)
    finally:
        event.remove(inst.db.engine, "before_cursor_execute", note)
    if inst.db.is_sqlite:
        assert "BEGIN IMMEDIATE" in writing and "BEGIN" not in writing
        assert "BEGIN" in reading and "BEGIN IMMEDIATE" not in reading
    else:
        assert writing == reading


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_write_in_a_read_only_session_fails_at_once_and_the_connection_writes_again(inst: Installation) -> None:
    with pytest.raises(OperationalError, match="readonly"):
        with inst.db.session(readonly=True) as session:
            create_place(session, SYSTEM, "district", "Never")
            session.flush()
    with inst.db.session() as session:  # the same pooled connection, back in writing mode
        create_place(session, SYSTEM, "district", "Written")
    with inst.db.reader() as session:
        assert session.scalars(select(Place.name)).all() == ["Written"]


def test_signing_in_reads_and_notes_the_tokens_use_once_a_minute(inst: Installation) -> None:
    with inst.db.session() as session:
        user = accounts.create_user(session, SYSTEM, "reader", "a-long-enough-password", "resident")
        token = accounts.create_personal_token(session, user, "reading").token
    with inst.db.session() as session:
        for rec in session.scalars(select(ApiToken)):
            rec.last_used_at = None
    assert accounts.authenticate_reading(inst.db, token).username == "reader"
    with inst.db.session(readonly=True) as session:
        first = session.scalar(select(ApiToken.last_used_at))
    assert first is not None
    assert accounts.authenticate_reading(inst.db, token).username == "reader"
    with inst.db.session(readonly=True) as session:
        assert session.scalar(select(ApiToken.last_used_at)) == first  # not written again within the minute
    assert accounts.authenticate_reading(inst.db, "not-a-token") is None
