"""What ``kuzet cluster status`` shows: the recorder nodes, the cameras each holds, how old their leases are and what
waits for upload on each, and the analysis nodes with the cameras each analyses, read from the node and lease
tables of both purposes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sqlalchemy import func, select

from kuzet.services.cluster.leases import ANALYSE, RECORD, LeasePurpose, database_now
from kuzet.store.db import Database
from kuzet.store.models import Camera


@dataclass
class NodeStatus:
    node: str
    host: str
    pid: int
    alive: bool
    heartbeat_age_seconds: float
    cameras: int  # leases held now (not expired)
    oldest_renewal_seconds: float  # the longest any of its leases went unrenewed
    upload_backlog_files: int
    upload_backlog_bytes: int
    camera_ids: list[int] = field(default_factory=list)
    advertise_url: str | None = None  # where the other nodes pass it live requests


@dataclass
class ClusterStatus:
    nodes: list[NodeStatus]
    cameras_enabled: int
    cameras_unheld: int  # enabled cameras no live lease covers (moving, or too few recorders)
    analysis_nodes: list[NodeStatus] = field(default_factory=list)  # nodes running the analysis service
    cameras_unanalysed: int = 0  # enabled cameras no live analysis lease covers (only counted with analysis nodes)

    def as_dict(self) -> dict:
        return asdict(self)


def cluster_status(db: Database, lease_seconds: float) -> ClusterStatus:
    nodes, total, unheld = _purpose_status(db, lease_seconds, RECORD)
    analysis, _total, unanalysed = _purpose_status(db, lease_seconds, ANALYSE)
    return ClusterStatus(nodes, total, unheld, analysis, unanalysed if analysis else 0)


def _purpose_status(db: Database, lease_seconds: float, purpose: LeasePurpose) -> tuple[list[NodeStatus], int, int]:
    Node, Lease = purpose.nodes, purpose.leases  # noqa: N806 - the purpose's tables
    with db.session() as session:
        now = database_now(session)
        nodes = list(session.scalars(select(Node).order_by(Node.node)))
        leases = list(session.scalars(select(Lease).where(Lease.expires_at > now)))
        enabled = set(session.scalars(select(Camera.id).where(Camera.enabled.is_(True))))
        total = session.scalar(select(func.count()).select_from(Camera).where(Camera.enabled.is_(True))) or 0
    by_node: dict[str, list] = {}
    for lease in leases:
        by_node.setdefault(lease.node or "", []).append(lease)
    out = []
    for n in nodes:
        held = by_node.get(n.node, [])
        age = (now - n.heartbeat_at).total_seconds()
        out.append(NodeStatus(
            node=n.node, host=n.host, pid=n.pid, alive=age < lease_seconds, heartbeat_age_seconds=round(age, 1),
            cameras=len(held),
            oldest_renewal_seconds=round(max(((now - (x.renewed_at or now)).total_seconds() for x in held),
                                             default=0.0), 1),
            upload_backlog_files=n.upload_backlog_files, upload_backlog_bytes=n.upload_backlog_bytes,
            camera_ids=sorted(x.camera_id for x in held), advertise_url=n.advertise_url))
    covered = {x.camera_id for x in leases}
    return out, total, len(enabled - covered)
