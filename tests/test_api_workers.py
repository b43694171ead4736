"""``kuzet serve --api-workers N`` (issue 16, point 5): the API in worker processes of their own, the recorder in
another; live video over WebSocket still works through the workers, with the same refusals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import update

from kuzet.config import load_settings
from kuzet.installation import Installation
from kuzet.services.demo import seed_demo_city
from kuzet.store.models import Camera
from tests.conftest import PostgresSchema, _unavailable
from tests.recording_support import ThreadedSim

pytestmark = pytest.mark.media
SRC = Path(__file__).resolve().parents[1] / "src"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_live_websocket_through_api_workers(backend: str, tmp_path: Path) -> None:
    sim = ThreadedSim(1)
    schema = None
    env = {"KUZET_DATA_DIR": str(tmp_path / "data"), "KUZET_RECORDER__FILE_SECONDS": "5",
           "KUZET_RECORDER__FRAGMENT_SECONDS": "0.5", "KUZET_STORAGE__MIN_FREE_BYTES": "0"}
    if backend == "postgresql":
        try:
            schema = PostgresSchema()
        except Exception as exc:  # noqa: BLE001
            _unavailable("PostgreSQL", exc)
        env["KUZET_DATABASE_URL"] = schema.url
    server = None
    try:
        inst = Installation.open(settings=load_settings(environ=env))
        inst.init()
        with inst.db.session() as session:
            city = seed_demo_city(session, inst.keys, lambda i, slug: (sim.url(1), sim.url(1, "sub")))
            session.execute(update(Camera).where(Camera.id != city.cameras["b1e1"]).values(enabled=False))
        inst.close()
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "kuzet.cli.main", "serve", "--port", str(port), "--api-workers", "2",
             "--log-level", "warning"],
            env=os.environ | env | {"PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):  # until the workers answer (not a speed assertion: the wait ends when they do)
            assert server.poll() is None, server.stderr.read().decode(errors="replace")[-3000:]
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "resident1", "password": "demo"},
                           timeout=30).json()["access_token"]
        listed = httpx.get(f"{base}/api/v1/cameras", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert listed.status_code == 200 and listed.json()["total"] >= 1
        own, other = city.cameras["b1e1"], city.cameras["b3e1"]
        ws_base = f"ws://127.0.0.1:{port}/api/v1/cameras"

        async def watch() -> tuple[dict, bytes, bytes]:
            for _ in range(120):  # the recorder connects to the camera after it starts
                async with websockets.connect(f"{ws_base}/{own}/live?token={token}", max_size=None) as ws:
                    header = json.loads(await ws.recv())
                    if header.get("type") != "init":
                        await asyncio.sleep(0.5)
                        continue
                    init = await ws.recv()
                    while isinstance(fragment := await ws.recv(), str):
                        pass  # the clock message
                    return header, init, fragment
            raise AssertionError("the live stream never started through the workers")

        async def refused(url: str) -> int | None:
            try:
                async with websockets.connect(url) as ws:
                    await ws.recv()
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
            except websockets.InvalidStatus as status:
                return status.response.status_code
            return None

        header, init, fragment = asyncio.run(watch())
        assert header["codec"] == "h264" and init[4:8] == b"ftyp" and fragment[4:8] == b"moof"
        # refused before the handshake completes, as a single-process server refuses (uvicorn answers HTTP 403 to
        # a WebSocket closed before it was accepted; 4401/4404 are the close codes behind it)
        assert asyncio.run(refused(f"{ws_base}/{other}/live?token={token}")) == 403
        assert asyncio.run(refused(f"{ws_base}/{own}/live")) == 403
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        sim.close()
        if schema:
            schema.drop()
