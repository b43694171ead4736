"""Fixtures shared by the whole suite.

Every test that touches the database runs twice: on the embedded default (SQLite) and on PostgreSQL. Each
PostgreSQL test gets a schema of its own in the ``test`` database, so runs never see each other's rows.
Where no PostgreSQL, NATS or MQTT server runs (and no ``KUZET_TEST_*`` URL names one), the session starts
throw-away ones and stops them at the end (tests/services_support.py). Set ``KUZET_REQUIRE_SERVICES=1`` (CI does) to
fail instead of skip when a service is still unreachable.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kuzet.config import load_settings
from kuzet.installation import Installation

PG_URL = os.environ.get("KUZET_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("KUZET_TEST_NATS_URL", "nats://127.0.0.1:4222")
REQUIRE_SERVICES = os.environ.get("KUZET_REQUIRE_SERVICES") == "1"
BACKENDS = ["sqlite", "postgresql"]
# Every installation the suite makes refuses database calls on an event loop's thread (KUZET_TEST_LOOP_GUARD=0: off).
LOOP_GUARD = os.environ.get("KUZET_TEST_LOOP_GUARD", "1") != "0"
_services = None  # tests/services_support.TestServices of this session


def pytest_configure(config: pytest.Config) -> None:
    """Find or start PostgreSQL, NATS and MQTT before any test module reads PG_URL / NATS_URL."""
    global PG_URL, NATS_URL, _services
    from tests.services_support import provide

    _services = provide()
    PG_URL = _services.urls.get("KUZET_TEST_POSTGRES_URL", PG_URL)
    NATS_URL = _services.urls.get("KUZET_TEST_NATS_URL", NATS_URL)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _services is not None:
        _services.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    return _services.header() if _services is not None else []


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # noqa: ANN001
    if _services is not None and _services.missing:
        for line in _services.header():
            if line.startswith("!!!"):
                terminalreporter.write_line(line, red=True, bold=True)


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} unavailable: {exc}"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


class PostgresSchema:
    """A throw-away schema in the test database."""

    def __init__(self) -> None:
        import sqlalchemy as sa

        self.name = f"kz_{uuid.uuid4().hex[:12]}"
        self.engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{self.name}"')
        self.url = f"{PG_URL}?options=-csearch_path%3D{self.name}"

    def drop(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
        self.engine.dispose()


def make_installation(backend: str, data_dir: Path,
                      kind: type[Installation] = Installation) -> tuple[Installation, PostgresSchema | None]:
    schema = None
    env = {"KUZET_DATA_DIR": str(data_dir)}
    if backend == "postgresql":
        try:
            schema = PostgresSchema()
        except Exception as exc:  # noqa: BLE001
            _unavailable("PostgreSQL", exc)
        env["KUZET_DATABASE_URL"] = schema.url
    settings = load_settings(environ=env)
    inst = kind.open(settings=settings)
    inst.init()
    if LOOP_GUARD:
        from kuzet.store.db import forbid_on_event_loop

        forbid_on_event_loop(inst.db.engine)  # no database call on a running event loop's thread (issue 16)
    return inst, schema


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def inst(backend: str, tmp_path: Path) -> Iterator[Installation]:
    installation, schema = make_installation(backend, tmp_path / "data")
    yield installation
    installation.close()
    if schema:
        schema.drop()


@pytest.fixture
def client(inst: Installation) -> Iterator[TestClient]:
    from kuzet.api.app import create_app

    with TestClient(create_app(inst)) as test_client:
        yield test_client


@pytest.fixture(scope="module", params=BACKENDS)
def demo_inst(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    """An installation holding the demo city, shared by the tests of one module (read-mostly tests)."""
    from kuzet.services.demo import seed_demo_city
    from tests.demo_support import DemoInstallation

    installation, schema = make_installation(request.param, tmp_path_factory.mktemp("demo") / "data",
                                             DemoInstallation)
    with installation.db.session() as session:
        installation.city = seed_demo_city(session, installation.keys)
    yield installation
    installation.close()
    if schema:
        schema.drop()


@pytest.fixture(scope="module")
def demo_client(demo_inst: Installation) -> Iterator[TestClient]:
    from kuzet.api.app import create_app

    with TestClient(create_app(demo_inst)) as test_client:
        yield test_client


def login(client: TestClient, username: str, password: str = "demo") -> dict[str, str]:
    """Bearer headers for a user, through the OAuth2 password flow."""
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="session")
def media_dir() -> Path | None:
    """``../shared/media`` (real CCTV footage) or KUZET_MEDIA_DIR; tests that need it skip where it is absent."""
    env = os.environ.get("KUZET_MEDIA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "media")
    for path in candidates:
        if (path / "vtest_h264.mp4").exists():
            return path
    return None
