"""Hot spots: quartic kernel density and Getis-Ord Gi* on a grid (PySAL esda, permutation inference), and the
Predictive Accuracy Index of a hot-spot map against a later period.

Bandwidth rule (documented, overridable): Silverman's rule on the standard distance of the points,
h = 0.9 · min(SD, IQR/1.349) · n^(−1/5), with SD and IQR taken over both axes and averaged, at least 100 m.
Cell size: h / 4, at least 25 m. Gi* uses cells of 2 × that size with queen contiguity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kuzet.services.crime import limits


def bandwidth(x: np.ndarray, y: np.ndarray) -> float:
    n = len(x)
    if n < 2:
        return 250.0
    spreads = []
    for v in (x, y):
        sd = float(np.std(v, ddof=1))
        iqr = float(np.subtract(*np.percentile(v, [75, 25]))) / 1.349
        spreads.append(min(sd, iqr) if iqr > 0 else sd)
    return max(100.0, 0.9 * float(np.mean(spreads)) * n ** (-1 / 5))


@dataclass
class Grid:
    x0: float
    y0: float
    cell: float
    cols: int
    rows: int

    @classmethod
    def around(cls, x: np.ndarray, y: np.ndarray, cell: float, margin: float) -> Grid:
        x0, y0 = float(x.min() - margin), float(y.min() - margin)
        cols = int(np.ceil((x.max() + margin - x0) / cell)) or 1
        rows = int(np.ceil((y.max() + margin - y0) / cell)) or 1
        return cls(x0, y0, cell, cols, rows)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        cx = self.x0 + (np.arange(self.cols) + 0.5) * self.cell
        cy = self.y0 + (np.arange(self.rows) + 0.5) * self.cell
        return np.meshgrid(cx, cy)

    def counts(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        col = np.clip(((x - self.x0) // self.cell).astype(int), 0, self.cols - 1)
        row = np.clip(((y - self.y0) // self.cell).astype(int), 0, self.rows - 1)
        grid = np.zeros((self.rows, self.cols))
        np.add.at(grid, (row, col), 1)
        return grid


def quartic_kde(x: np.ndarray, y: np.ndarray, h: float | None = None, cell: float | None = None) -> dict:
    """Density per km² on a grid with the quartic (biweight) kernel K(d) = 3/(πh²)·(1 − d²/h²)² for d < h."""
    from scipy.spatial import cKDTree

    limits.within("bandwidth", h, limits.BANDWIDTH_M)
    limits.within("cell", cell, limits.CELL_M)
    h = h or bandwidth(x, y)
    cell = cell or max(25.0, h / 4)
    grid = Grid.around(x, y, cell, h)
    limits.grid_cells(grid.cols, grid.rows, cell)  # before anything of that size is allocated
    gx, gy = grid.centres()
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    tree = cKDTree(np.column_stack([x, y]))
    density = np.zeros(len(pts))
    for i, neighbours in enumerate(tree.query_ball_point(pts, r=h)):
        if neighbours:
            d2 = ((x[neighbours] - pts[i, 0]) ** 2 + (y[neighbours] - pts[i, 1]) ** 2) / (h * h)
            density[i] = np.sum((1 - d2) ** 2) * 3 / (np.pi * h * h)
    return {"grid": grid, "density_per_km2": density.reshape(grid.rows, grid.cols) * 1e6, "bandwidth": h, "cell": cell}


def local_gi_star(values: np.ndarray, w, permutations: int = 999, seed: int = 12345) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """Getis-Ord Gi* (Ord & Getis 1995) of ``values`` on binary weights ``w`` (a libpysal W), with permutation
    p-values: (z, p_sim) per unit."""
    import esda

    # n_jobs=1: esda's default (-1) starts worker processes for the permutations; inside a server whose other threads
    # record and analyse video that costs more than it gives on two cores, and a child started while another thread
    # holds a lock can hang (seen in the console walk with analysis on). 999 permutations on 10,000 cells take a few
    # seconds on one core (docs/benchmarks.md, crime).
    g = esda.G_Local(np.asarray(values, dtype=float), w, transform="B", star=True, permutations=permutations,
                     seed=seed, n_jobs=1)
    p_sim = g.p_sim if permutations else np.full(len(g.Zs), np.nan)  # no permutations: no pseudo p-values
    return np.asarray(g.Zs), np.asarray(p_sim)


def global_moran(values: np.ndarray, w, permutations: int = 999) -> dict:  # noqa: ANN001
    """Moran's I on row-standardised weights: is there clustering at all before looking for hot spots?"""
    import esda

    w.transform = "R"
    m = esda.Moran(np.asarray(values, dtype=float), w, permutations=permutations)
    return {"I": float(m.I), "expected": float(m.EI), "z": float(m.z_norm), "p_sim": float(m.p_sim)
            if permutations else None}


def gi_star(counts: np.ndarray, permutations: int = 999, seed: int = 12345) -> dict:
    """Getis-Ord Gi* of grid counts with queen contiguity, permutation p-values and confidence levels, and the
    grid's global Moran's I."""
    from libpysal.weights import lat2W

    rows, cols = counts.shape
    w = lat2W(rows, cols, rook=False)
    w.transform = "B"
    z, p = local_gi_star(counts.ravel(), w, permutations, seed)
    z, p = z.reshape(rows, cols), p.reshape(rows, cols)
    level = np.zeros_like(z, dtype=int)
    for conf, alpha in ((1, 0.10), (2, 0.05), (3, 0.01)):
        level[(z > 0) & (p <= alpha)] = conf
        level[(z < 0) & (p <= alpha)] = -conf
    moran = global_moran(counts.ravel(), lat2W(rows, cols, rook=False), permutations=min(permutations, 999))
    return {"z": z, "p_sim": p, "level": level, "moran": moran}


def pai(hot: np.ndarray, later_counts: np.ndarray) -> float | None:
    """Predictive Accuracy Index: (share of later offences in hot cells) / (share of area in hot cells)."""
    total = later_counts.sum()
    if total == 0 or hot.sum() == 0:
        return None
    return float((later_counts[hot].sum() / total) / (hot.sum() / hot.size))


def cells_geojson(grid: Grid, projection, values: dict[str, np.ndarray], keep: np.ndarray | None = None) -> dict:  # noqa: ANN001
    features = []
    for r in range(grid.rows):
        for c in range(grid.cols):
            if keep is not None and not keep[r, c]:
                continue
            xs = [grid.x0 + c * grid.cell, grid.x0 + (c + 1) * grid.cell]
            ys = [grid.y0 + r * grid.cell, grid.y0 + (r + 1) * grid.cell]
            lon, lat = projection.to_lonlat([xs[0], xs[1], xs[1], xs[0], xs[0]], [ys[0], ys[0], ys[1], ys[1], ys[0]])
            props = {k: (float(v[r, c]) if v.dtype.kind == "f" else int(v[r, c])) for k, v in values.items()}
            features.append({"type": "Feature", "properties": {"row": r, "col": c, **props},
                             "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in zip(lon, lat,
                                                                                                      strict=True)]]}})
    return {"type": "FeatureCollection", "features": features}
