"""Rules of the operations centre: priorities, the life of an alarm, an incident and a crew's dispatch, and rule
schedules ("yard at night", "school after hours"). Plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo


class EventKind(StrEnum):
    MOTION = "motion"
    OBJECT = "object"
    PLATE = "plate"


OBJECT_LABELS = ("person", "car", "truck", "bus", "motorcycle", "bicycle")


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Higher is more urgent (queues sort by it, then by time)."""
        return PRIORITY_RANK[self]


PRIORITY_RANK = {Priority.LOW: 1, Priority.MEDIUM: 2, Priority.HIGH: 3, Priority.CRITICAL: 4}


class AlarmState(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    DISMISSED = "dismissed"  # false alarm, with a reason
    INCIDENT = "incident"  # an incident was opened from it (or it was linked to one)


# From which states an operator may move an alarm to which.
ALARM_MOVES = {
    AlarmState.NEW: {AlarmState.ACKNOWLEDGED, AlarmState.DISMISSED, AlarmState.INCIDENT},
    AlarmState.ACKNOWLEDGED: {AlarmState.DISMISSED, AlarmState.INCIDENT},
    AlarmState.DISMISSED: set(),
    AlarmState.INCIDENT: set(),
}


class DispatchStatus(StrEnum):
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    CLOSED = "closed"


# A crew reports forward only; it may skip steps (arriving without having pressed "en route").
DISPATCH_ORDER = [DispatchStatus.SENT, DispatchStatus.ACKNOWLEDGED, DispatchStatus.EN_ROUTE, DispatchStatus.ON_SCENE,
                  DispatchStatus.CLOSED]


def dispatch_may_move(current: str, new: str) -> bool:
    order = [s.value for s in DISPATCH_ORDER]
    return current in order and new in order and order.index(new) > order.index(current)


class IncidentStatus(StrEnum):
    OPEN = "open"
    DISPATCHED = "dispatched"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    CLOSED = "closed"


INCIDENT_ORDER = [IncidentStatus.OPEN, IncidentStatus.DISPATCHED, IncidentStatus.EN_ROUTE, IncidentStatus.ON_SCENE,
                  IncidentStatus.CLOSED]

# An incident's status follows the furthest state any of its crews reported.
STATUS_FROM_DISPATCH = {
    DispatchStatus.SENT: IncidentStatus.DISPATCHED,
    DispatchStatus.ACKNOWLEDGED: IncidentStatus.DISPATCHED,
    DispatchStatus.EN_ROUTE: IncidentStatus.EN_ROUTE,
    DispatchStatus.ON_SCENE: IncidentStatus.ON_SCENE,
    DispatchStatus.CLOSED: IncidentStatus.ON_SCENE,  # a crew leaving does not close the incident; the operator does
}


def furthest(a: str, b: str) -> str:
    order = [s.value for s in INCIDENT_ORDER]
    return a if order.index(a) >= order.index(b) else b


# --- schedules ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """Days of the week (Monday = 0) and a local time range; a range that ends before it starts runs past midnight
    and belongs to the day it starts on."""

    days: frozenset[int]
    start: time
    end: time

    def contains(self, local: datetime) -> bool:
        t = local.time().replace(tzinfo=None)
        weekday = local.weekday()
        if self.start <= self.end:
            return weekday in self.days and self.start <= t < self.end
        # Overnight: 22:00–06:00 on Monday covers Monday 22:00 to Tuesday 06:00.
        if t >= self.start:
            return weekday in self.days
        return t < self.end and (weekday - 1) % 7 in self.days


class ScheduleError(ValueError):
    pass


def _clock(text: str, what: str) -> time:
    try:
        hours, minutes = (int(part) for part in str(text).split(":"))
        if hours == 24 and minutes == 0:
            return time(23, 59, 59, 999999)
        return time(hours, minutes)
    except (ValueError, TypeError):
        raise ScheduleError(f"{what} must be HH:MM, not {text!r}") from None


def parse_schedule(raw: list[dict] | None) -> list[Window] | None:
    """``[{"days": [0, 1, …], "from": "22:00", "to": "06:00"}, …]`` → windows; None or [] means always."""
    if not raw:
        return None
    windows = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise ScheduleError(f"schedule window {i} must be an object with days, from and to")
        days = item.get("days", list(range(7)))
        if not isinstance(days, list) or not all(isinstance(d, int) and 0 <= d <= 6 for d in days) or not days:
            raise ScheduleError(f"schedule window {i}: days must be a non-empty list of 0 (Monday) … 6 (Sunday)")
        start = _clock(item.get("from", "00:00"), f"schedule window {i} 'from'")
        end = _clock(item.get("to", "24:00"), f"schedule window {i} 'to'")
        if start == end:
            raise ScheduleError(f"schedule window {i}: 'from' and 'to' are the same time")
        windows.append(Window(frozenset(days), start, end))
    return windows


def in_schedule(windows: list[Window] | None, when: datetime, tz: str) -> bool:
    if not windows:
        return True
    local = when.astimezone(ZoneInfo(tz))
    return any(w.contains(local) for w in windows)
