"""A demo installation whose cameras stream from a real RTSP simulator, served with the recorder running."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from kuzet.config import load_settings
from kuzet.services.demo import seed_demo_city
from kuzet.store.models import Camera
from tests.demo_support import DemoInstallation
from tests.recording_support import ThreadedSim

LIVE_SLUGS = ("b1e1", "b1yard", "b3e1", "d1street1")


def streaming_demo(data_dir: Path, sim: ThreadedSim, live: tuple[str, ...] = LIVE_SLUGS) -> DemoInstallation:
    """The demo city with its camera k on the simulator's camera k; only ``live`` cameras enabled."""
    env = {"KUZET_DATA_DIR": str(data_dir), "KUZET_RECORDER__FILE_SECONDS": "5",
           "KUZET_RECORDER__FRAGMENT_SECONDS": "0.5", "KUZET_STORAGE__MIN_FREE_BYTES": "0"}
    inst = DemoInstallation.open(settings=load_settings(environ=env))
    inst.init()
    count = len(sim.server.cameras)
    with inst.db.session() as session:
        city = seed_demo_city(session, inst.keys, lambda i, slug: (sim.url(i % count + 1),
                                                                   sim.url(i % count + 1, "sub")))
        session.execute(update(Camera).where(Camera.id.not_in([city.cameras[s] for s in live])).values(enabled=False))
    inst.city = city
    return inst
