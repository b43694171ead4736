"""Camera leases in the database: one pass = heartbeat, renew what this node holds, take free cameras up to a fair
share, release what it was asked to give back. Each pass is one transaction.

Times are the database's (``now()`` on PostgreSQL; on SQLite, one box, this machine's clock). A take is a conditional
``UPDATE … WHERE expires_at <= :now`` that raises the camera's ``token`` by one: of two nodes racing for a camera the
row lock lets exactly one win, and the token is the fencing token the winner writes with every file.

The same book keeps leases for two purposes (``LeasePurpose``): recording (``RECORD``: recorder nodes) and analysis
(``ANALYSE``: nodes running the analysis service). Each purpose has its own node and lease tables, so a camera's
recording lease and its analysis lease are independent, and each fair share counts only the nodes of its purpose.
"""

from __future__ import annotations

import math
import os
import random
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from kuzet.store.db import Database, utcnow
from kuzet.store.models import Camera
from kuzet.store.models.cluster import AnalysisLease, AnalysisNode, CameraLease, RecorderNode
from kuzet.store.models.recording import Recording

FOREVER_DEAD = timedelta(hours=1)  # a node silent this long leaves the node table
EPOCH = datetime(1970, 1, 1, tzinfo=utcnow().tzinfo)


@dataclass(frozen=True)
class LeasePurpose:
    """What a lease is for: its tables, and whether a take closes the previous holder's open recording rows."""

    name: str  # record | analyse
    nodes: type[RecorderNode] | type[AnalysisNode]
    leases: type[CameraLease] | type[AnalysisLease]
    fences_recordings: bool


RECORD = LeasePurpose("record", RecorderNode, CameraLease, fences_recordings=True)
ANALYSE = LeasePurpose("analyse", AnalysisNode, AnalysisLease, fences_recordings=False)


def default_node() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Taken:
    camera_id: int
    token: int
    previous_node: str | None  # who held the camera before (None: nobody ever)


@dataclass
class LeasePass:
    now: datetime
    live_nodes: int
    cameras: int  # enabled cameras
    share: int  # the most this node should hold
    renewed: dict[int, int] = field(default_factory=dict)  # camera → token, still held
    taken: list[Taken] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)  # held before the pass, not any more
    not_enabled: list[int] = field(default_factory=list)  # held, but the camera is disabled or gone: give it back

    @property
    def held(self) -> dict[int, int]:
        return {**self.renewed, **{t.camera_id: t.token for t in self.taken}}


def database_now(session: Session) -> datetime:
    if session.get_bind().dialect.name == "postgresql":
        return session.scalar(select(func.now()))
    return utcnow()


def _ensure_rows(session: Session, camera_ids: list[int], table: type[CameraLease] | type[AnalysisLease]) -> None:
    """A free lease row for every enabled camera that has none (two nodes may insert at once: one wins)."""
    known = set(session.scalars(select(table.camera_id)))
    missing = [{"camera_id": c, "node": None, "token": 0, "expires_at": EPOCH} for c in camera_ids if c not in known]
    if not missing:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(table).values(missing).on_conflict_do_nothing(index_elements=["camera_id"]))


class LeaseBook:
    """The lease table of one purpose as one node sees it."""

    def __init__(self, db: Database, node: str, lease_seconds: float, *, host: str | None = None,
                 advertise_url: str | None = None, purpose: LeasePurpose = RECORD) -> None:
        self.db = db
        self.purpose = purpose
        self.advertise_url = advertise_url.rstrip("/") if advertise_url else None
        self.node = node
        self.lease = timedelta(seconds=lease_seconds)
        self.host = host or socket.gethostname()
        self.started_at = utcnow()

    def run_pass(self, held: dict[int, int], release: set[int] | None = None, *, take: bool = True,
                 backlog: tuple[int, int] = (0, 0)) -> LeasePass:
        """Heartbeat, give back ``release``, renew ``held`` (camera → token), take up to the fair share."""
        release = release or set()
        Lease, Node = self.purpose.leases, self.purpose.nodes  # noqa: N806 - the purpose's tables
        with self.db.session() as session:
            now = database_now(session)
            until = now + self.lease
            self._heartbeat(session, now, len(held), backlog)
            if release:
                session.execute(update(Lease).where(Lease.node == self.node, Lease.camera_id.in_(release))
                                .values(expires_at=now))
            rows = session.execute(update(Lease)
                                   .where(Lease.node == self.node, Lease.expires_at > now)
                                   .values(renewed_at=now, expires_at=until)
                                   .returning(Lease.camera_id, Lease.token)).all()
            renewed = {c: t for c, t in rows if held.get(c) == t}
            stray = [c for c, t in rows if held.get(c) != t]  # ours in the table but not recorded: give them back
            if stray:
                session.execute(update(Lease).where(Lease.node == self.node, Lease.camera_id.in_(stray))
                                .values(expires_at=now))
            live = session.scalar(select(func.count()).select_from(Node)
                                  .where(Node.heartbeat_at > now - self.lease)) or 1
            enabled = list(session.scalars(select(Camera.id).where(Camera.enabled.is_(True))))
            share = math.ceil(len(enabled) / max(live, 1))
            result = LeasePass(now, live, len(enabled), share, renewed,
                               lost=[c for c in held if c not in renewed and c not in release])
            on = set(enabled)
            result.not_enabled = [c for c in renewed if c not in on]
            if take and len(renewed) < share and enabled:
                _ensure_rows(session, enabled, Lease)
                free = session.execute(select(Lease.camera_id, Lease.node)
                                       .where(Lease.camera_id.in_(enabled), Lease.expires_at <= now)
                                       ).all()
                random.shuffle(free)  # nodes racing for the same cameras mostly pick different ones
                for camera_id, previous in free[:share - len(renewed)]:
                    token = session.scalar(update(Lease)
                                           .where(Lease.camera_id == camera_id, Lease.expires_at <= now)
                                           .values(node=self.node, token=Lease.token + 1, acquired_at=now,
                                                   renewed_at=now, expires_at=until)
                                           .returning(Lease.token))
                    if token is None:
                        continue  # another node was quicker
                    result.taken.append(Taken(camera_id, token, previous))
                    if not self.purpose.fences_recordings:
                        continue
                    # The previous holder's lease has ended: it writes nothing more, so its open files are closed.
                    session.execute(update(Recording).where(Recording.camera_id == camera_id,
                                                            Recording.state == "open",
                                                            (Recording.node.is_(None)) | (Recording.node != self.node))
                                    .values(state="closed"))
            session.execute(update(Node).where(Node.node == self.node).values(cameras_held=len(result.held)))
            session.execute(delete(Node).where(Node.heartbeat_at < now - FOREVER_DEAD))
        return result

    def _heartbeat(self, session: Session, now: datetime, held: int, backlog: tuple[int, int]) -> None:
        Node = self.purpose.nodes  # noqa: N806
        values = {"heartbeat_at": now, "cameras_held": held, "upload_backlog_files": backlog[0],
                  "upload_backlog_bytes": backlog[1], "advertise_url": self.advertise_url}
        if session.execute(update(Node).where(Node.node == self.node).values(**values)).rowcount:
            return
        session.add(Node(node=self.node, host=self.host, pid=os.getpid(), started_at=self.started_at, **values))
        session.flush()

    def leave(self, held: set[int]) -> None:
        """A clean stop: give every camera back at once and leave the node table."""
        Lease, Node = self.purpose.leases, self.purpose.nodes  # noqa: N806
        with self.db.session() as session:
            now = database_now(session)
            session.execute(update(Lease).where(Lease.node == self.node).values(expires_at=now))
            session.execute(delete(Node).where(Node.node == self.node))


def holder_url(db: Database, camera_id: int) -> tuple[str | None, str | None]:
    """(the node that holds the camera's lease now, the URL it advertises); (None, None) when nobody holds it."""
    with db.session() as session:
        now = database_now(session)
        row = session.execute(select(CameraLease.node, RecorderNode.advertise_url)
                              .join(RecorderNode, RecorderNode.node == CameraLease.node, isouter=True)
                              .where(CameraLease.camera_id == camera_id, CameraLease.expires_at > now)).first()
    return (row[0], row[1]) if row is not None else (None, None)
