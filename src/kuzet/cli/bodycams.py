"""Commands of body-worn and dash cameras: `kuzet bodycam device add|list`, `kuzet bodycam duty`, `kuzet bodycam
checkout|checkin`, `kuzet bodycam ingest|scan|recordings`, `kuzet bench bodycam`. They act as the system (an
operator at the server), and every change is audited like the API's."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kuzet.cli.bench import bench_app
from kuzet.cli.common import DataOpt, JsonOpt, console, fail, open_installation, print_json, progress_bar

bodycam_app = typer.Typer(help="Body-worn and dash cameras: devices, duties, shifts, offload.", no_args_is_help=True)
device_app = typer.Typer(help="The registry of devices.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(bodycam_app, name="bodycam")
    bodycam_app.add_typer(device_app, name="device")
    device_app.command("add")(device_add)
    device_app.command("list")(device_list)
    bodycam_app.command("duty")(duty)
    bodycam_app.command("checkout")(checkout)
    bodycam_app.command("checkin")(checkin)
    bodycam_app.command("ingest")(ingest)
    bodycam_app.command("scan")(scan)
    bodycam_app.command("recordings")(recordings_list)
    bench_app.command("bodycam")(bench_bodycam)
    bench_app.command("redaction")(bench_redaction)


def _system_admin(session):  # noqa: ANN001, ANN202
    """The CLI acts with a platform admin's reach, recorded in the audit log as the system."""
    from kuzet.domain.access import Role
    from kuzet.store.models import User

    return User(id=None, username="system", role=Role.PLATFORM_ADMIN.value, is_active=True)


def _user_id(session, username: str) -> int:  # noqa: ANN001
    from sqlalchemy import select

    from kuzet.store.models import User

    user_id = session.scalar(select(User.id).where(User.username == username))
    if user_id is None:
        fail(f"no user {username!r}")
    return user_id


def _device(session, serial: str):  # noqa: ANN001, ANN202
    from sqlalchemy import select

    from kuzet.store.models.bodycams import BodycamDevice

    device = session.scalar(select(BodycamDevice).where(BodycamDevice.serial == serial))
    if device is None:
        fail(f"no device with serial {serial!r}")
    return device


def device_add(serial: Annotated[str, typer.Argument(help="The serial number on the device.")],
               organisation: Annotated[int, typer.Option(help="Id of the police unit it belongs to.")],
               kind: Annotated[str, typer.Option(help="body or dash.")] = "body",
               model: Annotated[str, typer.Option(help="Make and model.")] = "",
               data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Register a body-worn or dash camera of a unit."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.bodycams import devices

    inst = open_installation(data)
    try:
        with inst.db.session() as session:
            device = devices.register_device(session, SYSTEM, _system_admin(session), serial=serial, kind=kind,
                                             organisation_id=organisation, model=model)
            out = {"id": device.id, "serial": device.serial, "kind": device.kind, "organisation_id": organisation}
    except (devices.DeviceError, devices.DeviceConflict, devices.DeviceDenied) as exc:
        fail(str(exc))
    print_json(out) if json_out else console.print(f"registered {out['kind']} camera {serial} (id {out['id']})")


def device_list(data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Every device, with the officer who has it now."""
    from sqlalchemy import select

    from kuzet.services.bodycams.devices import open_shift
    from kuzet.store.models import User
    from kuzet.store.models.bodycams import BodycamDevice

    inst = open_installation(data)
    rows = []
    with inst.db.session() as session:
        for d in session.scalars(select(BodycamDevice).order_by(BodycamDevice.serial)):
            shift = open_shift(session, d.id)
            officer = session.get(User, shift.officer_id).username if shift else None
            rows.append({"id": d.id, "serial": d.serial, "kind": d.kind, "model": d.model,
                         "organisation_id": d.organisation_id, "checked_out_to": officer})
    if json_out:
        print_json(rows)
        return
    table = Table("id", "serial", "kind", "model", "unit", "checked out to")
    for r in rows:
        table.add_row(str(r["id"]), r["serial"], r["kind"], r["model"], str(r["organisation_id"]),
                      r["checked_out_to"] or "—")
    console.print(table)


def duty(username: Annotated[str, typer.Argument(help="The user.")],
         duty_name: Annotated[str, typer.Argument(metavar="DUTY", help="officer, supervisor or custodian.")],
         basis: Annotated[str, typer.Option(help="The order that gives the duty.")],
         data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Give a member of a police unit a duty for body-worn video (in their own unit)."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.bodycams import units

    inst = open_installation(data)
    try:
        with inst.db.session() as session:
            row = units.assign_duty(session, SYSTEM, _system_admin(session), user_id=_user_id(session, username),
                                    duty=duty_name, legal_basis=basis)
            out = {"id": row.id, "user": username, "duty": row.duty, "organisation_id": row.organisation_id}
    except (units.DutyError, units.DutyDenied) as exc:
        fail(str(exc))
    print_json(out) if json_out else console.print(f"{username}: {out['duty']} of unit {out['organisation_id']}")


def checkout(serial: Annotated[str, typer.Argument(help="Device serial.")],
             officer: Annotated[str, typer.Argument(help="Username of the officer.")],
             data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Check a device out to an officer for a shift (audited)."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.bodycams import devices

    inst = open_installation(data)
    try:
        with inst.db.session() as session:
            shift = devices.check_out(session, SYSTEM, _system_admin(session), _device(session, serial),
                                      _user_id(session, officer))
            out = {"shift_id": shift.id, "serial": serial, "officer": officer}
    except (devices.DeviceError, devices.DeviceConflict, devices.DeviceDenied) as exc:
        fail(str(exc))
    print_json(out) if json_out else console.print(f"{serial} checked out to {officer} (shift {out['shift_id']})")


def checkin(serial: Annotated[str, typer.Argument(help="Device serial.")],
            device_clock: Annotated[datetime | None, typer.Option(
                help="What the device's clock shows now, with its zone (2026-01-31T22:00:05+05:00).")] = None,
            data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Check a device in (audited), keeping its clock's offset."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.bodycams import devices

    inst = open_installation(data)
    try:
        with inst.db.session() as session:
            shift = devices.check_in(session, SYSTEM, _system_admin(session), _device(session, serial),
                                     device_clock)
            out = {"shift_id": shift.id, "serial": serial, "clock_offset_ms": shift.clock_offset_ms}
    except (devices.DeviceError, devices.DeviceConflict, devices.DeviceDenied) as exc:
        fail(str(exc))
    print_json(out) if json_out else console.print(
        f"{serial} checked in (shift {out['shift_id']}, clock offset {out['clock_offset_ms']} ms)")


def ingest(files: Annotated[list[Path], typer.Argument(help="Files copied from the device.")],
           device: Annotated[str, typer.Option(help="Serial of the device they came from.")],
           data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Ingest files from a device (moved into the originals, hashed, audited); one bad file never stops the others."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.bodycams.offload import ingest_file

    inst = open_installation(data)
    done, failed = [], []
    with progress_bar() as bar:
        task = bar.add_task("ingesting", total=len(files))
        for path in files:
            if not path.is_file():
                failed.append({"file": str(path), "error": "no such file"})
                bar.advance(task)
                continue
            try:
                with inst.db.session() as session:
                    rec = ingest_file(session, inst.settings.bodycams_path, SYSTEM, device=_device(session, device),
                                      source=path, filename=path.name, via="watch", ingested_by=None)
                    done.append({"file": str(path), "recording_id": rec.id, "sha256": rec.sha256})
            except OSError as exc:
                failed.append({"file": str(path), "error": str(exc)})
            bar.advance(task)
    if json_out:
        print_json({"ingested": done, "failed": failed})
    else:
        for d in done:
            console.print(f"{d['file']}: recording {d['recording_id']}, sha256 {d['sha256']}")
        for f in failed:
            console.print(f"[red]{f['file']}: {f['error']}[/]")
    if failed:
        raise typer.Exit(1)


def scan(data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """One pass of what `kuzet serve` runs: the watch folder, playable copies, expired uploads, retention."""
    from kuzet.services.bodycams.runtime import housekeeping

    inst = open_installation(data)
    result = housekeeping(inst)
    print_json(result) if json_out else console.print(result)


def recordings_list(officer: Annotated[str | None, typer.Option(help="Username of the officer.")] = None,
                    device: Annotated[str | None, typer.Option(help="Device serial.")] = None,
                    category: Annotated[str | None, typer.Option(help="A category, or 'none'.")] = None,
                    data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Recordings, newest first (as a platform admin sees them)."""
    from kuzet.services.bodycams import recordings

    inst = open_installation(data)
    with inst.db.session() as session:
        query = recordings.Search(officer_id=_user_id(session, officer) if officer else None,
                                  device_id=_device(session, device).id if device else None, category=category)
        rows, total = recordings.search(session, _system_admin(session), query, limit=1000)
        codes = {c.id: c.code for c in recordings.categories(session)}
        out = [{"id": r.id, "device_id": r.device_id, "officer_id": r.officer_id, "started_at": r.started_at,
                "bytes": r.bytes, "sha256": r.sha256, "category": codes.get(r.category_id)} for r in rows]
    if json_out:
        print_json({"total": total, "items": out})
        return
    table = Table("id", "device", "officer", "started", "bytes", "category", "sha256")
    for r in out:
        started = f"{r['started_at']:%Y-%m-%d %H:%M}"
        table.add_row(str(r["id"]), str(r["device_id"]), str(r["officer_id"] or "—"), started,
                      str(r["bytes"]), r["category"] or "—", r["sha256"][:16] + "…")
    console.print(table)


def bench_bodycam(size_mb: Annotated[int, typer.Option("--size-mb", help="Size of the test file in MiB.")] = 2048,
                  work_dir: Annotated[Path | None, typer.Option(help="Where the scratch files go (a disk to "
                                                                      "measure; default the temp directory).")]
                  = None,
                  dock_files: Annotated[int, typer.Option("--dock-files", help="Files of a dock's batch (the same "
                                                          "total size) ingested by the watch folder; 0: none.")]
                  = 4) -> None:
    """Offload: ingest (hash + index) against the disk's sequential read in the same run, a dock's batch through the
    watch folder against the same files' cold read, and a tus upload cut at 50 % then resumed. Prints JSON."""
    from kuzet.bench.bodycam import run_offload_benchmark

    with progress_bar() as bar:
        task = bar.add_task("preparing", total=None)

        def step(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        result = run_offload_benchmark(size_mb, work_dir, step, dock_files)
    print_json(result)


def bench_redaction(seconds: Annotated[float, typer.Option(help="Length of the labelled clip.")] = 20,
                    faces: Annotated[int, typer.Option(help="Faces moving through it.")] = 4) -> None:
    """Redaction on one core: frames per second against the source's 25 fps, and recall on a generated clip with
    labelled faces (how it is made: kuzet/bench/redaction.py). Prints JSON."""
    from kuzet.bench.redaction import run_redaction_benchmark

    with progress_bar() as bar:
        bar.add_task("redacting", total=None)
        result = run_redaction_benchmark(seconds, faces)
    print_json(result)
