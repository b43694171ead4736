"""Servers of our own for the fault tests: a throw-away PostgreSQL cluster, a nats-server, `kuzet sim` and `kuzet
serve` as real subprocesses. Each can be stopped and started again; ``close()`` removes every process and directory it
made, and is safe to call twice. None of them ever touches the machine's shared services."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

import kuzet
from kuzet.services.lifecycle import stop_child

SRC = Path(kuzet.__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not listen on port {port} within {timeout:g} s")


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def child_env(**extra: str) -> dict[str, str]:
    """This environment, with our sources first on PYTHONPATH (the subprocess runs the code under test)."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": str(SRC) + (os.pathsep + path if path else ""), **extra}


def _stop_process(proc: subprocess.Popen | None, timeout: float = 30) -> int | None:
    """SIGTERM to the process group, SIGKILL if it lingers (ffmpeg children too); its return code."""
    return stop_child(proc, timeout, group=True)


class TempPostgres:
    """A PostgreSQL cluster of our own from Debian's binaries, run as the ``postgres`` OS user (initdb refuses root)
    in a temporary directory it owns, on a free port, its socket in that directory."""

    def __init__(self) -> None:
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[-3]))
        if not versions:
            raise FileNotFoundError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = Path(versions[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="kuzet-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.running = False
        shutil.chown(self.root, "postgres", "postgres")
        self._as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                           "--no-sync", "-E", "UTF8"])
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, command: list[str]) -> None:
        out = subprocess.run(["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {out.stderr or out.stdout}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                           str(self.root / "server.log"), "-w", "-t", "60", "start"])
        self.running = True

    def stop(self) -> None:
        """A fast shutdown, as a restart by the operator or a failover does: open sessions are cut."""
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"])
        self.running = False

    def close(self) -> None:
        if self.running:
            with contextlib.suppress(Exception):
                self.stop()
        if self.running:  # pg_ctl failed: stop the postmaster by its pid file
            with contextlib.suppress(Exception):
                pid = int((self.data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGQUIT)
        shutil.rmtree(self.root, ignore_errors=True)


class NatsServer:
    """``nats-server -js`` of our own on a free port; stopping and starting keeps its JetStream store (``-sd``)."""

    def __init__(self) -> None:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(binary).exists():
            raise FileNotFoundError("nats-server is not installed")
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="kuzet-faults-nats-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen([self.binary, "-js", "-sd", str(self.root / "store"), "-a", "127.0.0.1",
                                      "-p", str(self.port)], stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        wait_port(self.port, 30, "nats-server")

    def stop(self) -> None:
        _stop_process(self.proc)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class Simulator:
    """``kuzet sim`` in a process of its own."""

    def __init__(self, cameras: int, clip: Path, scenes: dict[int, str] | None = None) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="kuzet-faults-sim-"))
        command = [sys.executable, "-m", "kuzet.cli.main", "sim", "--cameras", str(cameras), "--port",
                   str(self.port), "--file", str(clip), "--resolution", "720p"]
        for k, scene in (scenes or {}).items():
            command += ["--scene", f"{k}={scene}"]
        log = open(self.root / "sim.log", "wb")  # noqa: SIM115 - handed to the child
        self.proc: subprocess.Popen | None = subprocess.Popen(command, env=child_env(), stdout=log,
                                                              stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        try:
            wait_port(self.port, 180, "kuzet sim")  # generates its clips at first use
        except AssertionError:
            self.close()
            raise

    def url(self, index: int, stream: str = "main") -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam{index}" + ("/sub" if stream == "sub" else "")

    def close(self) -> None:
        _stop_process(self.proc)
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)


class Serve:
    """``kuzet serve`` of an installation in a process of its own, with an API client logged in as ``username``."""

    def __init__(self, data_dir: Path, env: dict[str, str], username: str, password: str,
                 port: int | None = None, args: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        self.log_path = data_dir / f"serve-{self.port}.log"  # one per run of the server
        self.env = child_env(KUZET_DATA_DIR=str(data_dir), **env)
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child
        self.proc: subprocess.Popen | None = subprocess.Popen(
            [sys.executable, "-m", "kuzet.cli.main", "serve", "--port", str(self.port), *args], env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        self.returncode: int | None = None
        try:
            wait_port(self.port, 120, "kuzet serve")
            response = self.http.post("/api/v1/auth/token", data={"username": username, "password": password})
            assert response.status_code == 200, response.text
            self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str, timeout: float = 10, **params: Any) -> httpx.Response | None:
        """The response, or None when none came (refused, timed out)."""
        try:
            return self.http.get(path, params=params or None, timeout=timeout)
        except httpx.HTTPError:
            return None

    def status(self, path: str, timeout: float = 10) -> int | None:
        response = self.get(path, timeout)
        return response.status_code if response is not None else None

    def health(self, camera_id: int) -> dict:
        response = self.get(f"/api/v1/cameras/{camera_id}/health")
        return response.json() if response is not None and response.status_code == 200 else {}

    def wait_recording(self, camera_id: int, timeout: float = 60, reconnects: int = 0) -> dict:
        def ready() -> dict | None:
            h = self.health(camera_id)
            return h if h.get("state") == "recording" and h.get("reconnects", 0) >= reconnects else None

        return wait_until(ready, timeout, f"camera {camera_id} recording", interval=0.05)

    def metrics(self) -> dict[str, float]:
        """The unlabelled Prometheus samples of /metrics (empty if it is refused)."""
        response = self.get("/metrics")
        if response is None or response.status_code != 200:
            return {}
        out = {}
        for line in response.text.splitlines():
            if line and not line.startswith("#") and "{" not in line:
                name, _, value = line.partition(" ")
                with contextlib.suppress(ValueError):
                    out[name] = float(value)
        return out

    def process_counts(self) -> dict[str, int]:
        """Threads, open file descriptors and child processes (running and zombie) of the server."""
        children = zombies = 0
        for stat in glob.glob("/proc/[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.pid:
                    children += 1
                    zombies += fields[0] == "Z"
        return {"threads": len(os.listdir(f"/proc/{self.pid}/task")), "fds": len(os.listdir(f"/proc/{self.pid}/fd")),
                "children": children, "zombies": zombies}

    def problems(self) -> list[str]:
        """Lines of the server's log that report an error."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if " ERROR " in line or line.startswith("Traceback")]

    def children(self) -> list[int]:
        out = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(Path(stat).read_text().rsplit(")", 1)[1].split()[1]) == self.pid:
                    out.append(int(stat.split("/")[2]))
        return out

    def stopped_cleanly(self) -> bool:
        """Stop it (SIGTERM, as systemd does) and say whether it shut down gracefully: uvicorn finishes the app's
        shutdown, then re-raises the signal, so -SIGTERM is its clean exit."""
        code = self.stop()
        text = self.log_path.read_text(errors="replace")
        return code in (0, -signal.SIGTERM) and "Application shutdown complete" in text

    def stop(self) -> int | None:
        """A graceful stop (SIGTERM); the return code. Children it failed to stop are killed (each ffmpeg runs in a
        session of its own)."""
        if self.proc is not None:
            children = self.children() if self.alive() else []
            self.returncode = _stop_process(self.proc, timeout=60)
            self.proc = None
            for pid in children:
                with contextlib.suppress(OSError):
                    if b"ffmpeg" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        os.killpg(pid, signal.SIGKILL)
        return self.returncode

    def close(self) -> None:
        self.stop()
        self.http.close()
