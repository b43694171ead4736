"""Real Chromium (Debian's) driven by Playwright against a real `kuzet serve` on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from kuzet.services.lifecycle import stop_child

CHROMIUM = os.environ.get("KUZET_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
        "--no-first-run", "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


def require_chromium() -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (make test installs it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def kuzet_server(data_dir: Path, env: dict | None = None) -> Iterator[str]:
    port = free_port()
    full_env = {**os.environ, "KUZET_DATA_DIR": str(data_dir), **(env or {})}
    log = open(data_dir / "server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "kuzet.cli.main", "serve", "--port", str(port)], env=full_env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise RuntimeError((data_dir / "server.log").read_text())
        yield base
    finally:
        stop_child(proc, 20, group=True)
        log.close()


@contextmanager
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                              args=ARGS)
        try:
            yield b
        finally:
            b.close()


def sign_in(page, base: str, username: str, password: str = "demo") -> None:  # noqa: ANN001
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url, timeout=15000)


def wait_recording(base: str, username: str, camera_ids: list[int], timeout: float = 60) -> None:
    token = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": "demo"}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = [httpx.get(f"{base}/api/v1/cameras/{c}/health", headers=headers).json().get("state")
                  for c in camera_ids]
        if all(s == "recording" for s in states):
            return
        time.sleep(0.5)
    raise AssertionError(f"cameras not recording: {states}")
