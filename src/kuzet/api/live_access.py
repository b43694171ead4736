"""Access that is checked again while a stream is open.

A WebSocket (live video, the alarm queue) is authorised when it opens, but it may stay open for hours. ``AccessWatch``
checks again every ``period`` seconds — the token still valid (not logged out, not expired, the account active) and the
right still held (the grant not revoked or expired) — and ``guarded`` ends the stream within that period when the
answer turns to no, telling the client why before closing with code 4403.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import WebSocket
from sqlalchemy.orm import Session

from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.store.models import User

PERIOD = 2.0  # seconds between checks: a revoked grant or a logout ends a stream within this
CLOSE_ACCESS_ENDED = 4403


class AccessWatch:
    """``check(session, user)`` answers whether the stream may go on; it runs in a worker thread."""

    def __init__(self, inst: Installation, token: str, check: Callable[[Session, User], bool],
                 period: float = PERIOD) -> None:
        self.inst = inst
        self.token = token
        self.check = check
        self.period = period
        self._checked_at = time.monotonic()
        self._allowed = True

    def check_now(self) -> bool:
        with self.inst.db.session() as session:
            user = accounts.authenticate(session, self.token)
            return user is not None and bool(self.check(session, user))

    async def allowed(self) -> bool:
        """The last answer, asked again when it is older than ``period``."""
        if time.monotonic() - self._checked_at >= self.period:
            self._checked_at = time.monotonic()
            try:
                self._allowed = await asyncio.to_thread(self.check_now)
            except Exception:  # noqa: BLE001 - a database outage keeps the last answer; the next check retries
                pass
        return self._allowed


async def guarded(websocket: WebSocket, watch: AccessWatch, stream: Coroutine[Any, Any, None]) -> bool:
    """Run ``stream`` until it ends or access ends; return False (after telling the client) when access ended."""
    task = asyncio.ensure_future(stream)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=watch.period)
            if task in done:
                task.result()
                return True
            if not await watch.allowed():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                with contextlib.suppress(Exception):
                    await websocket.send_text(json.dumps({
                        "type": "error", "code": "access_ended",
                        "message": "your access ended (grant revoked or expired, or signed out)"}))
                    await websocket.close(code=CLOSE_ACCESS_ENDED)
                return False
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
