"""Metric geometry for analysis: WGS84 points projected to the local UTM zone (buffers and distances in metres)."""

from __future__ import annotations

import functools

import numpy as np
from pyproj import CRS, Transformer


@functools.cache
def _transformer(zone: int, south: bool) -> tuple[Transformer, Transformer]:
    utm = CRS.from_dict({"proj": "utm", "zone": zone, "south": south})
    return (Transformer.from_crs("EPSG:4326", utm, always_xy=True),
            Transformer.from_crs(utm, "EPSG:4326", always_xy=True))


class Projection:
    """lon/lat ⇄ metres in the UTM zone of a reference point."""

    def __init__(self, lat: float, lon: float) -> None:
        self.zone = int((lon + 180) // 6) + 1
        self.forward, self.inverse = _transformer(self.zone, lat < 0)

    @classmethod
    def for_points(cls, lats, lons) -> Projection:  # noqa: ANN001
        return cls(float(np.mean(lats)), float(np.mean(lons)))

    def to_metres(self, lons, lats) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
        x, y = self.forward.transform(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        return np.asarray(x), np.asarray(y)

    def to_lonlat(self, xs, ys) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
        lon, lat = self.inverse.transform(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
        return np.asarray(lon), np.asarray(lat)
