"""The suite brings its own PostgreSQL, NATS and MQTT when none is there (issue 17, "Tests bring their own services").

For each service: a ``KUZET_TEST_*`` URL in the environment is used as it is; else the default address (PostgreSQL
127.0.0.1:5432 database ``test``, NATS 127.0.0.1:4222, Mosquitto 127.0.0.1:1883) if something answers there; else a
throw-away server of our own on a free port — Debian's PostgreSQL binaries with a temporary cluster, ``nats-server
-js``, ``mosquitto`` — whose URL is put into the environment (so child processes use it too) and which is stopped when
the session ends. ``KUZET_TEST_SERVICES=own`` starts our own even where the defaults answer (a run that must not
touch the machine's servers). A service that can be neither found nor started is reported at the top and the end of
the run, loudly; its tests then skip (or fail with ``KUZET_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULTS = {
    "KUZET_TEST_POSTGRES_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "KUZET_TEST_NATS_URL": "nats://127.0.0.1:4222",
    "KUZET_TEST_MQTT_URL": "mqtt://127.0.0.1:1883",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str, timeout: float = 0.5) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=timeout):
            return True
    except OSError:
        return False


def _wait(port: int, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if answers(f"tcp://127.0.0.1:{port}", 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start listening on port {port} within {seconds:.0f} s")


class OwnPostgres:
    """A temporary cluster from Debian's binaries (the newest under /usr/lib/postgresql), on a free port, with a
    database ``test``. initdb refuses to run as root: as root the cluster belongs to the ``postgres`` user."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[-3]))
        if not found:
            raise FileNotFoundError("no PostgreSQL server binaries (apt-get install postgresql)")
        self.bin = Path(found[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="kuzet-test-pg-"))
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.root / "data"), "-A", "trust", "-U", "postgres", "--no-sync", "-E",
                  "UTF8")
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                        "-c max_connections=200", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "test")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr or done.stdout}")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/test"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "-t", "60", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


class OwnProcess:
    """A server binary run on a free port until the session ends."""

    def __init__(self, what: str, binary: str, args: list[str], port: int, root: Path) -> None:
        self.root = root
        log = open(root / "server.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen([binary, *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        try:
            _wait(port, 30, what)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        shutil.rmtree(self.root, ignore_errors=True)


def _binary(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()),
                                       None)
    if not found:
        raise FileNotFoundError(f"{name} is not installed (Makefile SYSTEM_PACKAGES)")
    return found


def own_nats() -> tuple[OwnProcess, str]:
    root, port = Path(tempfile.mkdtemp(prefix="kuzet-test-nats-")), free_port()
    server = OwnProcess("nats-server", _binary("nats-server"),
                        ["-js", "-sd", str(root / "store"), "-a", "127.0.0.1", "-p", str(port)], port, root)
    return server, f"nats://127.0.0.1:{port}"


def own_mosquitto() -> tuple[OwnProcess, str]:
    root, port = Path(tempfile.mkdtemp(prefix="kuzet-test-mqtt-")), free_port()
    config = root / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    os.chmod(root, 0o755)  # mosquitto started as root drops to its own user, which must read the config
    os.chmod(config, 0o644)
    server = OwnProcess("mosquitto", _binary("mosquitto"), ["-c", str(config)], port, root)
    return server, f"mqtt://127.0.0.1:{port}"


@dataclass
class TestServices:
    """What the session uses: URLs by variable, what we started (to stop), and what is missing (to say so)."""

    urls: dict[str, str] = field(default_factory=dict)
    started: dict[str, object] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def header(self) -> list[str]:
        lines = []
        for var, url in self.urls.items():
            how = "started for this run" if var in self.started else "given" if var in os.environ else "found"
            lines.append(f"{var.removeprefix('KUZET_TEST_').removesuffix('_URL').lower()}: {url} ({how})")
        for var, why in self.missing.items():
            lines.append(f"!!! {var.removeprefix('KUZET_TEST_').removesuffix('_URL')} UNAVAILABLE — its tests will "
                         f"skip: {why}")
        return lines

    def close(self) -> None:
        for server in self.started.values():
            with contextlib.suppress(Exception):
                server.close()  # type: ignore[attr-defined]
        self.started.clear()


STARTERS = {
    "KUZET_TEST_POSTGRES_URL": lambda: (lambda pg: (pg, pg.url))(OwnPostgres()),
    "KUZET_TEST_NATS_URL": own_nats,
    "KUZET_TEST_MQTT_URL": own_mosquitto,
}


def provide(environ: dict[str, str] | None = None) -> TestServices:
    """Find or start each service; the URLs chosen are also written into ``os.environ``."""
    environ = os.environ if environ is None else environ
    services = TestServices()
    own = environ.get("KUZET_TEST_SERVICES") == "own"
    for var, default in DEFAULTS.items():
        if environ.get(var):
            services.urls[var] = environ[var]
            continue
        if not own and answers(default):
            services.urls[var] = default
            continue
        try:
            server, url = STARTERS[var]()
        except Exception as exc:  # noqa: BLE001 - reported loudly; the tests that need it skip or fail
            services.missing[var] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            continue
        services.started[var] = server
        services.urls[var] = url
        environ[var] = url
    return services
