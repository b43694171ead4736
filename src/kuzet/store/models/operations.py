"""Tables of the operations capability: detection settings, events, hot lists, alarm rules, alarms, incidents,
dispatches of response crews, outgoing webhooks. See docs/operations.md."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from kuzet.domain.operations import PRIORITY_RANK
from kuzet.store.db import utcnow
from kuzet.store.models.base import Base


class CameraAnalysis(Base):
    """How one camera is analysed. A camera without a row is analysed with the defaults (motion only)."""

    __tablename__ = "camera_analysis"

    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True)
    motion: Mapped[bool] = mapped_column(Boolean, default=True)
    fps: Mapped[float] = mapped_column(Float, default=5.0)  # frames analysed per second
    sensitivity: Mapped[int] = mapped_column(Integer, default=60)  # 1..100, higher finds fainter changes
    min_area: Mapped[float] = mapped_column(Float, default=0.002)  # smallest moving blob, fraction of the picture
    # [{"name": "path", "kind": "zone" | "mask", "points": [[x, y], …]}] with x, y in 0..1 of the picture.
    zones: Mapped[list] = mapped_column(JSON, default=list)
    objects: Mapped[bool] = mapped_column(Boolean, default=False)
    detector: Mapped[str] = mapped_column(String(16), default="hog")  # hog | onnx
    anpr: Mapped[bool] = mapped_column(Boolean, default=False)
    stream: Mapped[str] = mapped_column(String(8), default="auto")  # auto (sub if any), sub, main
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Event(Base):
    """One detection: a motion interval, a tracked object, a read plate. Linked to the archive by camera and time."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_start_id", "start_at", "id"),
        Index("ix_events_label_start", "label", "start_at"),
        Index("ix_events_camera_start", "camera_id", "start_at"),
        Index("ix_events_kind_start", "kind", "start_at"),
        Index("ix_events_end_at", "end_at"),  # GET /events?start=: still running or ending after it
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # motion | object | plate
    label: Mapped[str | None] = mapped_column(String(32))  # person, car, … (objects); "plate"
    score: Mapped[float | None] = mapped_column(Float)
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime | None] = mapped_column()  # None while it lasts
    zone: Mapped[str | None] = mapped_column(String(100))
    plate: Mapped[str | None] = mapped_column(String(16), index=True)  # normalised, e.g. 123ABC02
    plate_region: Mapped[str | None] = mapped_column(String(4))
    box: Mapped[list | None] = mapped_column(JSON)  # [x, y, w, h] in 0..1 of the picture, best snapshot
    snapshot: Mapped[str | None] = mapped_column(String(400))  # relative to the events directory
    crop: Mapped[str | None] = mapped_column(String(400))  # plate crop
    details: Mapped[dict | None] = mapped_column(JSON)


class HotList(Base):
    """Wanted or stolen vehicles; a read plate on a list raises an alarm of the list's priority."""

    __tablename__ = "hot_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="wanted")  # wanted | stolen | other
    priority: Mapped[str] = mapped_column(String(16), default="high")
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HotListEntry(Base):
    __tablename__ = "hot_list_entries"
    __table_args__ = (UniqueConstraint("list_id", "plate", name="uq_hot_list_entries_list_plate"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("hot_lists.id", ondelete="CASCADE"), index=True)
    plate: Mapped[str] = mapped_column(String(16), index=True)  # normalised
    plate_text: Mapped[str] = mapped_column(String(32))  # as entered
    reason: Mapped[str] = mapped_column(Text, default="")
    valid_to: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlarmRule(Base):
    """Which events become alarms: where, when, what, how long, how urgent."""

    __tablename__ = "alarm_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"))
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    event_kind: Mapped[str] = mapped_column(String(16), default="object")  # motion | object | plate | any
    labels: Mapped[str | None] = mapped_column(String(200))  # comma-separated; None = any
    zone: Mapped[str | None] = mapped_column(String(100))
    min_duration: Mapped[float] = mapped_column(Float, default=0.0)  # seconds
    # [{"days": [0..6] (Monday = 0), "from": "22:00", "to": "06:00"}] in the installation's time zone; None = always
    schedule: Mapped[list | None] = mapped_column(JSON)
    priority: Mapped[str] = mapped_column(String(16), default="medium")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def _rank_sql(column: str) -> str:
    """A priority's rank (higher is more urgent, 0 for a name Kuzet does not know) as SQL with its values written out:
    an index on an expression serves a query only when the query spells the very same expression, without bound
    parameters (SQLite compares the expressions, PostgreSQL their parsed trees)."""
    whens = " ".join(f"WHEN '{p.value}' THEN {r}" for p, r in sorted(PRIORITY_RANK.items(), key=lambda i: i[1]))
    return f"CASE {column} {whens} ELSE 0 END"


def alarm_rank():  # noqa: ANN201
    """SQL: the rank of ``alarms.priority``, the alarm queue's first sort key (served by ``ix_alarms_rank_raised_id``,
    migration 0023_city_wide_lists)."""
    return literal_column(_rank_sql("alarms.priority"), Integer)


class Alarm(Base):
    __tablename__ = "alarms"
    __table_args__ = (
        Index("ix_alarms_state_raised", "state", "raised_at"),
        Index("ix_alarms_raised_id", "raised_at", "id"),
        # GET /alarms: most urgent first, then newest (``alarm_rank``)
        Index("ix_alarms_rank_raised_id", text(f"({_rank_sql('priority')})"), "raised_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alarm_rules.id", ondelete="SET NULL"), index=True)
    hot_list_entry_id: Mapped[int | None] = mapped_column(ForeignKey("hot_list_entries.id", ondelete="SET NULL"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    priority: Mapped[str] = mapped_column(String(16), default="medium")
    state: Mapped[str] = mapped_column(String(16), default="new")  # new, acknowledged, dismissed, incident
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    dismissed_at: Mapped[datetime | None] = mapped_column()
    dismissed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    dismiss_reason: Mapped[str | None] = mapped_column(Text)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), index=True)
    # Repeats of the same rule or hot-list entry on the same camera fold into the open alarm (alarms.py): how many
    # times it was seen, when last, and the event of the latest sighting (its picture is the card's picture).
    occurrences: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    last_seen_at: Mapped[datetime | None] = mapped_column()
    last_event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))


class AlarmRoute(Base):
    """An alarm goes to the organisations that hold grants on its camera (duty unit, control centre, guard firm)."""

    __tablename__ = "alarm_routes"

    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True, index=True)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_created_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offence_type: Mapped[str] = mapped_column(String(32))  # the crime analytics' offence types
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[str] = mapped_column(String(16), default="medium")
    # open → dispatched → en_route → on_scene → closed (the furthest state any crew reported)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    closed_at: Mapped[datetime | None] = mapped_column()
    resolution: Mapped[str | None] = mapped_column(Text)


class IncidentCamera(Base):
    """A camera and window linked to an incident: the clip to look at and to export."""

    __tablename__ = "incident_cameras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime] = mapped_column()


class IncidentEntry(Base):
    """The incident's timeline: created, alarm linked, note, camera linked, dispatched, crew status, closed."""

    __tablename__ = "incident_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict | None] = mapped_column(JSON)


class Dispatch(Base):
    """A response crew sent to an incident, with the times it reported."""

    __tablename__ = "dispatches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    responder_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="sent")  # sent, acknowledged, en_route, on_scene, closed
    sent_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    en_route_at: Mapped[datetime | None] = mapped_column()
    on_scene_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(Text)


class Webhook(Base):
    """An outgoing webhook of an organisation: events it may see, POSTed as JSON signed with HMAC-SHA256."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    url: Mapped[str] = mapped_column(String(1000))
    secret: Mapped[bytes] = mapped_column(LargeBinary)  # encrypted with the installation's secret key
    topics: Mapped[str] = mapped_column(String(400), default="alarm.*,incident.*")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One message to one webhook, with every attempt in ``attempts_log``."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_state_next", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str] = mapped_column(String(64))  # stable across retries, for receivers to deduplicate
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempts_log: Mapped[list] = mapped_column(JSON, default=list)  # [{"at", "status", "error", "ms"}]
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()
