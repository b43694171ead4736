"""Storage tiers: keep everything for ``full_days``, then only the minutes with motion or events (and evidence holds)
for ``motion_days`` more, then nothing.

A policy comes from the camera's own setting or, where a camera has none, from a source that fills it (a cloud plan).
Thinning keeps or deletes *whole one-minute files*: a file is kept if anything worth keeping overlaps it, widened by
``PAD`` on each side so the approach and the departure of a passer-by stay in the archive. No file is cut or
re-encoded; see docs/cloud.md, "Storage tiers".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

PAD = timedelta(seconds=5)
MAX_DAYS = 3650


class TierError(ValueError):
    pass


@dataclass(frozen=True)
class TierPolicy:
    full_days: int
    motion_days: int
    source: str = "camera"  # camera (its own setting) or what filled it, e.g. "plan:Standard"

    def __post_init__(self) -> None:
        problem = check_policy(self.full_days, self.motion_days)
        if problem:
            raise TierError(problem)

    @property
    def total_days(self) -> int:
        """How long anything of the camera is kept at all."""
        return self.full_days + self.motion_days

    def full_cutoff(self, now: datetime) -> datetime:
        """Files that ended before this are past the full-retention window."""
        return now - timedelta(days=self.full_days)

    def end_cutoff(self, now: datetime) -> datetime:
        """Files that ended before this are past the whole policy."""
        return now - timedelta(days=self.total_days)


def check_policy(full_days: object, motion_days: object) -> str | None:
    for name, value in (("full_days", full_days), ("motion_days", motion_days)):
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{name} must be a whole number of days"
    assert isinstance(full_days, int) and isinstance(motion_days, int)
    if not 1 <= full_days <= MAX_DAYS:
        return f"full_days must be within 1..{MAX_DAYS}"
    if not 0 <= motion_days <= MAX_DAYS:
        return f"motion_days must be within 0..{MAX_DAYS}"
    return None


def overlaps(start: datetime, end: datetime, spans: list[tuple[datetime, datetime | None]],
             pad: timedelta = PAD) -> bool:
    """Whether a file [start, end) touches any span widened by ``pad`` (an open span lasts until now)."""
    return any(s - pad < end and (e is None or e + pad > start) for s, e in spans)
