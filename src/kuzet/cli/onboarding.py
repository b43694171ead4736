"""Commands of onboarding at scale and storage tiers: `kuzet camera import-installations|tier|push|offline`,
`kuzet onvif discover|add`, `kuzet bench tiers`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kuzet.cli.bench import bench_app
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
from kuzet.cli.core import camera_app

onvif_app = typer.Typer(help="ONVIF cameras: discover them on a network segment and add them.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    camera_app.command("import-installations")(import_installations)
    camera_app.command("tier")(tier)
    camera_app.command("push")(push)
    camera_app.command("offline")(offline)
    app.add_typer(onvif_app, name="onvif")
    onvif_app.command("discover")(onvif_discover)
    onvif_app.command("add")(onvif_add)
    bench_app.command("tiers")(bench_tiers)


def import_installations(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX: one camera per row (docs/cloud.md, \"Onboarding\").")],
    data: DataOpt = None, json_out: JsonOpt = False,
) -> None:
    """Create buildings, entrances, yards and cameras from the telecom's installation list: all rows or none."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cameras import allowed_schemes
    from kuzet.services.onboarding.installations import InstallationListError
    from kuzet.services.onboarding.installations import import_installations as run

    if not file.exists():
        fail(f"{file}: no such file")
    inst = open_installation(data)
    try:
        with progress_bar() as bar:
            task = bar.add_task("importing", total=None)

            def step(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            with inst.db.session() as session:
                result = run(session, SYSTEM, inst.keys, file, url_schemes=allowed_schemes(inst.settings),
                             progress=None if json_out else step)
    except InstallationListError as exc:
        rejected(exc.errors, json_out)
    if json_out:
        print_json(result.as_dict())
        return
    console.print(f"imported {len(result.cameras)} cameras; created {result.places_created} places "
                  f"({result.places_reused} existing ones reused)")


def tier(
    camera: Annotated[int, typer.Argument(help="Camera id.")],
    full_days: Annotated[int | None, typer.Option(help="Keep everything this many days.")] = None,
    motion_days: Annotated[int | None, typer.Option(help="Then only minutes with motion or events this many more.")]
    = None,
    clear: Annotated[bool, typer.Option(help="Remove the camera's own tier (a plan's applies again).")] = False,
    data: DataOpt = None, json_out: JsonOpt = False,
) -> None:
    """Show or set a camera's storage tier (everything for N days, then only minutes with motion for M more)."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.recording import tiers
    from kuzet.store.models import Camera

    inst = open_installation(data)
    with inst.db.session() as session:
        cam = session.get(Camera, camera)
        if cam is None:
            fail(f"no camera {camera}")
        if clear:
            tiers.clear_camera_tier(session, SYSTEM, cam)
        elif full_days is not None or motion_days is not None:
            if full_days is None or motion_days is None:
                fail("give both --full-days and --motion-days")
            try:
                tiers.set_camera_tier(session, SYSTEM, cam, full_days, motion_days)
            except tiers.TierError as exc:
                fail(str(exc))
        out = tiers.tier_out(session, inst.settings, cam)
    if json_out:
        print_json(out)
    elif out["policy"] is None:
        console.print(f"camera {camera}: no storage tier; everything kept {out['retention_days']} days")
    else:
        p = out["policy"]
        console.print(f"camera {camera}: everything {p['full_days']} days, then motion minutes "
                      f"{p['motion_days']} more ({p['source']})" + ("" if out["thinned"] else
                                                                     " — not thinned: motion analysis is off"))


def push(
    camera: Annotated[int, typer.Argument(help="Camera id.")],
    protocol: Annotated[str, typer.Option(help="rtmp or rtsp (ANNOUNCE/RECORD).")] = "rtmp",
    host: Annotated[str | None, typer.Option(help="Public host name cameras reach (default [push] public_host).")]
    = None,
    data: DataOpt = None, json_out: JsonOpt = False,
) -> None:
    """Make a camera push its stream (behind NAT): issue a new secret key and print the URL to give the camera.
    The key is shown only now; running this again replaces it."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.onboarding import push as push_service
    from kuzet.store.models import Camera

    inst = open_installation(data)
    with inst.db.session() as session:
        cam = session.get(Camera, camera)
        if cam is None:
            fail(f"no camera {camera}")
        try:
            issued = push_service.issue_key(session, SYSTEM, inst.settings, cam, protocol, public_host=host)
        except push_service.PushError as exc:
            fail(str(exc))
    if json_out:
        print_json(issued)
    else:
        console.print(f"camera {camera} pushes to:\n  {issued['push_url']}\n(the key is shown only now)",
                      highlight=False)


def offline(data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Cameras offline now, with address, entrance and since when: the field technician's list."""
    from kuzet.services.onboarding.field import offline_cameras

    inst = open_installation(data)
    with inst.db.session() as session:
        items = offline_cameras(session, None)
    if json_out:
        print_json({"items": items})
        return
    table = Table(title=f"{len(items)} cameras offline")
    for col in ("camera", "name", "address", "entrance", "since", "reason"):
        table.add_column(col)
    for c in items:
        table.add_row(str(c["camera_id"]), c["name"], c["address"] or "", c["entrance"] or "",
                      str(c["since"] or "never recorded"), c["reason"] or "")
    console.print(table)


def onvif_discover(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for answers.")] = 3.0,
    address: Annotated[list[str] | None, typer.Option(
        help="Probe this address directly (unicast) instead of, or besides, the multicast group; repeatable.")]
    = None,
    port: Annotated[int, typer.Option(help="WS-Discovery port of unicast probes.")] = 3702,
    multicast: Annotated[bool, typer.Option(help="Probe the multicast group 239.255.255.250 on the segment.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Find ONVIF cameras on the network segment with WS-Discovery."""
    from kuzet.services.onboarding.onvif import discover

    found = discover(timeout=timeout, addresses=address or [], port=port, multicast=multicast)
    if json_out:
        print_json({"devices": [d.as_dict() for d in found]})
        return
    table = Table(title=f"{len(found)} ONVIF devices")
    for col in ("address", "device service", "scopes"):
        table.add_column(col)
    for d in found:
        table.add_row(d.address, " ".join(d.xaddrs), ", ".join(d.scopes[:4]))
    console.print(table)


def onvif_add(
    xaddr: Annotated[str, typer.Argument(help="The device service URL (from `kuzet onvif discover`).")],
    place: Annotated[int, typer.Option(help="Place id the camera belongs to.")],
    name: Annotated[str | None, typer.Option(help="Camera name (default: the device's model and serial).")] = None,
    kind: Annotated[str, typer.Option(help="Camera kind.")] = "entrance",
    username: Annotated[str | None, typer.Option(envvar="KUZET_ONVIF_USER", help="ONVIF user.")] = None,
    password: Annotated[str | None, typer.Option(envvar="KUZET_ONVIF_PASSWORD", help="ONVIF password.")] = None,
    data: DataOpt = None, json_out: JsonOpt = False,
) -> None:
    """Ask an ONVIF camera for its profiles and stream URIs and add it (main and sub stream), no URL typed."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cameras import CameraError, allowed_schemes
    from kuzet.services.onboarding.onvif import OnvifError, add_onvif_camera, probe_device

    inst = open_installation(data)
    try:
        device = probe_device(xaddr, username, password)
    except OnvifError as exc:
        fail(str(exc))
    try:
        with inst.db.session() as session:
            camera = add_onvif_camera(session, SYSTEM, inst.keys, device, place_id=place, name=name, kind=kind,
                                      username=username, password=password,
                                      url_schemes=allowed_schemes(inst.settings))
            out = {"camera_id": camera.id, "name": camera.name, "device": device.as_dict()}
    except CameraError as exc:
        fail(str(exc))
    if json_out:
        print_json(out)
    else:
        console.print(f"added camera {out['camera_id']} ({out['name']}) with {len(device.profiles)} profiles",
                      highlight=False)


def bench_tiers(
    days: Annotated[int, typer.Option(help="Simulated days of one entrance camera.")] = 7,
    full_days: Annotated[int, typer.Option(help="Tier: everything kept this many days.")] = 7,
    motion_days: Annotated[int, typer.Option(help="Tier: then motion minutes this many more.")] = 30,
    json_out: JsonOpt = True,
) -> None:
    """Bytes of a simulated week of an entrance camera before and after thinning (goal: at least 60 % fewer, every
    motion minute kept), against keeping only the minutes events touch."""
    from kuzet.bench.tiers import run_tiers_benchmark

    if days < 1 or full_days < 1 or motion_days < 0:
        fail("--days and --full-days must be at least 1, --motion-days at least 0")
    print_json(run_tiers_benchmark(days, full_days, motion_days, progress=err_console))
