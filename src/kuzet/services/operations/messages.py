"""Messages of the operations centre on the event bus, and the topics integrations see.

Subjects (``kuzet.store.bus``; NATS JetStream in production, in-process by default):

- ``kuzet.event.<camera_id>``   — a detection: ``{"type": "new" | "update" | "end", "event": {…},
  "organisations": […]}``
- ``kuzet.alarm.<alarm_id>``    — ``{"type": "raised" | "repeated" | "acknowledged" | "dismissed" | "incident",
  "alarm": {…}, "organisations": […]}`` (``repeated``: one more sighting folded into the open alarm)
- ``kuzet.incident.<id>``       — ``{"type": "created" | "updated" | "note" | "dispatched" | "dispatch" | "closed",
  "incident": {…}, "organisations": […]}``

``organisations`` lists the ids of the organisations that may see the message (for an event: those holding a grant on
its camera; for an alarm: those it was routed to; for an incident: its unit and the alarm's routes). Integrations use
it to decide what an organisation's webhook receives. A webhook or MQTT topic is ``<what>.<type>``, e.g.
``alarm.raised``, ``incident.dispatched``, ``event.new``.
"""

from __future__ import annotations

from typing import Any

EVENTS = "kuzet.event"
ALARMS = "kuzet.alarm"
INCIDENTS = "kuzet.incident"
WHAT = {EVENTS: "event", ALARMS: "alarm", INCIDENTS: "incident"}


def event_subject(camera_id: int) -> str:
    return f"{EVENTS}.{camera_id}"


def alarm_subject(alarm_id: int) -> str:
    return f"{ALARMS}.{alarm_id}"


def incident_subject(incident_id: int) -> str:
    return f"{INCIDENTS}.{incident_id}"


def topic(subject: str, payload: dict[str, Any]) -> str | None:
    """``kuzet.alarm.7`` + ``{"type": "raised"}`` → ``alarm.raised``; None for subjects that are not ours."""
    prefix = subject.rsplit(".", 1)[0]
    what = WHAT.get(prefix)
    if what is None or not payload.get("type"):
        return None
    return f"{what}.{payload['type']}"


def topic_matches(patterns: str | list[str], name: str) -> bool:
    """``"alarm.*,incident.closed"`` matches ``alarm.raised`` and ``incident.closed``; ``*`` alone matches all."""
    items = patterns.split(",") if isinstance(patterns, str) else patterns
    what = name.partition(".")[0]
    for raw in items:
        pattern = raw.strip()
        if pattern in ("*", name) or pattern == f"{what}.*" or pattern == what:
            return True
    return False
