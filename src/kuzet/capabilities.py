"""Every capability of Kuzet and what it brings, in one place: its API routers, CLI commands, console pages, demo
content and long-running services with the role each service runs in.

``api/app.py`` (routers), ``cli/main.py`` (commands), ``web`` (pages and their navigation), ``runtime.py`` (services)
and ``services/demo_extras.py`` (demo content) all read ``CAPABILITIES``; nothing else lists capabilities. The parts
are named by module (``Part``) and imported only when a reader needs them, so ``kuzet --help`` does not import the
API and the API does not import the CLI. ``tests/test_capabilities.py`` loads every part and checks its kind.

Roles (``kuzet serve --role``): ``api`` nodes answer HTTP and keep per-process viewing state, ``recorder`` nodes pull
the cameras and write (and upload, and clean) their own disk, ``worker`` nodes do the rest: analysis, event
retention, webhooks, MQTT, billing checks, body-camera housekeeping, the audit witness and backups. Every role
connects the event bus and serves HTTP (health, and on a recorder its live streams). A capability without a part of
some kind leaves it empty.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kuzet.installation import Installation
    from kuzet.services.lifecycle import Service


class NodeRole(StrEnum):
    API = "api"
    RECORDER = "recorder"
    WORKER = "worker"


ALL_ROLES: frozenset[NodeRole] = frozenset(NodeRole)


def parse_roles(words: Iterable[str]) -> frozenset[NodeRole]:
    """``api``, ``recorder``, ``worker`` or ``all``, several allowed (also comma-separated); ValueError names the
    word that is none of them."""
    roles: set[NodeRole] = set()
    for word in (w.strip() for text in words for w in str(text).split(",")):
        if word == "all":
            roles |= ALL_ROLES
        elif word in NodeRole._value2member_map_:
            roles.add(NodeRole(word))
        else:
            raise ValueError(f"unknown role {word!r}: use api, recorder, worker or all")
    if not roles:
        raise ValueError("no role given: use api, recorder, worker or all")
    return frozenset(roles)


@dataclass(frozen=True)
class Part:
    """``module:attribute``, imported when needed."""

    module: str
    attribute: str

    def load(self) -> Any:  # noqa: ANN401 - a router, a function or a class, by the kind of part
        return getattr(importlib.import_module(self.module), self.attribute)

    def __str__(self) -> str:
        return f"{self.module}:{self.attribute}"


def _part(ref: str) -> Part:
    module, _, attribute = ref.partition(":")
    return Part(module, attribute)


@dataclass(frozen=True)
class BackgroundService:
    """A long-running service: ``build(inst)`` makes it (None when the installation has it switched off, e.g. the
    uploader without S3 storage); it runs on the nodes of ``role``."""

    name: str
    role: NodeRole
    build: Part

    def make(self, inst: Installation) -> Service | None:
        factory: Callable[[Installation], Service | None] = self.build.load()
        return factory(inst)


@dataclass(frozen=True)
class Capability:
    name: str
    routers: tuple[Part, ...] = ()  # fastapi.APIRouter, mounted under /api/v1 in this order
    commands: tuple[Part, ...] = ()  # register(app: typer.Typer) -> None
    pages: tuple[str, ...] = ()  # modules with `router` (and optionally `NAV`) of the web console
    demo: str | None = None  # module with `seed(inst, city)` and/or the context manager `running(inst)`
    services: tuple[BackgroundService, ...] = ()  # in start order


def _parts(*refs: str) -> tuple[Part, ...]:
    return tuple(_part(ref) for ref in refs)


def _service(name: str, role: NodeRole, ref: str) -> BackgroundService:
    return BackgroundService(name, role, _part(ref))


_R = "kuzet.api.routes."
_S = "kuzet.services."

# In order: routes, commands and pages are mounted in it, services started in it (recording first: the others feed on
# its streams), and stopped in the reverse.
CAPABILITIES: tuple[Capability, ...] = (
    Capability(
        "core",
        routers=_parts(*(f"{_R}{m}:router" for m in ("health", "auth", "directory", "grants", "cameras", "audit"))),
        commands=_parts("kuzet.cli.core:register"),
        pages=("kuzet.web.pages.core", "kuzet.web.pages.settings")),
    Capability(
        "recording",
        routers=_parts(f"{_R}recording:router"),
        commands=_parts("kuzet.cli.recording:register"),
        demo=f"{_S}recording.demo",
        services=(_service("recorder", NodeRole.RECORDER, f"{_S}recording.runtime:RecorderService"),
                  _service("retention", NodeRole.RECORDER, f"{_S}recording.runtime:RetentionService"),
                  _service("uploader", NodeRole.RECORDER, f"{_S}recording.runtime:uploader_service"))),
    Capability(
        "watching",
        routers=_parts(f"{_R}watching:router", f"{_R}exports:router"),
        commands=_parts("kuzet.cli.watching:register"),
        services=(_service("viewing-sweep", NodeRole.API, f"{_S}watching.runtime:ViewingSweep"),)),
    Capability(
        "operations",
        routers=_parts(f"{_R}operations:router", f"{_R}alarms:router", f"{_R}integrations:router"),
        commands=_parts("kuzet.cli.operations:register"),
        pages=("kuzet.web.pages.operations",),
        demo=f"{_S}operations.demo",
        services=(_service("analysis", NodeRole.WORKER, f"{_S}operations.analysis:AnalysisService"),
                  _service("event-retention", NodeRole.WORKER, f"{_S}operations.analysis:EventRetentionService"),
                  _service("webhooks", NodeRole.WORKER, f"{_S}operations.webhooks:WebhookService"),
                  _service("mqtt", NodeRole.WORKER, f"{_S}operations.mqtt:MqttBridge"))),
    Capability(
        "safeyard",
        routers=_parts(f"{_R}safeyard:router"),
        commands=_parts("kuzet.cli.safeyard:register"),
        pages=("kuzet.web.pages.safeyard",),
        demo=f"{_S}safeyard.demo"),
    Capability(
        "crime",
        routers=_parts(f"{_R}crime:router"),
        commands=_parts("kuzet.cli.crime:register"),
        pages=("kuzet.web.pages.crime",),
        demo=f"{_S}crime.demo"),
    Capability(
        "onboarding",
        routers=_parts(f"{_R}onboarding:router", f"{_R}onboarding:ingest_router"),
        commands=_parts("kuzet.cli.onboarding:register"),
        pages=("kuzet.web.pages.onboarding",),
        services=(_service("push-ingest", NodeRole.RECORDER, f"{_S}onboarding.runtime:push_service"),)),
    Capability(
        "cloud",
        routers=_parts(f"{_R}cloud:router", f"{_R}cloud_agreements:router", f"{_R}my:router"),
        commands=_parts("kuzet.cli.cloud:register"),
        pages=("kuzet.web.pages.cloud",),
        demo=f"{_S}cloud.demo",
        services=(_service("cloud-checks", NodeRole.WORKER, f"{_S}cloud.runtime:CloudChecks"),)),
    Capability(
        "bodycams",
        routers=_parts(f"{_R}bodycams:router"),
        commands=_parts("kuzet.cli.bodycams:register"),
        pages=("kuzet.web.pages.bodycams",),
        demo=f"{_S}bodycams.demo",
        services=(_service("bodycam-housekeeping", NodeRole.WORKER, f"{_S}bodycams.runtime:BodycamHousekeeping"),
                  _service("bodycam-redactions", NodeRole.WORKER, f"{_S}bodycams.runtime:BodycamRedactions"))),
    Capability(
        "audit",
        pages=("kuzet.web.pages.audit",),
        services=(_service("audit-witness", NodeRole.WORKER, f"{_S}audit.runtime:WitnessPublisher"),)),
    Capability(
        "backup",
        commands=_parts("kuzet.cli.backup:register"),
        services=(_service("backup-schedule", NodeRole.WORKER, f"{_S}backup.runtime:scheduled_backup"),)),
    Capability(  # `kuzet bench`, to which the capabilities above add their benchmarks
        "bench",
        commands=_parts("kuzet.cli.bench:register")),
)


def capability(name: str) -> Capability:
    for cap in CAPABILITIES:
        if cap.name == name:
            return cap
    raise KeyError(name)


def routers() -> Iterator[Any]:
    """Every capability's API routers, in mounting order."""
    for cap in CAPABILITIES:
        for part in cap.routers:
            yield part.load()


def register_commands(app: Any) -> None:  # noqa: ANN401 - a typer.Typer
    for cap in CAPABILITIES:
        for part in cap.commands:
            part.load()(app)


def page_modules() -> Iterator[Any]:
    """The console's page modules, in mounting order."""
    for cap in CAPABILITIES:
        for name in cap.pages:
            yield importlib.import_module(name)


def demo_modules() -> Iterator[Any]:
    for cap in CAPABILITIES:
        if cap.demo is not None:
            yield importlib.import_module(cap.demo)


def background_services(roles: Iterable[NodeRole] = ALL_ROLES) -> Iterator[BackgroundService]:
    """The declared services of ``roles``, in start order."""
    wanted = frozenset(roles)
    for cap in CAPABILITIES:
        for service in cap.services:
            if service.role in wanted:
                yield service


def services(inst: Installation, roles: Iterable[NodeRole] = ALL_ROLES) -> list[Service]:
    """The services this installation runs in ``roles``, made and ready to start, in start order (those switched off
    by the installation's settings left out)."""
    made = (declared.make(inst) for declared in background_services(roles))
    return [service for service in made if service is not None]
