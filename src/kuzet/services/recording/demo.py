"""The demo's cameras stream for real: ``kuzet sim`` serves every demo camera (720p main, 360p sub) while the demo
runs, and the recorder records them. Yard and entrance cameras show real footage of people walking (where
``../shared/media`` has it), road cameras a car whose plate is on the demo's hot list (``simulator/scenes.py``)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

from sqlalchemy import func, select

from kuzet.installation import Installation
from kuzet.store.models import Camera

log = logging.getLogger("kuzet.demo")
SIM_PORT = 8554


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def demo_scenes(inst: Installation) -> dict[int, str]:
    """Simulator camera number → scene, by what each demo camera looks at."""
    from kuzet.services.simulator.scenes import DEMO_PLATE

    scenes: dict[int, str] = {}
    with inst.db.session() as session:
        for camera in session.scalars(select(Camera).order_by(Camera.id)):
            match = re.search(r"/cam(\d+)$", camera.main_url)
            if match is None:
                continue
            if camera.kind in ("road", "gate"):
                scenes[int(match.group(1))] = f"road:{DEMO_PLATE}"
            elif camera.kind in ("yard", "entrance"):
                scenes[int(match.group(1))] = "people"
    return scenes


@contextlib.contextmanager
def running(inst: Installation) -> Iterator[None]:
    with inst.db.session() as session:
        count = session.scalar(select(func.count()).select_from(Camera)) or 0
    if count == 0 or _port_in_use(SIM_PORT):
        if count:
            log.warning("port %d is taken: assuming a simulator already runs there", SIM_PORT)
        yield
        return
    scenes = [arg for k, scene in sorted(demo_scenes(inst).items()) if k <= count
              for arg in ("--scene", f"{k}={scene}")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kuzet.cli.main", "sim", "--cameras", str(count), "--port", str(SIM_PORT),
         "--resolution", "720p", *scenes], start_new_session=True)
    import time

    deadline = time.monotonic() + 300  # the first run generates the clips
    while time.monotonic() < deadline and proc.poll() is None and not _port_in_use(SIM_PORT):
        time.sleep(0.3)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
