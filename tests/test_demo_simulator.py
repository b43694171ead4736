"""`kuzet demo` runs its own camera simulator: beside a stranger's simulator on its preferred port it starts one on a
free port, points its cameras there and records them, and goes on recording when the stranger stops; when its own
simulator cannot start it refuses to run and says why. A real `kuzet demo` process, real RTSP, real ffmpeg, on SQLite
and PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.browser_support import free_port
from tests.conftest import PostgresSchema, _unavailable
from tests.recording_support import ThreadedSim

pytestmark = pytest.mark.media

# The demo's analysis is not what is tested here: keep the 2-core machine for the recorder.
ENV = {"KUZET_OPERATIONS__ENABLED": "false", "KUZET_RECORDER__FILE_SECONDS": "5"}


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _database_env(backend: str) -> tuple[dict[str, str], PostgresSchema | None]:
    if backend == "sqlite":
        return {}, None
    try:
        schema = PostgresSchema()
    except Exception as exc:  # noqa: BLE001
        _unavailable("PostgreSQL", exc)
    return {"KUZET_DATABASE_URL": schema.url}, schema


def _demo(data: Path, http_port: int, sim_port: int, env: dict[str, str]) -> subprocess.Popen:
    log = open(data.parent / "demo.log", "w")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "kuzet.cli.main", "demo", "--data", str(data), "--port", str(http_port),
         "--sim-port", str(sim_port)], env={**os.environ, **ENV, **env}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_demo_records_its_own_cameras_beside_a_strangers_simulator(tmp_path: Path, backend: str) -> None:
    stranger: ThreadedSim | None = ThreadedSim(1)  # another program's cameras on the port the demo prefers
    taken = stranger.server.port
    env, schema = _database_env(backend)
    http_port = free_port()
    base = f"http://127.0.0.1:{http_port}"
    demo = _demo(tmp_path / "demo", http_port, taken, env)
    log = tmp_path / "demo.log"
    try:
        deadline = time.time() + 400  # seeding, and the first run generates the 720p clips
        while time.time() < deadline and demo.poll() is None:
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert demo.poll() is None, log.read_text()
        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": "demo"}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        cameras = httpx.get(f"{base}/api/v1/cameras", headers=headers, params={"limit": 100}).json()["items"]
        assert len(cameras) == 22
        ports = {int(c["main_url"].split(":")[2].split("/")[0]) for c in cameras}
        (own,) = ports
        assert own != taken and _listening(own)  # every camera on the demo's own simulator, none on the stranger's
        wanted = [c["id"] for c in cameras if c["kind"] in ("entrance", "road", "street")][:6]

        def recording() -> bool:
            states = [httpx.get(f"{base}/api/v1/cameras/{c}/health", headers=headers).json() for c in wanted]
            return all(h.get("state") == "recording" for h in states)

        deadline = time.time() + 90
        while time.time() < deadline and not recording():
            time.sleep(1)
        assert recording(), log.read_text()[-3000:]
        stranger.close()  # the stranger's simulator goes away: the demo's cameras do not care
        stranger = None
        time.sleep(4)
        before = {c: httpx.get(f"{base}/api/v1/cameras/{c}/health", headers=headers).json()["last_frame_at"]
                  for c in wanted}
        time.sleep(3)
        after = {c: httpx.get(f"{base}/api/v1/cameras/{c}/health", headers=headers).json() for c in wanted}
        assert all(h["state"] == "recording" and h["last_frame_at"] > before[c] for c, h in after.items()), after
    finally:
        _stop(demo)
        if stranger is not None:
            stranger.close()
        if schema:
            schema.drop()
    assert not _listening(own), "the demo's simulator outlived the demo"
    assert "port" in log.read_text() and f"{taken}" in log.read_text()  # it said why it did not use that port


def test_demo_refuses_to_run_when_its_simulator_cannot_start(tmp_path: Path) -> None:
    broken_cache = tmp_path / "not-a-directory"
    broken_cache.write_text("")  # the simulator cannot make its clips here
    http_port = free_port()
    demo = _demo(tmp_path / "demo", http_port, free_port(), {"KUZET_CACHE_DIR": str(broken_cache)})
    try:
        demo.wait(120)
    finally:
        _stop(demo)
    out = (tmp_path / "demo.log").read_text()
    assert demo.returncode == 1, out
    assert "camera simulator exited with code 1" in out and "Not a directory" in out  # why, from its log
    assert not _listening(http_port)  # nothing served without cameras
