"""Street networks read offline: GeoJSON, or an OpenStreetMap extract (``.osm.pbf`` / ``.osm``) through pyosmium."""

from __future__ import annotations

import json
from pathlib import Path

MAIN_CLASSES = {"motorway", "trunk", "primary", "secondary", "tertiary"}
STREET_CLASSES = MAIN_CLASSES | {"unclassified", "residential", "living_street", "service", "pedestrian",
                                 "motorway_link", "trunk_link", "primary_link", "secondary_link", "tertiary_link"}


def read_streets(path: Path, main_only: bool = False) -> dict:
    """A GeoJSON FeatureCollection of street lines (properties: name, highway, district if the source has one)."""
    suffix = "".join(path.suffixes[-2:]).lower()
    if suffix.endswith((".geojson", ".json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if main_only:
            data["features"] = [f for f in data.get("features", [])
                                if (f.get("properties") or {}).get("highway", "primary") in MAIN_CLASSES]
        return data
    if suffix.endswith((".osm.pbf", ".pbf", ".osm")):
        import osmium

        wanted = MAIN_CLASSES if main_only else STREET_CLASSES
        features = []
        for way in osmium.FileProcessor(str(path)).with_locations().with_filter(osmium.filter.KeyFilter("highway")):
            if not way.is_way() or way.tags.get("highway") not in wanted:
                continue
            try:
                coords = [[n.lon, n.lat] for n in way.nodes]
            except osmium.InvalidLocationError:
                continue
            if len(coords) >= 2:
                features.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords},
                                 "properties": {"osm_id": way.id, "name": way.tags.get("name"),
                                                "highway": way.tags.get("highway"),
                                                "district": way.tags.get("addr:district")}})
        return {"type": "FeatureCollection", "features": features}
    raise ValueError(f"{path}: streets must be GeoJSON (.geojson) or an OpenStreetMap extract (.osm.pbf)")
