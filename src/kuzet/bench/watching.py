"""``kuzet bench seek`` and ``kuzet bench live``.

seek: an index of C cameras × D days of one-minute files (generated synthetically, every row pointing at one real
recorded file), then the time from a clip request at a random instant to its first bytes, through the HTTP API, against
the ceiling of opening the same file and reading the same bytes directly.

live: one simulated camera, a real server, N WebSocket viewers; server CPU with N viewers against one viewer, and the
time from connecting to the first fragment.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def _percentiles(values: list[float]) -> dict:
    values = sorted(values)
    return {"p50_ms": round(1000 * statistics.median(values), 2),
            "p95_ms": round(1000 * values[int(0.95 * (len(values) - 1))], 2),
            "max_ms": round(1000 * values[-1], 2)}


def run_seek_benchmark(cameras: int = 100, days: int = 30, requests: int = 50, progress=None) -> dict:  # noqa: ANN001
    from fastapi.testclient import TestClient
    from sqlalchemy import insert

    from kuzet.api.app import create_app
    from kuzet.config import load_settings
    from kuzet.installation import Installation
    from kuzet.services import accounts
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cameras import create_camera
    from kuzet.services.places import create_place
    from kuzet.services.recording.segments import pack_keyframes
    from kuzet.services.simulator.clips import SUB_360P, ensure_clip
    from kuzet.store.models.recording import Recording

    work = Path(tempfile.mkdtemp(prefix="kuzet-seek-"))
    inst = Installation.open(settings=load_settings(environ={"KUZET_DATA_DIR": str(work)}))
    inst.init()
    # One real one-minute-ish fMP4 file that every index row points at.
    sample = inst.settings.recordings_path / "sample.mp4"
    from kuzet.services.recording.ffmpeg import ffmpeg_binary

    subprocess.run([ffmpeg_binary(), "-loglevel", "error", "-y", "-stream_loop", "4", "-i", str(ensure_clip(SUB_360P)),
                    "-c", "copy", "-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof",
                    "-frag_duration", "500000", str(sample)], check=True)
    from kuzet.services.recording.index import scan_file

    values, _size = scan_file(sample, datetime(2025, 1, 1, tzinfo=UTC))
    with inst.db.session() as s:
        place = create_place(s, SYSTEM, "district", "bench")
        ids = [create_camera(s, SYSTEM, inst.keys, name=f"c{k}", place_id=place.id,
                             main_url=f"rtsp://10.0.0.{k % 250}/x").id for k in range(cameras)]
        accounts.create_user(s, SYSTEM, "bench", "bench-pass", "platform_admin")
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(days=days)
    minutes = days * 24 * 60
    t0 = time.monotonic()
    keyframes = values["keyframes"] or pack_keyframes([(0, values["init_size"])])
    for n, cam in enumerate(ids):
        rows = [{"camera_id": cam, "stream": "main", "path": "sample.mp4",
                 "start_at": start + timedelta(minutes=m), "end_at": start + timedelta(minutes=m + 1),
                 "bytes": values["bytes"], "init_size": values["init_size"], "fragments": values["fragments"],
                 "media_seconds": 60.0, "keyframes": keyframes, "codec": "h264", "width": 640, "height": 360,
                 "state": "closed"} for m in range(minutes)]
        with inst.db.session() as s:
            s.execute(insert(Recording), rows)
        if progress is not None:
            progress.print(f"index: camera {n + 1}/{cameras}", end="\r")
    index_seconds = time.monotonic() - t0
    client = TestClient(create_app(inst))
    token = client.post("/api/v1/auth/token", data={"username": "bench", "password": "bench-pass"}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    rng = random.Random(7)
    api_times, ceiling_times = [], []
    for _ in range(requests):
        cam = rng.choice(ids)
        at = start + timedelta(seconds=rng.uniform(0, days * 86400 - 120))
        params = {"start": at.isoformat(), "end": (at + timedelta(seconds=30)).isoformat()}
        t = time.perf_counter()
        with client.stream("GET", f"/api/v1/cameras/{cam}/clip.mp4", params=params, headers=headers) as response:
            first = next(response.iter_bytes())
            api_times.append(time.perf_counter() - t)
            assert response.status_code == 200 and first
        t = time.perf_counter()
        with open(sample, "rb") as fh:
            fh.read(values["init_size"])
            fh.seek(values["init_size"])
            fh.read(65536)
        ceiling_times.append(time.perf_counter() - t)
    inst.close()
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return {"benchmark": "seek", "cameras": cameras, "days": days, "index_rows": cameras * minutes,
            "index_build_seconds": round(index_seconds, 1), "requests": requests,
            "request_to_first_bytes": _percentiles(api_times), "ceiling_direct_file_read": _percentiles(ceiling_times),
            "goal_ms": 300, "database": "sqlite", "via": "HTTP API in-process (ASGI), clip.mp4 at a random instant"}


def _cpu(pid: int) -> float:
    from kuzet.bench.recording import _cpu_seconds, _tree

    return _cpu_seconds(_tree(pid))


WALL_TILES = 16


def _browser_latency(base: str, camera_id: int, samples: int = 20) -> dict:
    """In Chromium: time to the first frame of the camera page, glass-to-glass latency (capture time of the frame on
    screen, from the recorder's clock mapping, against now), and the worst tile's lag on a 16-tile wall."""
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--autoplay-policy=no-user-gesture-required"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "bench")
        page.fill("input[name=password]", "bench-pass")
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)
        t = time.perf_counter()
        page.goto(f"{base}/cameras/{camera_id}")
        page.wait_for_function("() => document.querySelector('video').currentTime > 0", timeout=20000)
        first_frame = time.perf_counter() - t
        lag_js = """(v) => { const c = v.kuzetClock; if (!c || !v.currentTime) return null;
                      return (Date.now() - (c.wall + (v.currentTime - c.media) * 1000)) / 1000; }"""
        page.wait_for_function("() => document.querySelector('video').kuzetClock !== undefined", timeout=20000)
        lat = []
        for _ in range(samples):
            page.wait_for_timeout(500)
            value = page.eval_on_selector("video", lag_js)
            if value is not None:
                lat.append(value)
        page.goto(f"{base}/wall?grid={WALL_TILES}")
        page.wait_for_function(f"""() => {{ const vs = [...document.querySelectorAll('[data-testid=tile-video]')];
            return vs.length === {WALL_TILES} && vs.every(v => v.kuzetClock && v.currentTime > 0); }}""",
                               timeout=60000)
        worst = []
        for _ in range(10):
            page.wait_for_timeout(500)
            lags = page.eval_on_selector_all("[data-testid=tile-video]", f"(vs) => vs.map({lag_js})")
            worst.append(max(x for x in lags if x is not None))
        browser.close()
    lat.sort()
    return {"first_frame_s": round(first_frame, 3),
            "latency_s": {"p50": round(statistics.median(lat), 3), "max": round(max(lat), 3), "samples": len(lat)},
            "wall_16_max_lag_s": round(max(worst), 3),
            "latency_note": "capture time = the recorder's wall clock of the frame (simulator on localhost, no "
                            "encoder delay)"}


def run_live_benchmark(viewers: int = 50, seconds: int = 15, progress=None) -> dict:  # noqa: ANN001
    import httpx
    import websockets

    from kuzet.bench.recording import _free_port, _wait_port
    from kuzet.config import load_settings
    from kuzet.installation import Installation
    from kuzet.services import accounts
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cameras import create_camera
    from kuzet.services.places import create_place

    work = Path(tempfile.mkdtemp(prefix="kuzet-live-"))
    sim_port, http_port = _free_port(), _free_port()
    sim = subprocess.Popen([sys.executable, "-m", "kuzet.cli.main", "sim", "--cameras", str(WALL_TILES), "--port",
                            str(sim_port)], stdout=subprocess.DEVNULL, start_new_session=True)
    # Video analysis off: this measures what viewers cost (analysis has its own `kuzet bench motion`).
    env = {**os.environ, "KUZET_DATA_DIR": str(work), "KUZET_STORAGE__MIN_FREE_BYTES": "0",
           "KUZET_OPERATIONS__ENABLED": "false"}
    inst = Installation.open(settings=load_settings(environ=env))
    inst.init()
    with inst.db.session() as s:
        place = create_place(s, SYSTEM, "district", "bench")
        cams = [create_camera(s, SYSTEM, inst.keys, name=f"live {k}", place_id=place.id,
                              main_url=f"rtsp://127.0.0.1:{sim_port}/cam{k}",
                              sub_url=f"rtsp://127.0.0.1:{sim_port}/cam{k}/sub").id for k in range(1, WALL_TILES + 1)]
        cam = cams[0]
        accounts.create_user(s, SYSTEM, "bench", "bench-pass", "platform_admin")
    inst.close()
    _wait_port(sim_port)
    server = subprocess.Popen([sys.executable, "-m", "kuzet.cli.main", "serve", "--port", str(http_port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{http_port}"
    try:
        _wait_port(http_port)
        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "bench", "password": "bench-pass"}).json()
        url = f"ws://127.0.0.1:{http_port}/api/v1/cameras/{cam}/live?token={token['access_token']}"
        deadline = time.time() + 60
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        while time.time() < deadline:
            if httpx.get(f"{base}/api/v1/cameras/{cam}/health", headers=headers).json().get("state") == "recording":
                break
            time.sleep(0.5)

        async def measure(n: int) -> dict:
            first_fragment: list[float] = []
            received = [0] * n
            stop = asyncio.Event()

            async def viewer(i: int) -> None:
                t = time.perf_counter()
                async with websockets.connect(url, max_size=None) as ws:
                    await ws.recv()
                    await ws.recv()
                    await ws.recv()
                    first_fragment.append(time.perf_counter() - t)
                    while not stop.is_set():
                        try:
                            msg = await asyncio.wait_for(ws.recv(), 1)
                            received[i] += len(msg)
                        except TimeoutError:
                            continue

            tasks = [asyncio.create_task(viewer(i)) for i in range(n)]
            await asyncio.sleep(3)
            c0, t0 = _cpu(server.pid), time.monotonic()
            await asyncio.sleep(seconds)
            c1, t1 = _cpu(server.pid), time.monotonic()
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            return {"viewers": n, "server_cpu_percent": round(100 * (c1 - c0) / (t1 - t0), 2),
                    "first_fragment": _percentiles(first_fragment),
                    "mbit_per_viewer": round(8 * sum(received) / n / (t1 - t0 + 3) / 1e6, 2)}

        one = asyncio.run(measure(1))
        many = asyncio.run(measure(viewers))
        browser = _browser_latency(base, cam) if Path("/usr/bin/chromium").exists() else None
    finally:
        server.terminate()
        server.wait(20)
        sim.terminate()
        sim.wait(10)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return {"benchmark": "live", "camera": "simulated 1080p 4 Mbit/s", "one_viewer": one, "many_viewers": many,
            "chromium": browser, "goals": {"first_frame_s": 1.0, "latency_p50_s": 0.8, "wall_16_max_lag_s": 1.5},
            "cpu_ratio_many_to_one": round(many["server_cpu_percent"] / max(one["server_cpu_percent"], 0.01), 2),
            "goal_ratio": 3.0,
            "note": "server CPU includes the recorder's ingest of the camera (the same single upstream feeds both)"}
