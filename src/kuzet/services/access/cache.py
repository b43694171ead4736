"""The caller's grants, cached per caller between requests, dropped on any change to who holds what; and beside them
the holders of presented tokens (``TokenHolder``: which user a token signs in, until when), so that a request signs in
without a database session of its own.

A cached ``Reach`` is dropped:

- at once in this process when a transaction that changes a grant, a user (membership, role, activation), a place
  (its path) or a routing agreement commits (SQLAlchemy session events, so no service can forget to say so);
- in every other process of the installation when the bus message ``kuzet.access.changed`` arrives (published on
  such a commit by a process whose runtime runs a bus; ``watch_bus`` subscribes);
- at the next instant one of its grants starts or ends (``Reach.changes_after``): a grant is never used past its end;
- in every other process on the same machine at its next lookup: the committing process replaces the installation's
  stamp file (``<data>/access.changed``) and every lookup compares the file's identity (one ``stat``), so API worker
  processes, the recorder's process and CLI commands beside them agree even on the embedded in-process bus;
- at the latest ``MAX_AGE`` seconds after loading: the bound for a change made on another machine that has no bus
  shared with this one.

A token holder is dropped the same ways (a token's revocation, or any change to it but its last-use time, counts as a
change to who holds what), and at the token's expiry.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, sessionmaker

from kuzet.domain.access import Reach

log = logging.getLogger("kuzet.access")

SUBJECT = "kuzet.access.changed"
MAX_AGE = 5.0  # seconds
MAX_ENTRIES = 10_000


@dataclass
class TokenHolder:
    """What a valid token signs in, as cached: the token record's id, expiry and last use, and the user's columns
    (each request gets a detached ``User`` of its own built from them: ``user()``)."""

    token_id: int
    user_columns: dict[str, Any]
    expires_at: datetime | None
    last_used_at: datetime | None

    def user(self) -> Any:
        from sqlalchemy.orm import make_transient_to_detached

        from kuzet.store.models import User

        user = User(**self.user_columns)
        make_transient_to_detached(user)  # as if loaded by a session that has ended (session.merge() takes it)
        return user


class ReachCache:
    """Reaches by (user id, organisation id), and token holders by token digest, for one database."""

    def __init__(self, max_age: float = MAX_AGE, max_entries: int = MAX_ENTRIES, stamp: Path | None = None) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        self._entries: dict[tuple[int, int | None], tuple[Reach, float, datetime | None, int]] = {}
        self._tokens: dict[str, tuple[TokenHolder, float]] = {}
        self._lock = threading.Lock()
        self.generation = 0  # bumped by every invalidation: a reach loaded before one is never stored after it
        self.hits = self.misses = self.invalidations = 0
        self.on_change: Callable[[], None] | None = None  # set by the runtime: tell the other processes
        self.stamp = stamp  # replaced by any process of this machine that commits a change (see the module's doc)
        self._stamp_seen = self._stamp_now()

    def _stamp_now(self) -> tuple[int, int] | None:
        if self.stamp is None:
            return None
        try:
            st = os.stat(self.stamp)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns

    def mark_changed(self) -> None:
        """Tell the other processes of this machine: the stamp file is replaced (a new inode, so even two changes
        within the file system's timestamp granularity differ)."""
        if self.stamp is None or not self.stamp.parent.is_dir():
            return
        try:
            tmp = self.stamp.with_name(f".{self.stamp.name}.{os.getpid()}.{threading.get_ident()}")
            tmp.write_text(f"{time.time_ns()}\n")
            os.replace(tmp, self.stamp)
        except OSError:  # a read-only data directory: the others catch up within MAX_AGE
            log.warning("could not mark an access change in %s", self.stamp, exc_info=True)
            return
        with self._lock:
            self._stamp_seen = self._stamp_now()

    def _check_stamp(self) -> None:
        """(Under the lock.) Drop everything if another process of this machine changed who holds what."""
        if self.stamp is not None and (seen := self._stamp_now()) != self._stamp_seen:
            self._stamp_seen = seen
            self._entries.clear()
            self._tokens.clear()
            self.generation += 1
            self.invalidations += 1

    def get(self, key: tuple[int, int | None], now: datetime) -> Reach | None:
        with self._lock:
            self._check_stamp()
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            reach, loaded, expires, _gen = entry
            if time.monotonic() - loaded > self.max_age or (expires is not None and now >= expires):
                del self._entries[key]
                self.misses += 1
                return None
            self.hits += 1
            return reach

    def put(self, key: tuple[int, int | None], reach: Reach, now: datetime, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return  # something changed while it was loading: it may be stale already
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (reach, time.monotonic(), reach.changes_after(now), generation)

    def token(self, digest: str, now: datetime) -> TokenHolder | None:
        """The cached holder of the token with this digest, unless it expired or may be stale."""
        with self._lock:
            self._check_stamp()
            entry = self._tokens.get(digest)
            if entry is None:
                return None
            holder, loaded = entry
            if time.monotonic() - loaded > self.max_age or (holder.expires_at is not None and now >= holder.expires_at):
                del self._tokens[digest]
                return None
            return holder

    def put_token(self, digest: str, holder: TokenHolder, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return
            if len(self._tokens) >= self.max_entries:
                self._tokens.clear()
            self._tokens[digest] = (holder, time.monotonic())

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()
            self._tokens.clear()
            self.generation += 1
            self.invalidations += 1

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._entries), "tokens": len(self._tokens), "hits": self.hits, "misses": self.misses,
                "invalidations": self.invalidations}


_caches: WeakKeyDictionary[Engine, ReachCache] = WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_of(engine: Engine) -> ReachCache | None:
    """The cache of a database whose sessions are watched (``watch``); None for any other: no caching there."""
    with _caches_lock:
        return _caches.get(engine)


def _access_models() -> tuple[type, ...]:
    from kuzet.store.models import Grant, Place, User
    from kuzet.store.models.cloud import Agreement, AgreementTarget

    return (Grant, User, Place, Agreement, AgreementTarget)


FLAG = "kuzet.access.changed"


def changed_in(session: Session) -> bool:
    """Whether this session's transaction has changed who holds what (flushed or not yet): its own reads must see
    that, and what it reads must not be cached for others (it may still roll back)."""
    if session.info.get(FLAG):
        return True
    models = _access_models()
    return any(isinstance(o, models) for o in (*session.new, *session.dirty, *session.deleted))


def watch(sessions: sessionmaker, engine: Engine, stamp: Path | None = None) -> ReachCache:
    """Invalidate ``engine``'s cache when a transaction of ``sessions`` that changed who holds what commits; with
    ``stamp``, also tell (and hear) the other processes of this machine through that file."""
    with _caches_lock:
        cache = _caches.get(engine)
        if cache is not None:
            return cache
        cache = _caches[engine] = ReachCache(stamp=stamp)
    models = _access_models()
    flag = FLAG

    from kuzet.store.models import ApiToken

    def _touches(objects: Any) -> bool:
        return any(isinstance(o, models) for o in objects)

    def _token_changed(session: Session) -> bool:
        """A token revoked, deleted or changed in any way but its last-use time (noted once a minute per token:
        no reason to drop every cached grant)."""
        if any(isinstance(o, ApiToken) for o in session.deleted):
            return True
        for o in session.dirty:
            if isinstance(o, ApiToken):
                attrs = sa_inspect(o).attrs
                if any(attrs[key].history.has_changes() for key in attrs.keys() if key != "last_used_at"):
                    return True
        return False

    @event.listens_for(sessions, "after_flush")
    def _after_flush(session: Session, _ctx: Any) -> None:
        if _touches(session.new) or _touches(session.dirty) or _touches(session.deleted) or _token_changed(session):
            session.info[flag] = True

    @event.listens_for(sessions, "do_orm_execute")
    def _bulk(state: Any) -> None:
        if (state.is_update or state.is_delete) and state.bind_mapper is not None \
                and state.bind_mapper.class_ in (*models, ApiToken):
            state.session.info[flag] = True

    @event.listens_for(sessions, "after_commit")
    def _after_commit(session: Session) -> None:
        if session.info.pop(flag, False):
            cache.invalidate()
            cache.mark_changed()
            if cache.on_change is not None:
                try:
                    cache.on_change()
                except Exception:  # the other processes catch up within MAX_AGE
                    log.exception("could not announce an access change on the bus")

    @event.listens_for(sessions, "after_rollback")
    def _after_rollback(session: Session) -> None:
        session.info.pop(flag, None)

    return cache


async def watch_bus(cache: ReachCache, bus: Any, origin: str) -> Any:
    """Connect ``cache`` to the bus: announce this process's changes, drop the cache on anyone else's.
    Returns the subscription."""
    loop = asyncio.get_running_loop()

    def announce() -> None:
        asyncio.run_coroutine_threadsafe(bus.publish(SUBJECT, {"origin": origin}), loop)

    async def on_message(_subject: str, payload: dict[str, Any]) -> None:
        if payload.get("origin") != origin:
            cache.invalidate()

    cache.on_change = announce
    return await bus.subscribe(SUBJECT, on_message)


def reach_expiry(reach: Reach, now: datetime, max_age: float = MAX_AGE) -> datetime:
    """When a reach loaded at ``now`` is reloaded at the latest (for documentation and tests)."""
    bound = now + timedelta(seconds=max_age)
    nxt = reach.changes_after(now)
    return min(bound, nxt) if nxt else bound
