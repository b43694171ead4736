"""Commands of the recording capability: `kuzet sim`, `kuzet storage`, `kuzet retention`, `kuzet bench record`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kuzet.cli.bench import bench_app
from kuzet.cli.common import DataOpt, JsonOpt, console, err_console, fail, open_installation, print_json


def register(app: typer.Typer) -> None:
    app.command()(sim)
    app.command()(storage)
    app.command()(retention)
    bench_app.command("record")(bench_record)


def sim(
    cameras: Annotated[int, typer.Option(help="Number of cameras (rtsp://HOST:PORT/camK and .../camK/sub).")] = 4,
    port: Annotated[int, typer.Option(help="RTSP port.")] = 8554,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    file: Annotated[Path | None, typer.Option(help="Play this H.264 MP4 instead of the generated clip.")] = None,
    resolution: Annotated[str, typer.Option(help="Generated main stream: 1080p (4 Mbit/s) or 720p (2 Mbit/s).")]
    = "1080p",
    packet_size: Annotated[int, typer.Option(help="Largest RTP payload, bytes.")] = 1400,
    scene: Annotated[list[str] | None, typer.Option(
        help="K=SCENE: camera K plays SCENE — road:<plate> (a car with that plate, e.g. road:123ABC02), people "
             "(real CCTV footage), bursts (motion at known instants) or test. Repeatable; the other cameras play "
             "the default.")] = None,
) -> None:
    """Serve N looping simulated RTSP cameras (H.264 main 1080p and sub 640x360, frame counter burnt in)."""
    from kuzet.services.simulator.clips import MAIN_720P, MAIN_1080P, SUB_360P, ensure_clip, scene_clips
    from kuzet.services.simulator.rtsp import SimServer, build_cameras

    if cameras < 1:
        fail("--cameras must be at least 1")
    if file is not None and not file.exists():
        fail(f"{file}: no such file")
    try:
        wanted = parse_scene_options(scene or [], cameras)
    except ValueError as exc:
        fail(str(exc))
    main_spec = MAIN_1080P if resolution == "1080p" else MAIN_720P
    with err_console.status("preparing clips (generated once, then cached)…"):
        main = file or ensure_clip(main_spec)
        sub = ensure_clip(SUB_360P)
        clips = {name: scene_clips(name, main_spec, SUB_360P) for name in sorted(set(wanted.values()))}
        try:
            cams = build_cameras(cameras, main, sub, max_payload=packet_size,
                                 scenes={k: clips[name] for k, name in wanted.items()})
        except ValueError as exc:
            fail(str(exc))
    server = SimServer(cams, host, port)
    console.print(f"{cameras} simulated cameras: rtsp://{host}:{port}/cam1 … /cam{cameras} (sub: …/camK/sub)")
    for k, name in sorted(wanted.items()):
        console.print(f"  cam{k}: {name}")
    try:
        asyncio.run(server.serve_forever())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")


def parse_scene_options(options: list[str], cameras: int) -> dict[int, str]:
    """``["1=road:123 ABC 02", "3=people"]`` → ``{1: "road:123ABC02", 3: "people"}``; ValueError naming the bad one."""
    from kuzet.services.simulator.clips import parse_scene

    out: dict[int, str] = {}
    for option in options:
        number, sep, name = option.partition("=")
        if not sep or not number.strip().isdigit():
            raise ValueError(f"--scene {option!r}: expected K=SCENE, e.g. 1=road:123ABC02")
        k = int(number)
        if not 1 <= k <= cameras:
            raise ValueError(f"--scene {option!r}: camera {k} is not among 1..{cameras}")
        out[k] = parse_scene(name)
    return out


def storage(data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Bytes per camera and archive depth against each camera's required depth."""
    from kuzet.services.recording.storage import storage_report

    inst = open_installation(data)
    with inst.db.session() as session:
        report = storage_report(session, inst.settings.recordings_path)
    if json_out:
        print_json(report)
        return
    table = Table(title=f"archive: {report['archive_bytes'] / 1e9:.2f} GB")
    for col in ("camera", "name", "GB", "files", "depth, days", "required", "ok"):
        table.add_column(col)
    for c in report["cameras"]:
        table.add_row(str(c["camera_id"]), c["name"], f"{c['bytes'] / 1e9:.3f}", str(c["files"]),
                      f"{c['depth_days']:.2f}", str(c["required_days"]), "yes" if c["meets_requirement"] else "no")
    console.print(table)


def retention(data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Run one retention pass now (the server runs one every minute)."""
    from dataclasses import asdict

    from kuzet.services.recording.retention import Retention

    inst = open_installation(data)
    report = Retention(inst.settings, inst.db).run()
    if json_out:
        print_json(asdict(report))
    else:
        console.print(f"deleted {report.deleted_files} files ({report.deleted_bytes / 1e6:.1f} MB) {report.by_reason}")


def bench_record(
    cameras: Annotated[int, typer.Option(help="Simulated 4 Mbit/s 1080p cameras.")] = 10,
    seconds: Annotated[int, typer.Option(help="Measured seconds.")] = 30,
    json_out: JsonOpt = False,
    skip_ceiling: Annotated[bool, typer.Option(help="Do not measure bare ffmpeg -c copy.")] = False,
) -> None:
    """Recorder CPU and memory per stream, and loss, against bare `ffmpeg -c copy` measured in the same run."""
    from kuzet.services.recording.bench import run_record_benchmark

    result = run_record_benchmark(cameras, seconds, ceiling=not skip_ceiling,
                                  progress=None if json_out else err_console)
    print_json(result)
