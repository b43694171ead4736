"""The suite brings its own services (issue 17): with none running (``KUZET_TEST_SERVICES=own`` makes the run behave
as if none were), a throw-away PostgreSQL cluster, nats-server and mosquitto are started on free ports, every
PostgreSQL, NATS and MQTT variant runs (none skipped), and the servers are gone afterwards."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.services_support import answers, provide

ROOT = Path(__file__).resolve().parents[1]


def test_own_servers_start_work_and_stop() -> None:
    environ = {"KUZET_TEST_SERVICES": "own"}
    services = provide(environ)
    try:
        assert not services.missing, services.missing
        assert set(services.started) == {"KUZET_TEST_POSTGRES_URL", "KUZET_TEST_NATS_URL", "KUZET_TEST_MQTT_URL"}
        assert environ["KUZET_TEST_POSTGRES_URL"] != "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        engine = sa.create_engine(environ["KUZET_TEST_POSTGRES_URL"])
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == "test"
        engine.dispose()

        async def bus_and_broker() -> bytes:
            import aiomqtt
            import nats

            nc = await nats.connect(environ["KUZET_TEST_NATS_URL"])
            await nc.jetstream().add_stream(name="probe", subjects=["probe.>"])
            await nc.close()
            port = int(environ["KUZET_TEST_MQTT_URL"].rsplit(":", 1)[1])
            async with aiomqtt.Client("127.0.0.1", port) as client:
                await client.subscribe("kuzet/probe")
                await client.publish("kuzet/probe", b"hello")
                async for message in client.messages:
                    return bytes(message.payload)
            return b""

        assert asyncio.run(asyncio.wait_for(bus_and_broker(), 30)) == b"hello"
        assert any("started for this run" in line for line in services.header())
    finally:
        services.close()
    for url in environ.values():
        if "://" in url:
            assert not answers(url), f"{url} still answers after the session"


def test_a_run_without_services_skips_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUZET_TEST_")}
    env.update(KUZET_TEST_SERVICES="own", KUZET_REQUIRE_SERVICES="1",
               PYTHONPATH=str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t"),
         "tests/test_core_bus.py",
         "tests/test_ops_upgrade.py::test_previous_release_upgrades_with_rows_intact",
         "tests/test_operations_integrations.py::test_mqtt_bridge_publishes_frigate_style_events_a_subscriber_receives"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "skipped" not in done.stdout, done.stdout[-3000:]
    passed = int(re.search(r"(\d+) passed", done.stdout).group(1))
    assert passed >= 6, done.stdout[-2000:]
    assert re.search(r"postgres: postgresql\+psycopg://postgres@127\.0\.0\.1:(?!5432)\d+/test \(started for this run\)",
                     done.stdout), done.stdout[:3000]
