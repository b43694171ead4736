"""The capability registry: every declared part exists and is of its kind, the app, the CLI and the console read it,
and ``kuzet serve --role`` starts only the services of the chosen roles."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable

import pytest
from fastapi import APIRouter
from typer.testing import CliRunner

from kuzet import capabilities
from kuzet.capabilities import ALL_ROLES, CAPABILITIES, NodeRole, parse_roles
from kuzet.installation import Installation
from kuzet.runtime import Runtime

RECORDER_SIDE = {"recorder", "retention", "uploader", "push-ingest"}
WORKER_SIDE = {"analysis", "event-retention", "webhooks", "mqtt", "cloud-checks", "bodycam-housekeeping",
               "bodycam-redactions", "audit-witness", "backup-schedule"}


def test_every_declared_part_exists_and_is_of_its_kind() -> None:
    names = [cap.name for cap in CAPABILITIES]
    assert len(names) == len(set(names))
    for cap in CAPABILITIES:
        for part in cap.routers:
            assert isinstance(part.load(), APIRouter), part
        for part in cap.commands:
            assert callable(part.load()) and len(inspect.signature(part.load()).parameters) == 1, part
    for module in capabilities.page_modules():
        assert isinstance(module.router, APIRouter), module.__name__
    for module in capabilities.demo_modules():
        assert hasattr(module, "seed") or hasattr(module, "running"), module.__name__
    declared = [s.name for s in capabilities.background_services()]
    assert len(declared) == len(set(declared))
    assert set(declared) == RECORDER_SIDE | WORKER_SIDE | {"viewing-sweep"}
    for service in capabilities.background_services():
        assert callable(service.build.load()), service.build


def test_the_console_finds_exactly_the_page_modules_there_are() -> None:
    import pkgutil

    from kuzet.web import pages

    there = {f"kuzet.web.pages.{m.name}" for m in pkgutil.iter_modules(pages.__path__)}
    assert {m.__name__ for m in capabilities.page_modules()} == there


def test_the_app_mounts_every_declared_router(inst: Installation) -> None:
    from fastapi.routing import APIRoute

    from kuzet.api.app import create_app

    paths = set(create_app(inst).openapi()["paths"])
    declared = [route for router in capabilities.routers() for route in router.routes
                if isinstance(route, APIRoute) and route.include_in_schema]
    assert len(declared) > 100
    assert {f"/api/v1{route.path}" for route in declared} <= paths


def test_roles_are_read_from_words() -> None:
    assert parse_roles(["all"]) == ALL_ROLES
    assert parse_roles(["api,worker"]) == {NodeRole.API, NodeRole.WORKER}
    assert parse_roles(["recorder", "recorder"]) == {NodeRole.RECORDER}
    for bad in (["cook"], [""], ["api,"]):
        with pytest.raises(ValueError, match="api, recorder, worker or all"):
            parse_roles(bad)


def test_serve_refuses_an_unknown_role_by_name() -> None:
    from kuzet.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--role", "cook"])
    assert result.exit_code != 0
    assert "unknown role 'cook'" in result.output


def _started(inst: Installation, roles: Iterable[NodeRole]) -> tuple[set[str], dict[str, object]]:
    """The services a runtime of ``roles`` starts, and the running parts it left on the installation."""

    async def scenario() -> tuple[set[str], dict[str, object]]:
        runtime = Runtime(inst, roles)
        await runtime.start()
        try:
            parts = inst.running
            running = {"bus": parts.bus, "recorder": parts.recorder, "hub": parts.hub, "analysis": parts.analysis,
                       "webhooks": parts.webhooks}
            return {s.name for s in runtime.services}, running
        finally:
            await runtime.stop()

    return asyncio.run(scenario())


def test_a_worker_node_runs_no_recorder(inst: Installation) -> None:
    started, running = _started(inst, parse_roles(["worker"]))
    assert started & RECORDER_SIDE == set() and "viewing-sweep" not in started
    assert {"analysis", "event-retention", "webhooks", "mqtt", "cloud-checks", "audit-witness"} <= started
    assert running["recorder"] is None and running["hub"] is None
    assert running["bus"] is not None and running["analysis"] is not None and running["webhooks"] is not None


def test_a_recorder_node_runs_no_analysis_or_webhooks(inst: Installation) -> None:
    started, running = _started(inst, parse_roles(["recorder"]))
    assert started & WORKER_SIDE == set() and "viewing-sweep" not in started
    assert {"recorder", "retention"} <= started
    assert running["recorder"] is not None and running["hub"] is not None
    assert running["analysis"] is None and running["webhooks"] is None


def test_an_api_node_runs_neither(inst: Installation) -> None:
    started, running = _started(inst, parse_roles(["api"]))
    assert started == {"viewing-sweep"}
    assert running["recorder"] is None and running["analysis"] is None and running["bus"] is not None


def test_all_roles_run_everything_switched_on(inst: Installation) -> None:
    started, _running = _started(inst, ALL_ROLES)
    # no S3 storage, no push ingest, no backup folder in a fresh installation
    assert started == (RECORDER_SIDE | WORKER_SIDE | {"viewing-sweep"}) - {"uploader", "push-ingest",
                                                                             "backup-schedule"}
