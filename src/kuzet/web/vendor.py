"""Copy the browser libraries installed from npm (``npm ci``) into ``static/vendor`` so the console serves them
itself: police networks are closed, nothing may come from a CDN at run time. Run by ``make`` (web-assets)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TARGET = Path(__file__).parent / "static" / "vendor"
FILES = {
    "leaflet": ["dist/leaflet.js", "dist/leaflet.css", "dist/images"],
    # marker clustering on the camera map
    "leaflet.markercluster": ["dist/leaflet.markercluster.js", "dist/MarkerCluster.css",
                              "dist/MarkerCluster.Default.css"],
}


def main() -> int:
    modules = ROOT / "node_modules"
    for package, items in FILES.items():
        for item in items:
            src = modules / package / item
            if not src.exists():
                print(f"missing {src}: run `npm ci` first", file=sys.stderr)
                return 1
            dst = TARGET / package / Path(item).name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True)
            else:
                shutil.copyfile(src, dst)
    print(f"web assets in {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
