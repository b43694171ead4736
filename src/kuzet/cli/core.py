"""Core commands: init, serve, demo, db, user, camera, audit."""

from __future__ import annotations

import os
import tomllib
from contextlib import AbstractContextManager, nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from kuzet.capabilities import ALL_ROLES, NodeRole
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
from kuzet.config import STARTER_CONFIG
from kuzet.domain.access import Role
from kuzet.installation import Installation
from kuzet.store.db import sqlite_file

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
camera_app = typer.Typer(help="The camera registry.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


LogLevelOpt = Annotated[LogLevel, typer.Option("--log-level", envvar="KUZET_LOG_LEVEL",
                                               help="Log level (every line is scrubbed of secrets and IINs).")]


def process_start() -> None:
    """Before any command: every file this process creates is owner-only, and no log line carries a secret."""
    from kuzet import logs

    os.umask(0o077)
    logs.install()


def register(app: typer.Typer) -> None:
    app.callback()(process_start)
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


def _run_server(inst: Installation, host: str, port: int, services: bool = True,
                log_level: LogLevel = LogLevel.info, internal: bool = False,
                roles: frozenset[NodeRole] = ALL_ROLES) -> None:
    """Serve the installation, running the services of ``roles``. ``internal``: the recorder's loopback port behind
    API workers (no TLS, no redirect: the workers in front speak TLS)."""
    import asyncio

    import uvicorn

    from kuzet import logs
    from kuzet.api.app import create_app

    logs.configure(log_level.value)
    app = create_app(inst, run_services=services, roles=roles)
    http = inst.settings.http
    tls = {"ssl_certfile": str(http.tls_cert), "ssl_keyfile": str(http.tls_key)} if http.tls_cert and not internal \
        else {}
    # Video does not compress: per-message deflate would only burn CPU for every live viewer.
    # proxy_headers off: X-Forwarded-For/-Proto are believed only from http.trusted_proxies (api/deps.py client_ip),
    # not from whatever uvicorn's own default trusts (127.0.0.1).
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level.value, ws="websockets-sansio",
                            ws_per_message_deflate=False, proxy_headers=False, **tls)
    logs.guard_handlers()  # uvicorn configured its loggers and handlers in Config()
    server = uvicorn.Server(config)
    if not (tls and http.redirect_port):
        server.run()
        return
    from kuzet.api.redirect import HttpsRedirect

    redirect = uvicorn.Server(uvicorn.Config(HttpsRedirect(port, host), host=host, port=http.redirect_port,
                                             log_level=log_level.value, lifespan="off", proxy_headers=False))
    logs.guard_handlers()

    async def both() -> None:
        # The redirect starts first, so the main server's signal handlers are the ones on top: Ctrl-C / SIGTERM
        # stop the main server, which then stops the redirect.
        plain = asyncio.create_task(redirect.serve())
        await asyncio.sleep(0)
        try:
            await server.serve()
        finally:
            redirect.should_exit = True
            await plain

    asyncio.run(both())


def _check_installation(inst: Installation) -> None:
    """Refuse settings that cannot work; warn about files of the installation that others may read."""
    from kuzet.api.deps import trusted_networks

    try:
        trusted_networks(inst.settings.http.trusted_proxies)
    except ValueError as exc:
        fail(str(exc))
    problem = tls_problem(inst.settings.http)
    if problem:
        fail(problem)
    for loose in inst.insecure_files():
        err_console.print(f"[bold yellow]warning:[/] {loose}", highlight=False, soft_wrap=True)


def tls_problem(http) -> str | None:  # noqa: ANN001
    """Why ``[http] tls_cert`` / ``tls_key`` cannot be served (None when they can, or TLS is off)."""
    import ssl

    if http.tls_cert is None and http.tls_key is None:
        return "[http] redirect_port needs tls_cert and tls_key" if http.redirect_port else None
    if http.tls_cert is None or http.tls_key is None:
        return "[http] tls_cert and tls_key go together: set both (PEM certificate chain and its private key)"
    for name, path in (("tls_cert", http.tls_cert), ("tls_key", http.tls_key)):
        if not path.is_file():
            return f"[http] {name}: {path} does not exist"
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(http.tls_cert, http.tls_key)
    except (ssl.SSLError, OSError) as exc:
        return f"[http] tls_cert / tls_key cannot be used together: {exc}"
    if http.redirect_port and http.redirect_port == http.port:
        return "[http] redirect_port must differ from port"
    return None


def serve(
    data: DataOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (config http.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (config http.port).")] = None,
    log_level: LogLevelOpt = LogLevel.info,
    api_workers: Annotated[int, typer.Option(
        min=0, max=64, help="Serve the API from this many processes of their own, apart from the recorder's "
                            "(0: one process for everything).")] = 0,
    role: Annotated[list[str] | None, typer.Option(
        help="What this node runs besides HTTP: api, recorder, worker or all (repeat or comma-separate for several; "
             "default all). See docs/architecture.md.")] = None,
) -> None:
    """Run everything: API, web console, recorder and the other services of this installation (``--role`` for some
    of them only)."""
    from kuzet.capabilities import parse_roles

    try:
        roles = parse_roles(role or ["all"])
    except ValueError as exc:
        fail(f"--role: {exc}")
    inst = open_installation(data)
    from kuzet.store.schema import SchemaError, check_not_newer, head_revision

    _check_installation(inst)
    try:
        revision = check_not_newer(inst.db)
    except SchemaError as exc:
        fail(str(exc))
    if revision != head_revision():
        fail("the database schema is not up to date: run `kuzet db upgrade` (it takes a backup first)")
    host, port = host or inst.settings.http.host, port or inst.settings.http.port
    if api_workers:
        _serve_split(inst, host, port, api_workers, log_level, roles)
        return
    _run_server(inst, host, port, log_level=log_level, roles=roles)


def default_api_workers(cores: int | None = None) -> int:
    """API worker processes the demo starts unless told: one per core above the first, so that on a machine with
    more than one core the API never shares the recorder's interpreter (0 on one core: a second process would only
    compete with it)."""
    cores = cores if cores is not None else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                             else os.cpu_count() or 1)
    return max(0, cores - 1)


def _serve_split(inst: Installation, host: str, port: int, workers: int, log_level: LogLevel,
                 roles: frozenset[NodeRole] = ALL_ROLES, around: AbstractContextManager | None = None) -> None:
    """API workers on ``host:port`` (uvicorn ``--workers``), the recorder and the other services in this process on
    a loopback port; the workers pass live video, health and pushes to it (api/recorder_routes.py). ``around``: what
    the services' process runs inside (the demo's simulated cameras)."""
    import socket
    import subprocess
    import sys

    from kuzet.services.lifecycle import stop_child

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        internal = s.getsockname()[1]
    env = os.environ | {"KUZET_DATA_DIR": str(inst.settings.data_dir),
                        "KUZET_RECORDER_URL": f"http://127.0.0.1:{internal}"}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "kuzet.api.app:api_only_app", "--host", host,
           "--port", str(port), "--workers", str(workers), "--log-level", log_level.value, "--ws",
           "websockets-sansio", "--ws-per-message-deflate", "false", "--no-proxy-headers"]
    if inst.settings.http.tls_cert:  # the workers face the clients: TLS is theirs
        cmd += ["--ssl-certfile", str(inst.settings.http.tls_cert), "--ssl-keyfile", str(inst.settings.http.tls_key)]
    # The workers forward the client's address (one X-Forwarded-For hop) from this machine.
    inst.settings.http.trusted_proxies = [*inst.settings.http.trusted_proxies, "127.0.0.1/32"]
    # ``around`` first (the demo's simulator started, its cameras pointed at it): the workers answer the clients only
    # once what they serve is there, so "the demo answers" means "its cameras stream".
    with around or nullcontext():
        api = subprocess.Popen(cmd, env=env)
        err_console.print(f"API: {workers} worker processes on {host}:{port}; recorder and services in process "
                          f"{os.getpid()} on 127.0.0.1:{internal}")
        try:
            _run_server(inst, "127.0.0.1", internal, log_level=log_level, internal=True, roles=roles)
        finally:
            stop_child(api)


DEMO_CONFIG_HEADER = """\
# A demo installation, made by `kuzet demo`: its accounts' password is "demo" (shorter than the minimum elsewhere)
# and cameras may play local files. Never put real cameras or people into it.
demo = true

"""


def _config_path(inst: Installation) -> Path:
    chosen = os.environ.get("KUZET_CONFIG")
    return Path(chosen) if chosen else inst.settings.config_file


def _demo_refusal(inst: Installation) -> str | None:
    """Why this data directory (or the database it points at) must not become a demo, or None.

    Checked before anything is written: a configuration without ``demo = true``, or a database with accounts other
    than the demo's (e.g. ``KUZET_DATABASE_URL`` pointing at a real installation), is not a demo.
    """
    from sqlalchemy import inspect

    from kuzet.services.demo import non_demo_usernames

    where = inst.settings.data_dir
    config = _config_path(inst)
    if config.exists():
        try:
            flagged = tomllib.loads(config.read_text(encoding="utf-8")).get("demo") is True
        except (tomllib.TOMLDecodeError, OSError) as exc:
            return f"{config} cannot be read ({exc})"
        if not flagged:
            return (f"{where} holds a Kuzet installation that is not a demo ({config} has no `demo = true`). "
                    "`kuzet demo` would add accounts whose password is `demo` to it. Choose another directory "
                    "with --data (a demo data directory from an earlier version: add `demo = true` to its kuzet.toml)")
    db_file = sqlite_file(inst.settings.db_url)
    if db_file is not None and not db_file.exists():
        return None
    if not inspect(inst.db.engine).has_table("users"):
        return None
    with inst.db.session() as session:
        others = non_demo_usernames(session)
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        return (f"the database of {where} holds accounts that are not demo accounts ({shown}): it is not a demo "
                "installation, and `kuzet demo` would add accounts whose password is `demo` to it. Choose another "
                f"directory with --data and no KUZET_DATABASE_URL (`kuzet serve --data {where}` serves this one as it "
                "is)")
    return None


def demo(
    data: Annotated[Path, typer.Option("--data", envvar="KUZET_DATA_DIR", help="Data directory.")] = Path("demo-data"),
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    seed_only: Annotated[bool, typer.Option("--seed-only", help="Create the demo city and exit.")] = False,
    sim_port: Annotated[int, typer.Option(
        help="Port of the demo's own camera simulator; if another program holds it, a free port is used.")] = 8554,
    log_level: LogLevelOpt = LogLevel.info,
    api_workers: Annotated[int | None, typer.Option(
        min=0, max=64, help="Serve the API from this many processes of their own, apart from the recorder's "
                            "(0: one process for everything; default: one per core above the first).")] = None,
) -> None:
    """Seed the demo city (once) and serve it, with simulated cameras streaming and recording.

    The demo always starts its own camera simulator (never one another program runs) and stops if it cannot.
    Refuses a data directory that holds a non-demo installation; a new one gets `demo = true` in its kuzet.toml."""
    from kuzet.installation import make_private_dir, write_private
    from kuzet.services.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, is_seeded, seed_demo_city
    from kuzet.services.demo_extras import demo_runtime, seed_capabilities

    inst = open_installation(data, must_exist=False)
    refusal = _demo_refusal(inst)
    if refusal:
        inst.close()
        fail(refusal)
    config = _config_path(inst)
    if not config.exists():
        make_private_dir(inst.settings.data_dir)
        write_private(config, DEMO_CONFIG_HEADER + STARTER_CONFIG)
        inst.close()
        inst = open_installation(data, must_exist=False)  # now with settings.demo
    _check_installation(inst)
    inst.init()
    with inst.db.session() as session:
        fresh = not is_seeded(session)
        if fresh:
            with err_console.status("seeding the demo city…"):
                city = seed_demo_city(session, inst.keys, language=inst.settings.default_language)
    if fresh:
        seed_capabilities(inst, city)
    table = Table(title=f"Kuzet demo — http://{host}:{port}/  (password for every account: {DEMO_PASSWORD})")
    table.add_column("account")
    table.add_column("role")
    table.add_column("sees")
    for username, role, descriptions in DEMO_ACCOUNTS:
        table.add_row(username, role.value, descriptions[-1])  # the CLI speaks English
    console.print(table)
    if seed_only:
        return
    import signal
    import sys

    # Uvicorn re-raises SIGTERM after its graceful shutdown; as SystemExit it lets the demo stop its simulator too.
    from kuzet.services.recording.demo import SimulatorError

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    inst.running.demo_sim_port = sim_port
    workers = default_api_workers() if api_workers is None else api_workers
    try:
        if workers:
            _serve_split(inst, host, port, workers, log_level, around=demo_runtime(inst))
        else:
            with demo_runtime(inst):
                _run_server(inst, host, port, log_level=log_level)
    except SimulatorError as exc:
        fail(str(exc))


@db_app.command("upgrade")
def db_upgrade(
    no_backup: Annotated[bool, typer.Option("--no-backup", help="Do not take a backup first.")] = False,
    backup_dir: Annotated[Path | None, typer.Option(
        help="Where the backup taken first goes (default: [backup] dir).")] = None,
    passphrase_file: Annotated[Path | None, typer.Option(
        "--passphrase-file", help="Passphrase for that backup (else $KUZET_BACKUP_PASSPHRASE, else [backup] "
                                  "passphrase_file, else asked).")] = None,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Bring the database schema to the newest version (Alembic), after taking a backup of the installation unless
    --no-backup. A database made by a newer Kuzet is refused: there are no downgrades."""
    from kuzet.store.schema import SchemaError, check_not_newer, current_revision, head_revision, upgrade

    inst = open_installation(data, must_exist=False)
    try:
        before = check_not_newer(inst.db)
    except SchemaError as exc:
        fail(str(exc))
    backup = None
    if before is not None and before != head_revision() and not no_backup:
        from kuzet.cli.backup import read_passphrase
        from kuzet.services.backup import BackupError, make_backup

        folder = backup_dir or inst.settings.backup.dir
        if folder is None:
            fail("a backup is taken before upgrading: give --backup-dir (or set [backup] dir), or --no-backup")
        passphrase = read_passphrase(passphrase_file, inst.settings.backup.passphrase_file, confirm=True)
        try:
            with progress_bar() as bar:
                task = bar.add_task("backup before upgrading", total=None)
                backup = make_backup(inst, folder, passphrase,
                                     progress=lambda name: bar.update(task, description=f"backup: {name}"))
        except BackupError as exc:
            fail(f"no upgrade: the backup before it failed: {exc}")
        if not json_out:
            console.print(f"backup written: {backup.path}", highlight=False, soft_wrap=True)
    upgrade(inst.db)
    after = current_revision(inst.db)
    if json_out:
        print_json({"before": before, "after": after, "backup": str(backup.path) if backup else None})
    else:
        console.print(f"schema: {before or 'empty'} → {after}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="The revision you wanted to go back to.")] = "-1",
    data: DataOpt = None,
) -> None:
    """Refused, always, with the reason and the way back (restore the backup taken before the upgrade)."""
    from kuzet.store.schema import DOWNGRADE_REFUSED

    fail(f"not migrating down to {revision}: {DOWNGRADE_REFUSED}")


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
    """Create a user. The password (at least security.min_password_length characters, 10 by default; 4 in the
    demo) is hashed with argon2id."""
    from kuzet.services import accounts
    from kuzet.services.audit import SYSTEM

    inst = open_installation(data)
    try:
        with inst.db.session() as session:
            user = accounts.create_user(session, SYSTEM, username, password, role, full_name=full_name,
                                        organisation=organisation, language=language,
                                        policy=accounts.password_policy(inst.settings))
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
    from kuzet.services.cameras import CameraError, allowed_schemes, create_camera, redact

    inst = open_installation(data)
    try:
        with inst.db.session() as session:
            cam = create_camera(session, SYSTEM, inst.keys, name=name, place_id=place, main_url=main_url,
                                sub_url=sub_url, kind=kind, lat=lat, lon=lon, bearing=bearing, field_of_view=fov,
                                retention_days=retention_days, url_schemes=allowed_schemes(inst.settings))
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
    from kuzet.services.cameras import CameraError, ImportRejected, allowed_schemes, import_csv

    if not file.exists():
        fail(f"{file}: no such file")
    inst = open_installation(data)
    try:
        with progress_bar() as bar:
            task = bar.add_task("importing cameras", total=None)
            with inst.db.session() as session:
                result = import_csv(session, SYSTEM, inst.keys, file,
                                    progress=lambda n, total: bar.update(task, completed=n, total=total),
                                    url_schemes=allowed_schemes(inst.settings))
    except ImportRejected as exc:
        rejected(exc.errors, json_out)
    except CameraError as exc:
        fail(str(exc))
    if json_out:
        print_json({"imported": len(result.created), "ids": result.created})
    else:
        console.print(f"imported {len(result.created)} cameras")


@audit_app.command("verify")
def audit_verify(
    witness: Annotated[list[Path] | None, typer.Option(
        help="A witness file of published heads (one JSON head per line; repeatable). Default: [audit] witness_file "
             "when it exists.")] = None,
    allow_missing_anchor: Annotated[bool, typer.Option(
        "--allow-missing-anchor", help="Pass even when the signed anchor is missing or does not verify.")] = False,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check the whole hash chain against the signed anchor and witnessed heads; exit 1 naming what fails."""
    from rich.markup import escape

    from kuzet.services.keys import KeyError_

    inst = open_installation(data)
    files = list(witness or [])
    configured = inst.settings.audit.witness_file
    if not files and configured is not None:
        if configured.exists():
            files = [configured]
        else:
            err_console.print(f"[bold yellow]warning:[/] the configured witness file {escape(str(configured))} does "
                              "not exist; no witnessed heads checked", highlight=False, soft_wrap=True)
    try:
        with progress_bar() as bar:
            task = bar.add_task("verifying the audit chain", total=None)
            result = inst.verify_audit(progress=lambda n, total: bar.update(task, completed=n, total=total),
                                       witness_files=files, allow_missing_anchor=allow_missing_anchor)
    except KeyError_ as exc:
        fail(str(exc))
    if json_out:
        print_json(result.as_dict() | {"witness_files": [str(f) for f in files]})
    else:
        for warning in result.warnings:
            err_console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
        if result.ok:
            anchor = result.anchor
            where = f"anchor at #{anchor['seq']}" if anchor.get("seq") is not None else "no anchor"
            witnessed = f", {result.witness_heads} witnessed heads" if files else ""
            console.print(f"[green]audit chain intact[/]: {result.checked} records, signed {where}{witnessed}; "
                          f"key {result.fingerprint}", highlight=False, soft_wrap=True)
        else:
            at = f" at record #{result.broken_seq}" if result.broken_seq is not None else ""
            err_console.print(f"[bold red]audit chain not verified[/]{at}:", highlight=False)
            for problem in result.problems:
                err_console.print(f"  {escape(problem)}", highlight=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("head")
def audit_head(
    publish: Annotated[bool, typer.Option(
        "--publish", help="Also send it to the configured witnesses ([audit] witness_file, witness_url, and the "
                          "event bus when it is NATS).")] = False,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The chain's head now, signed with the installation's key: keep it (print it daily) to detect truncation."""
    import json
    import sys

    from rich.markup import escape

    from kuzet.services.audit.heads import current_head
    from kuzet.services.audit.witness import publish as publish_head
    from kuzet.services.keys import KeyError_

    inst = open_installation(data)
    try:
        head = current_head(inst.db, inst.keys)
    except KeyError_ as exc:
        fail(str(exc))
    publication = None
    if publish:
        config = inst.settings.audit
        bus = _nats_publisher(inst.settings.events_url)
        if config.witness_file is None and not config.witness_url and bus is None:
            fail("no witness configured: set [audit] witness_file or witness_url, or a nats:// events_url")
        publication = publish_head(head, config, bus)
    if json_out:  # one line: `kuzet audit head --json >> heads.jsonl` makes a witness file
        out = publication.as_dict() if publication else head.as_dict()
        sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
    else:
        console.print(f"Kuzet audit head, signed {head.at}\n"
                      f"  record     #{head.seq}\n"
                      f"  hash       {head.hash}\n"
                      f"  key        {head.fingerprint}\n"
                      f"  signature  {head.signature}\n"
                      "Keep it: `kuzet audit verify --witness FILE` checks the chain still holds this record "
                      "(FILE: one JSON head per line, as `--json` prints).", highlight=False, soft_wrap=True)
        if publication:
            for name in publication.delivered:
                console.print(f"published to the {name} witness")
    if publication and publication.failed:
        for name, why in publication.failed.items():
            err_console.print(f"[bold red]not published[/] to the {name} witness: {escape(why)}", highlight=False,
                              soft_wrap=True)
        raise typer.Exit(1)


def _nats_publisher(events_url: str):  # noqa: ANN202
    """A blocking publish on the NATS bus, or None for the in-process bus (nobody outside would hear it)."""
    if not events_url.startswith("nats"):
        return None

    def send(subject: str, payload: dict) -> None:
        import asyncio

        from kuzet.store.bus import connect_bus

        async def once() -> None:
            bus = await connect_bus(events_url)
            try:
                await bus.publish(subject, payload)
            finally:
                await bus.close()

        asyncio.run(once())

    return send


@audit_app.command("anchor")
def audit_anchor(
    force: Annotated[bool, typer.Option(
        "--force", help="Anchor even though the chain does not verify against the current anchor (after you have "
                        "investigated why).")] = False,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Start a new signed anchor at the chain's current end (after an upgrade, or once a missing or broken anchor has
    been investigated). The act is itself an audit record."""
    from rich.markup import escape

    from kuzet.domain.audit import Action
    from kuzet.services import audit
    from kuzet.services.audit import SYSTEM
    from kuzet.services.audit.heads import chain_tip

    inst = open_installation(data)
    check = inst.verify_audit(allow_missing_anchor=True)
    if not check.ok and not force:
        for problem in check.problems:
            err_console.print(f"  {escape(problem)}", highlight=False, soft_wrap=True)
        fail("the chain does not verify; investigate first (or anchor anyway with --force)")
    with inst.db.session() as session:
        seq, digest = chain_tip(session)
    before, head = inst.audit_anchor.reset(seq, digest)
    with inst.db.session() as session:  # its commit moves the new anchor on to this very record
        record = audit.append(session, SYSTEM, Action.AUDIT_ANCHORED, object_type="audit_anchor",
                              details={"seq": seq, "previous": before.as_dict(), "forced": force,
                                       "problems": check.problems})
        record_seq = record.seq
    if json_out:
        print_json({"anchored": head.as_dict(), "previous": before.as_dict(), "record": record_seq})
    else:
        console.print(f"audit anchor started at #{seq} (previous anchor: {before.state.value}); recorded as "
                      f"#{record_seq}", highlight=False)
