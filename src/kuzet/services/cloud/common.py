"""What every part of the cloud service shares: its errors, who runs the business, local dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from kuzet.domain.access import Role
from kuzet.services.access import delegation
from kuzet.store.models import Place, User


class CloudError(ValueError):
    """Bad input or a rule of the service: the message names the problem (API 422)."""


class CloudConflict(CloudError):
    """The change conflicts with the object's state (API 409)."""


class CloudNotFound(LookupError):
    """The object does not exist or lies outside the caller's reach (API 404, the same either way)."""


class BusinessDenied(PermissionError):
    """The caller's role does not run the business (API 404: the business is invisible to them)."""


BUSINESS_ROLES = frozenset({Role.PLATFORM_ADMIN.value, Role.OPERATOR_ADMIN.value})


class Business:
    """Who runs the telecom's business and where: platform admins everywhere; the telecom's operator admins inside the
    places they manage (``delegation.reach_of``). Every business service asks this first."""

    def __init__(self, session: Session, user: User) -> None:
        if user.role not in BUSINESS_ROLES:
            raise BusinessDenied("not found")
        self.user = user
        self.everywhere = user.role == Role.PLATFORM_ADMIN.value
        self.reach = None if self.everywhere else delegation.reach_of(session, user)

    def covers(self, place: Place | None) -> bool:
        return place is not None and (self.everywhere or self.reach.covers(place))

    def paths(self) -> tuple[str, ...] | None:
        """Place paths the business reaches (None: all)."""
        return None if self.everywhere else self.reach.paths


def zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def local_date(moment: datetime, tz: str) -> date:
    return moment.astimezone(zone(tz)).date()


def start_of_day(day: date, tz: str) -> datetime:
    """00:00 of ``day`` in the installation's time zone, as UTC."""
    return datetime.combine(day, time(), zone(tz)).astimezone(UTC)


def end_of_day(day: date, tz: str) -> datetime:
    """The instant ``day`` ends (00:00 of the next day) in the installation's time zone, as UTC."""
    return start_of_day(day + timedelta(days=1), tz)


def today(tz: str, now: datetime | None = None) -> date:
    from kuzet.store.db import utcnow

    return local_date(now or utcnow(), tz)
