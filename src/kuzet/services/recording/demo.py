"""The demo's cameras stream for real: ``kuzet sim`` serves every demo camera (720p main, 360p sub) while the demo
runs, and the recorder records them. Yard and entrance cameras show real footage of people walking (where
``../shared/media`` has it), road cameras a car whose plate is on the demo's hot list (``simulator/scenes.py``).

The demo starts a simulator of its own every time, on ``SIM_PORT`` (8554) when that port is free and otherwise on a
port the system picks, and points its cameras at it. It never adopts whatever else listens on 8554 (another demo's
simulator, a real camera gateway): that one could stop at any moment and take every demo camera with it. If its own
simulator does not start, the demo refuses to run and says why.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select

from kuzet.domain.audit import Action
from kuzet.installation import Installation
from kuzet.services import audit
from kuzet.services.audit import SYSTEM
from kuzet.store.models import Camera

log = logging.getLogger("kuzet.demo")
SIM_PORT = 8554
START_SECONDS = 300  # the first run generates the clips
DEMO_URL = re.compile(r"^rtsp://127\.0\.0\.1:(\d+)/cam(\d+)$")


class SimulatorError(RuntimeError):
    """The demo's own camera simulator did not start; the message says why."""


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port`` and we could bind it now."""
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def demo_scenes(inst: Installation) -> dict[int, str]:
    """Simulator camera number → scene, by what each demo camera looks at."""
    from kuzet.services.simulator.scenes import DEMO_PLATE

    scenes: dict[int, str] = {}
    with inst.db.session() as session:
        for camera in session.scalars(select(Camera).order_by(Camera.id)):
            match = DEMO_URL.match(camera.main_url)
            if match is None:
                continue
            if camera.kind in ("road", "gate"):
                scenes[int(match.group(2))] = f"road:{DEMO_PLATE}"
            elif camera.kind in ("yard", "entrance"):
                scenes[int(match.group(2))] = "people"
    return scenes


def point_cameras_at(inst: Installation, port: int) -> int:
    """Point the demo's simulated cameras (``rtsp://127.0.0.1:<any port>/camK``) at the simulator on ``port``;
    the number of cameras changed (recorded in the audit log, as any change of a camera's stream)."""
    changed: list[int] = []
    with inst.db.session() as session:
        for camera in session.scalars(select(Camera).order_by(Camera.id)):
            match = DEMO_URL.match(camera.main_url)
            if match is None or int(match.group(1)) == port:
                continue
            k = match.group(2)
            camera.main_url = f"rtsp://127.0.0.1:{port}/cam{k}"
            if camera.sub_url is not None:
                camera.sub_url = f"rtsp://127.0.0.1:{port}/cam{k}/sub"
            changed.append(camera.id)
        if changed:
            audit.append(session, SYSTEM, Action.CAMERA_CHANGED, object_type="camera",
                         details={"cameras": changed, "stream": f"demo simulator on port {port}"})
    return len(changed)


def _tail(path: Path, lines: int = 8) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def start_simulator(inst: Installation, count: int, preferred: int = SIM_PORT,
                    timeout: float = START_SECONDS) -> tuple[subprocess.Popen, int]:
    """Our own ``kuzet sim`` for cameras 1..``count``: on ``preferred`` if it is free, else on a port the system
    picks. Returns the process and the port it listens on (reported by the simulator itself once it has bound it, so
    the port is ours); raises ``SimulatorError`` naming the reason when it does not start."""
    data = inst.settings.data_dir
    ready = data / "simulator.port"
    logfile = data / "simulator.log"
    scenes = [arg for k, scene in sorted(demo_scenes(inst).items()) if k <= count
              for arg in ("--scene", f"{k}={scene}")]
    ports = [0]
    if preferred:
        if port_free(preferred):
            ports.insert(0, preferred)
        else:
            log.warning("port %d is taken by another program: the demo's own simulator listens on a free port",
                        preferred)
    why = ""
    for port in ports:
        ready.unlink(missing_ok=True)
        with open(logfile, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kuzet.cli.main", "sim", "--cameras", str(count), "--port", str(port),
                 "--resolution", "720p", "--ready-file", str(ready), *scenes],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None and not ready.exists():
            time.sleep(0.2)
        if ready.exists() and proc.poll() is None:
            bound = int(ready.read_text().strip())
            ready.unlink(missing_ok=True)
            return proc, bound
        exited = proc.poll()
        stop_simulator(proc)
        why = f"exited with code {exited}" if exited is not None else f"did not start within {timeout:.0f} s"
        if port == 0 or "cannot listen" not in _tail(logfile):
            break  # not a port taken meanwhile: another port would fail the same way
        log.warning("the demo's simulator could not listen on port %d (taken meanwhile); trying a free port", port)
    raise SimulatorError(f"the demo's camera simulator {why} (log: {logfile}):\n{_tail(logfile)}")


def stop_simulator(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@contextlib.contextmanager
def running(inst: Installation) -> Iterator[None]:
    """The demo's simulator for as long as the demo serves; it prefers ``inst.running.demo_sim_port`` (``kuzet demo
    --sim-port``, default 8554)."""
    numbers = demo_numbers(inst)
    if not numbers:
        yield
        return
    proc, port = start_simulator(inst, max(numbers), inst.running.demo_sim_port or SIM_PORT)
    try:
        moved = point_cameras_at(inst, port)
        log.info("demo cameras stream from the demo's own simulator on port %d%s", port,
                 f" ({moved} cameras pointed there)" if moved else "")
        yield
    finally:
        stop_simulator(proc)


def demo_numbers(inst: Installation) -> list[int]:
    """Simulator camera numbers the demo's cameras use."""
    with inst.db.session() as session:
        urls = session.scalars(select(Camera.main_url)).all()
    return [int(m.group(2)) for m in map(DEMO_URL.match, urls) if m]
