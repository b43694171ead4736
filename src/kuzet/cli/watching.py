"""Commands of the watching capability: ``kuzet export`` (create a sealed bundle) and ``kuzet export verify``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from kuzet.cli.common import DataOpt, JsonOpt, console, err_console, fail, open_installation, print_json

export_app = typer.Typer(help="Sealed evidence exports.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    from kuzet.cli.bench import bench_app

    app.add_typer(export_app, name="export")
    bench_app.command("seek")(bench_seek)
    bench_app.command("live")(bench_live)


def bench_seek(
    cameras: Annotated[int, typer.Option(help="Cameras in the synthetic index.")] = 100,
    days: Annotated[int, typer.Option(help="Days of one-minute files per camera.")] = 30,
    requests: Annotated[int, typer.Option(help="Clip requests at random instants.")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Archive: request-to-first-bytes at random instants of a C cameras × D days index, against a direct file read."""
    from kuzet.services.watching.bench import run_seek_benchmark

    print_json(run_seek_benchmark(cameras, days, requests, progress=None if json_out else err_console))


def bench_live(
    viewers: Annotated[int, typer.Option(help="WebSocket viewers of one camera.")] = 50,
    seconds: Annotated[int, typer.Option(help="Measured seconds.")] = 15,
    json_out: JsonOpt = False,
) -> None:
    """Live: server CPU with N viewers of one camera against one viewer, and time to the first fragment."""
    from kuzet.services.watching.bench import run_live_benchmark

    print_json(run_live_benchmark(viewers, seconds, progress=None if json_out else err_console))


@export_app.command("create")
def export_create(
    camera: Annotated[list[int], typer.Option(help="Camera id (repeat for several cameras).")],
    start: Annotated[datetime, typer.Option(help="UTC start, e.g. 2025-01-31T10:00:00+00:00.")],
    end: Annotated[datetime, typer.Option(help="UTC end.")],
    reason: Annotated[str, typer.Option(help="Legal basis (case number, request).")],
    user: Annotated[str, typer.Option(help="Username the export is made for (must hold the export right).")],
    out: Annotated[Path | None, typer.Option(help="Copy the bundle here.")] = None,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Export a window of several cameras as a signed bundle (the window goes on evidence hold)."""
    import shutil

    from sqlalchemy import select

    from kuzet.api.routes.watching import build_export
    from kuzet.domain.access import Right
    from kuzet.services import access
    from kuzet.services.audit import Actor
    from kuzet.services.watching.evidence import ExportError, create_export
    from kuzet.store.models import Camera, User
    from kuzet.store.models.watching import Export

    inst = open_installation(data)
    start, end = (t if t.tzinfo else t.astimezone() for t in (start, end))
    try:
        with inst.db.session() as session:
            who = session.scalar(select(User).where(User.username == user))
            if who is None:
                fail(f"no user {user!r}")
            for cam_id in camera:
                cam = session.get(Camera, cam_id)
                if cam is None or Right.EXPORT not in access.camera_rights(session, who, cam):
                    fail(f"camera {cam_id} not found for {user}")
            export = create_export(session, Actor(who.id, who.username, "cli"), who, camera, start, end, reason)
            export_id = export.id
    except ExportError as exc:
        fail(str(exc))
    with err_console.status("cutting video and sealing the bundle…"):
        build_export(inst, export_id)
    with inst.db.session() as session:
        export = session.get(Export, export_id)
    if export.state != "done":
        fail(f"export failed: {export.error}")
    path = inst.settings.data_dir / export.path
    if out:
        shutil.copyfile(path, out)
        path = out
    if json_out:
        print_json({"id": export.id, "bundle": str(path), "sha256": export.sha256})
    else:
        console.print(f"export {export.id}: {path}")


@export_app.command("verify")
def export_verify(
    bundle: Path,
    key: Annotated[Path | None, typer.Option(help="Trusted public key (PEM). Default: the installation's, if "
                                                  "--data is given; else the key inside the bundle.")] = None,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check every file's SHA-256 and the manifest's signature; exit 1 naming what fails."""
    from kuzet.services.watching.evidence import verify_bundle

    trusted = None
    if key is not None:
        if not key.exists():
            fail(f"{key}: no such file")
        trusted = key.read_bytes()
    elif data is not None:
        inst = open_installation(data)
        trusted = inst.keys.public_key_pem()
    report = verify_bundle(bundle, trusted)
    if json_out:
        print_json({"ok": report.ok, "problems": report.problems, "checked_files": report.checked_files,
                    "key_sha256": report.key_fingerprint, "key_source": report.key_source})
    elif report.ok:
        console.print(f"[green]bundle verified[/]: {len(report.checked_files)} files, signature by key "
                      f"{report.key_fingerprint[:16]}… ({report.key_source})")
    else:
        for problem in report.problems:
            err_console.print(f"[bold red]FAIL[/] {problem}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)
