"""How big an analysis anyone may ask for: the API declares these ranges in its schema, and the services check them,
so ``kuzet crime …`` gets the same rule. Each bound keeps one request within seconds and within memory on a small
server, well beyond what a city's analysis needs.
"""

from __future__ import annotations

import math
from datetime import date

MAX_PERIOD_DAYS = 3660  # ten years of offences in one report, hot-spot map or placement
BANDWIDTH_M = (10.0, 5_000.0)  # KDE bandwidth
CELL_M = (5.0, 2_000.0)  # KDE cell size
MAX_GRID_CELLS = 250_000  # KDE cells (Gi* gets a quarter of them): about a 500 × 500 grid
PERMUTATIONS = (99, 9_999)  # Gi* permutation inference
RADIUS_M = (10.0, 5_000.0)  # camera coverage, treated area of an intervention
MONTHS = (1, 60)  # before and after an intervention
CAMERAS = (1, 1_000)  # new cameras to place
EXACT_MAX_CANDIDATES = 2_000  # the exact (integer programming) placement, beyond which only greedy runs in time
EXACT_MAX_OFFENCES = 20_000
COMPARE_RATE = (0.0, 10_000.0)  # a reference rate per 10,000 residents


class LimitError(ValueError):
    """An analysis parameter outside its allowed range; the message names it and the range."""


def within(name: str, value: float | int | None, bounds: tuple[float, float]) -> None:
    """Raise LimitError unless ``value`` is None or a finite number within ``bounds`` (inclusive)."""
    if value is None:
        return
    low, high = bounds
    if isinstance(value, float) and not math.isfinite(value) or not low <= value <= high:
        raise LimitError(f"{name} must be within {_number(low)}..{_number(high)} (got {value})")


def period(start: date, end: date, name: str = "the period") -> None:
    """``start`` ≤ ``end``, at most MAX_PERIOD_DAYS apart."""
    if end < start:
        raise LimitError(f"{name} ends before it starts")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise LimitError(f"{name} may span at most {MAX_PERIOD_DAYS} days (got {(end - start).days + 1})")


def grid_cells(cols: int, rows: int, cell: float) -> None:
    if cols * rows > MAX_GRID_CELLS:
        raise LimitError(f"the grid would have {cols * rows} cells of {cell:g} m (at most {MAX_GRID_CELLS}): "
                         "choose a larger cell or a smaller area")


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
