"""Where to put the next K cameras: the maximal covering location problem. Existing cameras stay; offences they
already see count as covered. Solved exactly with PuLP/CBC for moderate sizes, or by lazy greedy (CELF), which is
guaranteed to reach at least (1 − 1/e) ≈ 63 % of the optimum."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from kuzet.services.crime import limits

EXACT_LIMIT = limits.EXACT_MAX_CANDIDATES  # candidates up to which the exact model is solved


@dataclass
class PlacementResult:
    method: str
    chosen: list[int]  # candidate indices
    covered_weight: float
    total_weight: float
    already_covered_weight: float
    upper_bound: float | None
    seconds: float

    def as_dict(self) -> dict:
        return {"method": self.method, "chosen": self.chosen, "covered_weight": round(self.covered_weight, 3),
                "total_weight": round(self.total_weight, 3),
                "already_covered_weight": round(self.already_covered_weight, 3),
                "covered_share": round(self.covered_weight / self.total_weight, 4) if self.total_weight else 0,
                "upper_bound": round(self.upper_bound, 3) if self.upper_bound is not None else None,
                "guarantee": ("optimal" if self.method == "exact" else
                              "at least 63.2 % (1 − 1/e) of the optimum"), "seconds": round(self.seconds, 3)}


def neighbourhoods(candidates: np.ndarray, demand: np.ndarray, radius: float) -> list[np.ndarray]:
    """For each candidate, the demand points within ``radius`` (metres)."""
    tree = cKDTree(demand)
    return [np.asarray(ix, dtype=np.int64) for ix in tree.query_ball_point(candidates, r=radius)]


def _uncovered(demand: np.ndarray, existing: np.ndarray, radius: float) -> np.ndarray:
    if len(existing) == 0:
        return np.ones(len(demand), dtype=bool)
    dist, _ = cKDTree(existing).query(demand, k=1, distance_upper_bound=radius)
    return ~np.isfinite(dist)


def greedy(cover: list[np.ndarray], weights: np.ndarray, k: int) -> tuple[list[int], float]:
    """Lazy greedy: marginal gains only shrink (submodularity), so stale heap entries are re-evaluated on demand."""
    covered = np.zeros(len(weights), dtype=bool)
    heap = [(-float(weights[c].sum()), j) for j, c in enumerate(cover)]
    heapq.heapify(heap)
    chosen: list[int] = []
    total = 0.0
    while heap and len(chosen) < k:
        neg_gain, j = heapq.heappop(heap)
        gain = float(weights[cover[j]][~covered[cover[j]]].sum())
        if heap and gain < -heap[0][0] - 1e-12:
            heapq.heappush(heap, (-gain, j))
            continue
        if gain <= 0:
            break
        chosen.append(j)
        covered[cover[j]] = True
        total += gain
    return chosen, total


def exact(cover: list[np.ndarray], weights: np.ndarray, k: int, time_limit: int = 120) -> tuple[list[int], float]:
    import pulp

    model = pulp.LpProblem("mclp", pulp.LpMaximize)
    x = [model.add_variable(f"x{j}", cat="Binary") for j in range(len(cover))]
    covering: dict[int, list[int]] = {}
    for j, c in enumerate(cover):
        for i in c.tolist():
            covering.setdefault(i, []).append(j)
    y = {i: model.add_variable(f"y{i}", 0, 1) for i in covering}
    model += pulp.lpSum(float(weights[i]) * y[i] for i in covering)
    for i, js in covering.items():
        model += y[i] <= pulp.lpSum(x[j] for j in js)
    model += pulp.lpSum(x) <= k
    model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit))
    chosen = [j for j, v in enumerate(x) if (v.value() or 0) > 0.5]
    covered = np.zeros(len(weights), dtype=bool)
    for j in chosen:
        covered[cover[j]] = True
    return chosen, float(weights[covered].sum())


def plan(candidates: np.ndarray, demand: np.ndarray, weights: np.ndarray, k: int, radius: float,
         existing: np.ndarray | None = None, method: str = "auto") -> PlacementResult:
    """``candidates``, ``demand``, ``existing``: (n, 2) arrays of projected metres."""
    import time

    t0 = time.perf_counter()
    existing = existing if existing is not None else np.empty((0, 2))
    open_mask = _uncovered(demand, existing, radius)
    already = float(weights[~open_mask].sum())
    w = np.where(open_mask, weights, 0.0)
    cover = neighbourhoods(candidates, demand, radius)
    if method not in ("auto", "exact", "greedy"):
        raise limits.LimitError(f"method is auto, exact or greedy (got {method!r})")
    limits.within("cameras", k, limits.CAMERAS)
    exact_fits = len(candidates) <= limits.EXACT_MAX_CANDIDATES and len(demand) <= limits.EXACT_MAX_OFFENCES
    if method == "auto":
        method = "exact" if exact_fits else "greedy"
    elif method == "exact" and not exact_fits:
        raise limits.LimitError(
            f"exact placement takes at most {limits.EXACT_MAX_CANDIDATES} candidate sites and "
            f"{limits.EXACT_MAX_OFFENCES} offences (here {len(candidates)} and {len(demand)}): use greedy or auto")
    if method == "exact":
        chosen, value = exact(cover, w, k)
        bound = value
    else:
        chosen, value = greedy(cover, w, k)
        bound = value / (1 - 1 / math.e)
    return PlacementResult(method, chosen, value, float(weights.sum()), already, bound, time.perf_counter() - t0)
