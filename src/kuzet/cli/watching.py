"""Commands of the watching capability: ``kuzet export`` (create a sealed bundle), ``kuzet export verify`` and
``kuzet keys show`` (the key that signs bundles and the audit chain's head, with its fingerprint)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from kuzet.cli.common import DataOpt, JsonOpt, console, err_console, fail, open_installation, print_json

export_app = typer.Typer(help="Sealed evidence exports.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    from kuzet.cli.bench import bench_app
    from kuzet.cli.safeyard import keys_app

    app.add_typer(export_app, name="export")
    keys_app.command("show")(keys_show)
    bench_app.command("seek")(bench_seek)
    bench_app.command("live")(bench_live)
    bench_app.command("map")(bench_map)


def bench_seek(
    cameras: Annotated[int, typer.Option(help="Cameras in the synthetic index.")] = 100,
    days: Annotated[int, typer.Option(help="Days of one-minute files per camera.")] = 30,
    requests: Annotated[int, typer.Option(help="Clip requests at random instants.")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Archive: request-to-first-bytes at random instants of a C cameras × D days index, against a direct file read."""
    from kuzet.bench.watching import run_seek_benchmark

    print_json(run_seek_benchmark(cameras, days, requests, progress=None if json_out else err_console))


def bench_live(
    viewers: Annotated[int, typer.Option(help="WebSocket viewers of one camera.")] = 50,
    seconds: Annotated[int, typer.Option(help="Measured seconds.")] = 15,
    json_out: JsonOpt = False,
) -> None:
    """Live: server CPU with N viewers of one camera against one viewer, and time to the first fragment."""
    from kuzet.bench.watching import run_live_benchmark

    print_json(run_live_benchmark(viewers, seconds, progress=None if json_out else err_console))


def bench_map(
    small: Annotated[float, typer.Option(help="Scale of the small city (1 = 10,000 cameras).")] = 0.1,
    large: Annotated[float, typer.Option(help="Scale of the large city.")] = 1.0,
    repeat: Annotated[int, typer.Option(help="Calls per measurement (the median is kept).")] = 60,
    json_out: JsonOpt = False,
) -> None:
    """Map of the control centre zoomed out: clusters from positions in memory against the database's GROUP BY,
    on a small and a large synthetic city (cost must not grow with the city)."""
    from kuzet.bench.map import run_map_benchmark

    print_json(run_map_benchmark(small, large, repeat,
                                 progress=None if json_out else lambda m: err_console.print(m)))


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

    from kuzet.domain.access import Right
    from kuzet.services import access
    from kuzet.services.audit import Actor
    from kuzet.services.watching.evidence import ExportError, build_export, bundle_file, create_export
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
    path = bundle_file(inst.settings.data_dir, export)
    if path is None:
        fail("the bundle file is gone from the server")
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
    key: Annotated[Path | None, typer.Option(help="Public key (PEM) the bundle must be signed with: the one the "
                                                  "installation's operator publishes.")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Installation whose signing key must have signed the "
                                                             "bundle (its keys/signing.pub).")] = None,
    trust_bundled_key: Annotated[bool, typer.Option(
        "--trust-bundled-key", help="Accept the key inside the bundle, after comparing its fingerprint yourself "
                                    "with the one the operator publishes.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Check every file's SHA-256 and the manifest's signature; exit 1 naming what fails.

    The key inside a bundle proves nothing about who signed it: give the installation's key (--key or --data). Without
    them the command shows the signer's fingerprint and exits 1 until you compare it and pass --trust-bundled-key.
    """
    from rich.markup import escape

    from kuzet.services.keys import KeyError_
    from kuzet.services.watching.evidence import Trust, verify_bundle

    if key is not None and data is not None:
        fail("give --key or --data, not both")
    trusted, source = None, Trust.GIVEN_KEY
    if key is not None:
        if not key.is_file():
            fail(f"{key}: no such file")
        trusted = key.read_bytes()
    elif data is not None:
        inst = open_installation(data)
        try:
            trusted = inst.keys.public_key_pem()
        except KeyError_ as exc:
            fail(str(exc))
        source = Trust.INSTALLATION
    report = verify_bundle(bundle, trusted, trusted_source=source, trust_bundled_key=trust_bundled_key)
    if json_out:
        print_json(report.as_dict())
    elif report.ok:
        whose = {Trust.INSTALLATION: "this installation's key", Trust.GIVEN_KEY: f"the key in {escape(str(key))}",
                 Trust.BUNDLED_KEY: "the key inside the bundle, accepted with --trust-bundled-key"}[report.trust]
        console.print(f"[green]bundle verified[/]: {len(report.checked_files)} files, signed by {whose}",
                      highlight=False)
        console.print(f"signer's key fingerprint: {report.signer_fingerprint}", highlight=False, soft_wrap=True)
    elif report.intact:
        err_console.print(
            f"[bold yellow]signer not established[/]: the files match the manifest and the signature verifies, but "
            f"with the key inside the bundle, which anyone can make.\n"
            f"signer's key fingerprint: [bold]{report.signer_fingerprint}[/]\n"
            "Compare it with the fingerprint the installation's operator publishes (console, "
            "GET /api/v1/exports/public-key, `kuzet keys show`), then run again with --key OPERATOR_KEY.pem or "
            "--data DIR, or with --trust-bundled-key if they are the same.", highlight=False, soft_wrap=True)
    else:
        for problem in report.problems:
            err_console.print(f"[bold red]FAIL[/] {escape(problem)}", highlight=False, soft_wrap=True)
        if report.signer_fingerprint:
            err_console.print(f"signer's key fingerprint: {report.signer_fingerprint}", highlight=False,
                              soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


def keys_show(data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """The installation's public signing key (evidence bundles, audit heads) and its fingerprint, to publish."""
    from kuzet.services.keys import KeyError_

    inst = open_installation(data)
    try:
        pem = inst.keys.public_key_pem()
    except KeyError_ as exc:
        fail(str(exc))
    out = {"algorithm": "ed25519", "public_key_pem": pem.decode("ascii"), "fingerprint": inst.keys.fingerprint()}
    if json_out:
        print_json(out)
        return
    console.print(f"signing key (Ed25519), fingerprint SHA-256 of the PEM:\n[bold]{out['fingerprint']}[/]",
                  highlight=False, soft_wrap=True)
    console.print(out["public_key_pem"], end="", highlight=False)
