"""Viewing sessions: every view of video is an audit record, once per viewer and thing viewed, not once per request.

An HLS player asks for its playlist every couple of seconds and for each recorded file many times (byte ranges); one
audit record per request would drown the log, one per process (as before) would hide every viewer after the first.
A *viewing session* is one token (so one user, one device or one personal API token) watching one thing — a camera's
live stream, one recorded file — and it is audited when it starts. It ends after ``idle`` seconds without a request;
the next request starts, and audits, a new one. Tokens are kept only as their SHA-256.

A live session also has an end worth writing down: how long a camera was watched is the telecom's usage figure
("hours viewed", services/cloud/usage.py) and, for an investigation, how long someone looked. A session started with
a ``Viewing`` is handed back by ``ended()`` once it is over, and ``record_ended`` appends one ``viewing.ended`` audit
record with its start and end (a WebSocket viewer's end is known exactly, when the socket closes; an HLS viewer's is
the last request, found by the periodic sweep in ``services/watching/runtime.py``).

Sessions live in the memory of the API process that serves them: behind a load balancer a viewer moved to another
process starts a new (audited) session there, which errs on the side of more records, never fewer.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from kuzet.domain.audit import Action
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.store.db import utcnow

IDLE_SECONDS = 60.0
MAX_SESSIONS = 100_000
MAX_ENDED = 100_000  # ended sessions waiting for the sweep; beyond it the oldest are dropped (and logged as lost)


@dataclass(frozen=True)
class Viewing:
    """Who watches which camera's live video, and how: kept with a session so its end can be written down."""

    actor: Actor
    camera_id: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Open:
    first: float
    last: float
    started_at: datetime
    seen_at: datetime
    viewing: Viewing | None


@dataclass(frozen=True)
class EndedViewing:
    viewing: Viewing
    started_at: datetime
    ended_at: datetime


class ViewingSessions:
    def __init__(self, idle: float = IDLE_SECONDS, clock: Callable[[], float] = time.monotonic,
                 limit: int = MAX_SESSIONS, wall: Callable[[], datetime] = utcnow) -> None:
        self.idle = idle
        self.clock = clock
        self.wall = wall
        self.limit = limit
        self._open: OrderedDict[tuple, _Open] = OrderedDict()
        self._ended: list[EndedViewing] = []
        self._lock = threading.Lock()

    def starts(self, token: str, *what: Hashable, viewing: Viewing | None = None) -> bool:
        """Note a request by ``token`` for ``what``; True when it starts a new session (audit it). With ``viewing``,
        the session's end is handed back by ``ended()``."""
        key = (hashlib.sha256(token.encode("utf-8")).hexdigest(), *what)
        now, wall = self.clock(), self.wall()
        with self._lock:
            self._expire(now)
            current = self._open.pop(key, None)
            new = current is None
            if new:
                current = _Open(now, now, wall, wall, viewing)
            current.last, current.seen_at = now, wall
            self._open[key] = current
            while len(self._open) > self.limit:
                self._close(self._open.popitem(last=False)[1])
        return new

    def ended(self, everything: bool = False) -> list[EndedViewing]:
        """The sessions with a ``Viewing`` that are over (``everything``: end them all now, as at shutdown)."""
        with self._lock:
            self._expire(float("inf") if everything else self.clock())
            out, self._ended = self._ended, []
        return out

    def _expire(self, now: float) -> None:
        # The least recently seen are first: stop at the first still open.
        while self._open:
            key, oldest = next(iter(self._open.items()))
            if now - oldest.last <= self.idle:
                break
            del self._open[key]
            self._close(oldest)

    def _close(self, session: _Open) -> None:
        if session.viewing is not None:
            self._ended.append(EndedViewing(session.viewing, session.started_at, session.seen_at))
            del self._ended[:-MAX_ENDED]

    def __len__(self) -> int:
        return len(self._open)


def record_ended(session: Session, ended: EndedViewing) -> None:
    """One ``viewing.ended`` record: the viewer, the camera, when the viewing started and ended, and for how long."""
    seconds = max(0.0, (ended.ended_at - ended.started_at).total_seconds())
    audit.append(session, ended.viewing.actor, Action.VIEWING_ENDED, object_type="camera",
                 object_id=ended.viewing.camera_id, camera_id=ended.viewing.camera_id,
                 details={**ended.viewing.details, "start": ended.started_at.isoformat(),
                          "end": ended.ended_at.isoformat(), "seconds": round(seconds, 1)})
