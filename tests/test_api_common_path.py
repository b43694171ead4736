"""What every request of the API pays (issue 16): database connections kept open for the worker threads instead of
opened and closed per request, the start-up's objects out of the collector's sight, a route's thread as many as
the pool's connections."""

from __future__ import annotations

import gc
import threading

import anyio.to_thread
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from kuzet.api.app import create_app
from kuzet.installation import Installation
from kuzet.store.db import POOL_SIZE


def test_the_pool_keeps_a_connection_for_every_worker_thread(inst: Installation) -> None:
    """POOL_SIZE sessions at once, twice: the second round opens no connection (with SQLAlchemy's default pool of 5,
    every session beyond the fifth opened one and closed it again, each time)."""
    opened = []
    event.listen(inst.db.engine, "connect", lambda *_args: opened.append(1))
    inst.db.engine.dispose()  # start from an empty pool
    all_in = threading.Barrier(POOL_SIZE)

    def one() -> None:
        with inst.db.session(readonly=True) as session:
            all_in.wait(timeout=30)  # every thread holds a connection at the same time
            session.execute(text("SELECT 1"))

    def round_of_sessions() -> None:
        threads = [threading.Thread(target=one) for _ in range(POOL_SIZE)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)

    round_of_sessions()
    first = len(opened)
    assert first == POOL_SIZE
    round_of_sessions()
    assert len(opened) == first  # all kept, none opened again


def test_the_served_app_freezes_its_start_up_and_sizes_its_threads_to_the_pool(inst: Installation) -> None:
    app = create_app(inst)

    @app.get("/threads")
    async def threads() -> dict:
        return {"tokens": anyio.to_thread.current_default_thread_limiter().total_tokens}

    with TestClient(app) as client:
        assert client.get("/threads").json() == {"tokens": POOL_SIZE}
        assert gc.get_freeze_count() > 0
