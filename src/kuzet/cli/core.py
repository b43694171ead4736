"""Core commands: init, serve, demo, db, user, camera, audit."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from kuzet.cli.common import (
    DataOpt,
    JsonOpt,
    console,
    err_console,
    fail,
    open_installation,
    print_json,
    progress_bar,
    rejected,
)
from kuzet.domain.access import Role
from kuzet.installation import Installation

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
camera_app = typer.Typer(help="The camera registry.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(serve)
    app.command()(demo)
    app.add_typer(db_app, name="db")
    app.add_typer(user_app, name="user")
    app.add_typer(camera_app, name="camera")
    app.add_typer(audit_app, name="audit")


def init(data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Create a data directory: commented starter config, keys, database schema. Never overwrites anything."""
    inst = open_installation(data, must_exist=False)
    created = inst.init()
    if json_out:
        print_json({"data_dir": str(inst.settings.data_dir), "created": [str(p) for p in created]})
        return
    console.print(f"Kuzet installation in [bold]{inst.settings.data_dir}[/]")
    for path in created:
        console.print(f"  created {path}")
    console.print("Next: [bold]kuzet user add admin --role platform_admin[/], then [bold]kuzet serve[/]")


def _run_server(inst: Installation, host: str, port: int, services: bool = True) -> None:
    import uvicorn

    from kuzet.api.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(inst, run_services=services)
    # Video does not compress: per-message deflate would only burn CPU for every live viewer.
    config = uvicorn.Config(app, host=host, port=port, log_level="info", ws="websockets-sansio",
                            ws_per_message_deflate=False)
    server = uvicorn.Server(config)
    for name in ("uvicorn.access", "uvicorn.error", "kuzet"):
        logging.getLogger(name).addFilter(SecretFilter())
    # httpx logs every request URL at INFO (webhook URLs may carry a token in their query): warnings only.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    server.run()


class SecretFilter(logging.Filter):
    """Tokens in query strings and passwords in URLs never reach the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        from kuzet.services.cameras import redact

        if record.args:
            record.args = tuple(_scrub(redact(a)) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = _scrub(redact(record.msg))
        return True


def _scrub(text: str) -> str:
    import re

    return re.sub(r"((?:access_)?token=)[^&\s\"]+", r"\1***", text)


def serve(
    data: DataOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (config http.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (config http.port).")] = None,
) -> None:
    """Run everything: API, web console, recorder and the other services of this installation."""
    inst = open_installation(data)
    from kuzet.store.schema import current_revision, head_revision

    if current_revision(inst.db) != head_revision():
        fail("the database schema is not up to date: run `kuzet db upgrade`")
    _run_server(inst, host or inst.settings.http.host, port or inst.settings.http.port)


def demo(
    data: Annotated[Path, typer.Option("--data", envvar="KUZET_DATA_DIR", help="Data directory.")] = Path("demo-data"),
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    seed_only: Annotated[bool, typer.Option("--seed-only", help="Create the demo city and exit.")] = False,
) -> None:
    """Seed the demo city (once) and serve it, with simulated cameras streaming and recording."""
    from kuzet.services.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, is_seeded, seed_demo_city
    from kuzet.services.demo_extras import demo_runtime, seed_capabilities

    inst = open_installation(data, must_exist=False)
    inst.init()
    with inst.db.session() as session:
        fresh = not is_seeded(session)
        if fresh:
            with err_console.status("seeding the demo city…"):
                city = seed_demo_city(session, inst.keys)
    if fresh:
        seed_capabilities(inst, city)
    table = Table(title=f"Kuzet demo — http://{host}:{port}/  (password for every account: {DEMO_PASSWORD})")
    table.add_column("account")
    table.add_column("role")
    table.add_column("sees")
    for username, role, description in DEMO_ACCOUNTS:
        table.add_row(username, role.value, description)
    console.print(table)
    if seed_only:
        return
    import signal
    import sys

    # Uvicorn re-raises SIGTERM after its graceful shutdown; as SystemExit it lets the demo stop its simulator too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with demo_runtime(inst):
        _run_server(inst, host, port)


@db_app.command("upgrade")
def db_upgrade(data: DataOpt = None) -> None:
    """Bring the database schema to the newest version (Alembic)."""
    from kuzet.store.schema import current_revision, upgrade

    inst = open_installation(data, must_exist=False)
    before = current_revision(inst.db)
    upgrade(inst.db)
    after = current_revision(inst.db)
    console.print(f"schema: {before or 'empty'} → {after}")


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[Role, typer.Option(help="Role of the user.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          envvar="KUZET_NEW_PASSWORD", help="Password (prompted if omitted).")],
    organisation: Annotated[str | None, typer.Option(help="Organisation name.")] = None,
    full_name: Annotated[str, typer.Option(help="Full name.")] = "",
    language: Annotated[str, typer.Option(help="ru, kk or en.")] = "ru",
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a user (the password is hashed with argon2id)."""
    from kuzet.services import accounts
    from kuzet.services.audit import SYSTEM

    inst = open_installation(data)
    try:
        with inst.db.session() as session:
            user = accounts.create_user(session, SYSTEM, username, password, role, full_name=full_name,
                                        organisation=organisation, language=language)
    except accounts.AccountError as exc:
        fail(str(exc))
    if json_out:
        print_json({"id": user.id, "username": user.username, "role": user.role})
    else:
        console.print(f"user [bold]{user.username}[/] ({user.role}) created, id {user.id}")


@camera_app.command("add")
def camera_add(
    name: str,
    place: Annotated[int, typer.Option(help="Place id.")],
    main_url: Annotated[str, typer.Option("--url", help="Main stream URL (credentials are encrypted at rest).")],
    sub_url: Annotated[str | None, typer.Option("--sub-url", help="Sub stream URL.")] = None,
    kind: Annotated[str, typer.Option(help="entrance, yard, street, school, road, gate, …")] = "street",
    lat: float | None = None,
    lon: float | None = None,
    bearing: float | None = None,
    fov: Annotated[float | None, typer.Option("--fov", help="Field of view, degrees.")] = None,
    retention_days: int = 30,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register one camera."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cameras import CameraError, create_camera, redact

    inst = open_installation(data)
    try:
        with inst.db.session() as session:
            cam = create_camera(session, SYSTEM, inst.keys, name=name, place_id=place, main_url=main_url,
                                sub_url=sub_url, kind=kind, lat=lat, lon=lon, bearing=bearing, field_of_view=fov,
                                retention_days=retention_days)
    except CameraError as exc:
        fail(redact(str(exc)))
    if json_out:
        print_json({"id": cam.id, "name": cam.name})
    else:
        console.print(f"camera [bold]{cam.name}[/] created, id {cam.id}")


@camera_app.command("list")
def camera_list(data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """List cameras (URLs without credentials)."""
    from kuzet.store.models import Camera, Place

    inst = open_installation(data)
    with inst.db.session() as session:
        rows = session.execute(select(Camera, Place.name).join(Place, Place.id == Camera.place_id)
                               .order_by(Camera.id)).all()
    items = [{"id": c.id, "name": c.name, "kind": c.kind, "place": p, "enabled": c.enabled,
              "main_url": c.main_url, "has_sub_stream": c.sub_url is not None, "retention_days": c.retention_days}
             for c, p in rows]
    if json_out:
        print_json(items)
        return
    table = Table(title=f"{len(items)} cameras")
    for col in ("id", "name", "kind", "place", "enabled", "main_url"):
        table.add_column(col)
    for it in items:
        table.add_row(str(it["id"]), it["name"], it["kind"], it["place"], "yes" if it["enabled"] else "no",
                      it["main_url"])
    console.print(table)


@camera_app.command("import")
def camera_import(file: Path, data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Import cameras from CSV (columns: name, place, main_url, sub_url, kind, owner, lat, lon, bearing,
    field_of_view, view_radius_m, retention_days, enabled, installed_on). All rows or none."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cameras import CameraError, ImportRejected, import_csv

    if not file.exists():
        fail(f"{file}: no such file")
    inst = open_installation(data)
    try:
        with progress_bar() as bar:
            task = bar.add_task("importing cameras", total=None)
            with inst.db.session() as session:
                result = import_csv(session, SYSTEM, inst.keys, file,
                                    progress=lambda n, total: bar.update(task, completed=n, total=total))
    except ImportRejected as exc:
        rejected(exc.errors, json_out)
    except CameraError as exc:
        fail(str(exc))
    if json_out:
        print_json({"imported": len(result.created), "ids": result.created})
    else:
        console.print(f"imported {len(result.created)} cameras")


@audit_app.command("verify")
def audit_verify(data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Check the whole hash chain; exit 1 naming the first altered or missing record."""
    inst = open_installation(data)
    with progress_bar() as bar:
        task = bar.add_task("verifying the audit chain", total=None)
        result = inst.verify_audit(progress=lambda n, total: bar.update(task, completed=n, total=total))
    if json_out:
        print_json({"ok": result.ok, "checked": result.checked, "broken_seq": result.broken_seq,
                    "problem": result.problem})
    elif result.ok:
        console.print(f"[green]audit chain intact[/]: {result.checked} records")
    else:
        err_console.print(f"[bold red]audit chain broken[/] at record #{result.broken_seq}: {result.problem}")
    if not result.ok:
        raise typer.Exit(1)
