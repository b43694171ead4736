"""The push ingest's servers, run beside ``kuzet serve``: nginx with its RTMP module (Debian ``libnginx-mod-rtmp``)
for RTMP, and GStreamer's RTSP server (Debian ``gir1.2-gst-rtsp-server-1.0``, ``rtsp_relay.py``) for RTSP
ANNOUNCE/RECORD, which remuxes what it receives into the same nginx. Both ask Kuzet before accepting a stream.

Each is a supervised child process: started with the server, restarted a second after it dies, stopped with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import time
from pathlib import Path

from kuzet.config import Settings
from kuzet.services.onboarding.push import APPLICATION

log = logging.getLogger("kuzet.push")

GI_PYTHON = "/usr/bin/python3"  # Debian's Python, which has GStreamer's introspection bindings (python3-gi)


class RelayError(RuntimeError):
    pass


def callback_url(settings: Settings, secret: str) -> str:
    host = settings.http.host if settings.http.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.http.port}/api/v1/ingest/publish?secret={secret}"


def nginx_conf(settings: Settings, workdir: Path, on_publish: str) -> str:
    push = settings.push
    listen = f"[{push.listen}]:{push.rtmp_port}" if ":" in push.listen else f"{push.listen}:{push.rtmp_port}"
    return f"""# Written by Kuzet at every start (services/onboarding/relay.py); changes here are lost.
load_module {push.rtmp_module};
daemon off;
master_process on;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log stderr warn;
events {{ worker_connections 4096; }}
rtmp {{
    server {{
        listen {listen};
        chunk_size 4096;
        notify_method post;
        application {APPLICATION} {{
            live on;
            record off;
            # Only the recorder (and the RTSP relay) on this host read the streams.
            allow play 127.0.0.1;
            deny play all;
            # Every publisher is asked about: Kuzet checks the camera's key (2xx lets it in, anything else refuses).
            on_publish {on_publish};
            notify_relay_redirect off;
        }}
    }}
}}
"""


def nginx_binary(settings: Settings) -> str:
    found = settings.push.nginx or shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                                                else None)
    if not found:
        raise RelayError("nginx is not installed (Debian: apt-get install nginx libnginx-mod-rtmp)")
    if not settings.push.rtmp_module.exists():
        raise RelayError(f"nginx's RTMP module {settings.push.rtmp_module} is missing "
                         "(Debian: apt-get install libnginx-mod-rtmp)")
    return found


def relay_command(settings: Settings, on_publish: str) -> list[str]:
    script = Path(__file__).with_name("rtsp_relay.py")
    return [GI_PYTHON, str(script), "--listen", settings.push.listen, "--port", str(settings.push.rtsp_port),
            "--callback", on_publish, "--rtmp", f"rtmp://127.0.0.1:{settings.push.rtmp_port}/{APPLICATION}"]


def wait_port(host: str, port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.1)
    return False


class Supervised:
    """One child process, restarted a second after it ends, until stopped."""

    def __init__(self, name: str, command: list[str], cwd: Path) -> None:
        self.name = name
        self.command = command
        self.cwd = cwd
        self.process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.starts = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"push-{self.name}")

    async def _run(self) -> None:
        while not self._stopping:
            self.starts += 1
            self.process = await asyncio.create_subprocess_exec(
                *self.command, cwd=self.cwd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, start_new_session=True)
            assert self.process.stderr is not None
            while line := await self.process.stderr.readline():
                log.warning("%s: %s", self.name, line.decode("utf-8", "replace").rstrip())
            code = await self.process.wait()
            if self._stopping:
                return
            log.error("%s exited with %s; restarting in 1 s", self.name, code)
            await asyncio.sleep(1)

    async def stop(self) -> None:
        self._stopping = True
        proc = self.process
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class PushIngest:
    """nginx-rtmp and the RTSP relay for this installation; ``secret`` authenticates their calls to Kuzet."""

    def __init__(self, settings: Settings, *, rtsp: bool = True, callback: str | None = None) -> None:
        self.settings = settings
        self.secret = secrets.token_urlsafe(32)
        self.callback = callback or callback_url(settings, self.secret)
        self.workdir = settings.data_dir / "push"
        self.rtsp = rtsp and Path(GI_PYTHON).exists()
        self.children: list[Supervised] = []

    async def start(self) -> None:
        binary = nginx_binary(self.settings)
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(nginx_conf(self.settings, self.workdir, self.callback), encoding="utf-8")
        nginx = Supervised("nginx-rtmp", [binary, "-p", str(self.workdir), "-c", str(conf), "-e", "stderr"],
                           self.workdir)
        self.children.append(nginx)
        await nginx.start()
        if not await asyncio.to_thread(wait_port, self.settings.push.listen, self.settings.push.rtmp_port):
            raise RelayError(f"nginx-rtmp did not listen on port {self.settings.push.rtmp_port} within 10 s")
        if self.rtsp:
            relay = Supervised("rtsp-relay", relay_command(self.settings, self.callback), self.workdir)
            self.children.append(relay)
            await relay.start()
            if not await asyncio.to_thread(wait_port, self.settings.push.listen, self.settings.push.rtsp_port, 20):
                raise RelayError(f"the RTSP relay did not listen on port {self.settings.push.rtsp_port} within 20 s")
        log.info("push ingest: rtmp on %s%s", self.settings.push.rtmp_port,
                 f", rtsp on {self.settings.push.rtsp_port}" if self.rtsp else "")

    async def stop(self) -> None:
        for child in reversed(self.children):
            await child.stop()
        self.children.clear()


def python_has_gi() -> bool:
    """Whether Debian's Python can run the RTSP relay (python3-gi and GStreamer's RTSP server bindings)."""
    import subprocess

    if not Path(GI_PYTHON).exists():
        return False
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer")
    return subprocess.run([GI_PYTHON, "-c", probe], capture_output=True, timeout=30).returncode == 0


__all__ = ["PushIngest", "RelayError", "callback_url", "nginx_conf", "python_has_gi"]
