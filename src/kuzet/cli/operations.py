"""Commands of the operations capability: ``kuzet hotlist``, ``kuzet events``, ``kuzet incidents export`` and
``kuzet bench motion|alarms``."""

from __future__ import annotations

import sys
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

hotlist_app = typer.Typer(help="Hot lists of wanted and stolen vehicles.", no_args_is_help=True)
events_app = typer.Typer(help="Detections: motion, objects, plates.", no_args_is_help=True)
incidents_app = typer.Typer(help="Incidents of the operations centre.", no_args_is_help=True)
UserOpt = Annotated[str, typer.Option("--user", help="Whose rights apply (and who is audited).")]


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the kuzet app (and to kuzet bench via kuzet.cli.bench)."""
    app.add_typer(hotlist_app, name="hotlist")
    app.add_typer(events_app, name="events")
    app.add_typer(incidents_app, name="incidents")
    bench_app.command("motion")(bench_motion)
    bench_app.command("alarms")(bench_alarms)


def _user(session, username: str):  # noqa: ANN001, ANN202
    from sqlalchemy import select

    from kuzet.store.models import User

    user = session.scalar(select(User).where(User.username == username, User.is_active.is_(True)))
    if user is None:
        fail(f"no active user {username!r}")
    return user


def _time(text: str | None, name: str):  # noqa: ANN202
    from datetime import UTC, datetime

    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{name} {text!r} is not a date or time (ISO-8601, e.g. 2026-01-31T22:00:00+05:00)")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@hotlist_app.command("list")
def hotlist_list(user: UserOpt, data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Hot lists with their entry counts."""
    from sqlalchemy import func, select

    from kuzet.services.operations import hotlists
    from kuzet.store.models.operations import HotList, HotListEntry

    inst = open_installation(data)
    with inst.db.session() as session:
        if not hotlists.may_use(session, _user(session, user)):
            fail(f"{user} may not use hot lists (police operators and platform admins)")
        counts = dict(session.execute(select(HotListEntry.list_id, func.count()).group_by(HotListEntry.list_id)).all())
        rows = [hotlists.list_out(h, counts.get(h.id, 0)) for h in session.scalars(select(HotList).order_by(
            HotList.name))]
    if json_out:
        print_json(rows)
        return
    table = Table(title="hot lists")
    for col in ("id", "name", "kind", "priority", "active", "entries"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["name"], r["kind"], r["priority"], "yes" if r["active"] else "no",
                      str(r["entries"]))
    console.print(table)


@hotlist_app.command("import")
def hotlist_import(
    name: Annotated[str, typer.Argument(help="The hot list (created if it does not exist).")],
    file: Path,
    user: UserOpt,
    kind: Annotated[str, typer.Option(help="wanted, stolen or other (for a new list).")] = "wanted",
    priority: Annotated[str, typer.Option(help="low, medium, high or critical (for a new list).")] = "high",
    replace: Annotated[bool, typer.Option(help="Replace the list's entries with the file's.")] = False,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import plates from CSV (plate, reason, valid_to; Russian headers accepted). Every row valid, or nothing."""
    from sqlalchemy import select

    from kuzet.services.audit import Actor
    from kuzet.services.operations import hotlists
    from kuzet.store.models.operations import HotList

    if not file.exists():
        fail(f"{file}: no such file")
    inst = open_installation(data)
    try:
        with inst.db.session() as session:
            who = _user(session, user)
            if not hotlists.may_use(session, who):
                fail(f"{user} may not use hot lists (police operators and platform admins)")
            actor = Actor(who.id, who.username, "cli")
            hot_list = session.scalar(select(HotList).where(HotList.name == name))
            if hot_list is None:
                hot_list = hotlists.create_list(session, actor, name, kind, priority, who.organisation_id)
            result = hotlists.import_csv(session, actor, hot_list, file, replace=replace)
    except hotlists.HotListImportRejected as exc:
        rejected(exc.errors, json_out)
    except hotlists.HotListError as exc:
        fail(str(exc))
    if json_out:
        print_json({"list": name, "added": result.added, "updated": result.updated})
    else:
        console.print(f"{name}: {result.added} added, {result.updated} updated")


@events_app.command("search")
def events_search(
    user: UserOpt,
    camera: Annotated[list[int] | None, typer.Option(help="Camera id (repeatable).")] = None,
    place: Annotated[int | None, typer.Option(help="Place id: its cameras and those below it.")] = None,
    start: Annotated[str | None, typer.Option(help="From (ISO-8601).")] = None,
    end: Annotated[str | None, typer.Option(help="To (ISO-8601).")] = None,
    kind: Annotated[str | None, typer.Option(help="motion, object or plate.")] = None,
    label: Annotated[str | None, typer.Option(help="person, car, truck, bus, motorcycle, bicycle.")] = None,
    plate: Annotated[str | None, typer.Option(help="Plate, or the start of one.")] = None,
    fuzzy: Annotated[bool, typer.Option(help="Match the plate within one OCR-style error.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Search detections on the cameras USER may see."""
    from kuzet.services.operations import events

    inst = open_installation(data)
    with inst.db.session() as session:
        who = _user(session, user)
        try:
            query = events.search(session, who, camera_ids=camera, place_id=place, start=_time(start, "start"),
                                  end=_time(end, "end"), kind=kind, label=label, plate=plate, fuzzy=fuzzy)
        except events.EventError as exc:
            fail(str(exc))
        rows = [events.event_out(e) for e in session.scalars(query.limit(limit))]
    if json_out:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} events")
    for col in ("id", "camera", "kind", "label", "plate", "start (UTC)", "seconds", "zone"):
        table.add_column(col)
    for r in rows:
        seconds = (r["end_at"] - r["start_at"]).total_seconds() if r["end_at"] else None
        table.add_row(str(r["id"]), str(r["camera_id"]), r["kind"], r["label"] or "", r["plate"] or "",
                      r["start_at"].strftime("%Y-%m-%d %H:%M:%S"), f"{seconds:.1f}" if seconds is not None else "…",
                      r["zone"] or "")
    console.print(table)


@incidents_app.command("export")
def incidents_export(
    user: UserOpt,
    start: Annotated[str, typer.Option(help="Opened from (ISO-8601).")],
    end: Annotated[str, typer.Option(help="Opened before (ISO-8601).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write CSV here (default: stdout).")] = None,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Incidents USER sees, opened in [start, end), with response times: CSV (or JSON). Audited."""
    from kuzet.services import audit
    from kuzet.services.audit import Actor
    from kuzet.services.operations import incidents

    first, last = _time(start, "start"), _time(end, "end")
    if last <= first:
        fail("end must be after start")
    inst = open_installation(data)
    with inst.db.session() as session:
        who = _user(session, user)
        rows = incidents.export_rows(session, who, first, last)
        audit.append(session, Actor(who.id, who.username, "cli"), incidents.Action.EXPORTED, object_type="incident",
                     details={"start": first.isoformat(), "end": last.isoformat(), "count": len(rows),
                              "format": "json" if json_out else "csv"})
    if json_out:
        print_json(rows)
        return
    text = incidents.to_csv(rows)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err_console.print(f"{len(rows)} incidents → {output}")


def bench_alarms(
    cameras: Annotated[int, typer.Option(help="Simulated cameras with motion bursts.")] = 4,
    seconds: Annotated[float, typer.Option(help="Measured seconds.")] = 60,
    json_out: JsonOpt = False,
) -> None:
    """From a frame with motion to the alarm in the operator's browser (Chromium), against the push-only ceiling."""
    from kuzet.bench.alarms import run_alarm_benchmark

    if cameras < 1 or seconds <= 0:
        fail("--cameras and --seconds must be positive")
    if not Path("/usr/bin/chromium").exists():
        fail("Debian chromium is needed (apt-get install chromium)")
    with progress_bar() as bar:
        task = bar.add_task("preparing", total=1)
        result = run_alarm_benchmark(cameras, seconds, progress=lambda stage, done, total: bar.update(
            task, description=stage, completed=done, total=total))
    if not json_out:
        got = result["frame_to_browser"]
        err_console.print(f"frame with motion → alarm in the browser: p50 {got.get('p50_s')} s over "
                          f"{got.get('samples', 0)} alarms (goal ≤ {result['goal']['frame_to_browser_p50_s']} s)")
    print_json(result)


def bench_motion(
    streams: Annotated[int, typer.Option(help="Simulated 640x360 25 fps sub streams analysed at once.")] = 40,
    seconds: Annotated[float, typer.Option(help="Measured seconds (after a few seconds of warm-up).")] = 20,
    workers: Annotated[int, typer.Option(help="Analysis threads (operations.workers).")] = 2,
    fps: Annotated[float, typer.Option(help="Frames analysed per second per stream.")] = 5.0,
    file: Annotated[Path | None, typer.Option(help="Use this H.264/H.265 file instead of the generated clip.")] = None,
    json_out: JsonOpt = False,
    skip_ceiling: Annotated[bool, typer.Option(help="Do not measure the decode ceilings.")] = False,
    opencv_threads: Annotated[int, typer.Option(
        help="OpenCV's own threads: 1 as the server runs it (0: OpenCV's default, one per core).")] = 1,
) -> None:
    """Motion analysis CPU per stream (decode included) against the bare decode ceiling measured in the same run."""
    from kuzet.bench.motion import run_motion_benchmark

    if streams < 1 or seconds <= 0 or workers < 1 or fps <= 0:
        fail("--streams, --seconds, --workers and --fps must be positive")
    if file is not None and not file.exists():
        fail(f"{file}: no such file")
    with progress_bar() as bar:
        task = bar.add_task("preparing", total=1)

        def report(stage: str, done: float, total: float) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        try:
            result = run_motion_benchmark(streams, seconds, file=file, workers=workers, fps=fps,
                                          ceiling=not skip_ceiling, opencv_threads=opencv_threads,
                                          progress=report)
        except (ValueError, OSError) as exc:
            fail(str(exc))
    if not json_out:
        run = result["run"]
        err_console.print(f"{streams} streams: {run['percent_per_stream']:.3f} % of a core each → "
                          f"{run['streams_per_core']} per core (goal {result['goal']['streams_per_core']:.0f})")
    print_json(result)
