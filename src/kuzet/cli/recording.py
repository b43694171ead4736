"""Commands of the recording capability: `kuzet sim`, `kuzet storage`, `kuzet retention`, `kuzet upload`,
`kuzet bench record`, `kuzet bench storage`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kuzet.cli.bench import bench_app
from kuzet.cli.common import DataOpt, JsonOpt, console, err_console, fail, open_installation, print_json


def register(app: typer.Typer) -> None:
    from kuzet.cli import cluster

    cluster.register(app)  # the recorder nodes sharing the cameras
    app.command()(sim)
    app.command()(storage)
    app.command()(retention)
    app.command()(upload)
    bench_app.command("record")(bench_record)
    bench_app.command("storage")(bench_storage)


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
    ready_file: Annotated[Path | None, typer.Option(
        help="Once listening, write the port there (with --port 0: the free port the system chose).")] = None,
    onvif: Annotated[bool, typer.Option(
        help="Also an ONVIF face: answer WS-Discovery probes and serve each camera's device and media services.")]
    = False,
    discovery_port: Annotated[int, typer.Option(help="WS-Discovery port of the ONVIF face (UDP).")] = 3702,
    onvif_port: Annotated[int, typer.Option(
        help="First HTTP port of the ONVIF services (camera K on this + K - 1; 0: any free ports).")] = 8000,
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

    def ready(bound: int) -> None:
        console.print(f"{cameras} simulated cameras: rtsp://{host}:{bound}/cam1 … /cam{cameras} (sub: …/camK/sub)")
        for k, name in sorted(wanted.items()):
            console.print(f"  cam{k}: {name}")
        if ready_file is not None:
            partial = ready_file.with_name(ready_file.name + ".part")
            partial.write_text(str(bound))
            partial.replace(ready_file)

    async def serve() -> None:
        if not onvif:
            await server.serve_forever(on_ready=ready)
            return
        from kuzet.services.simulator.onvif import OnvifFace, devices_for

        await server.start()  # first, so that the stream URIs the ONVIF face hands out carry the real port
        face = OnvifFace(devices_for(cams, host, server.port), host, discovery_port, onvif_port)
        await face.start()
        console.print(f"ONVIF: WS-Discovery on udp {host}:{face.discovery_port}; device services "
                      f"http://{host}:{face.devices[0].port}/onvif/device_service …")
        ready(server.port)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
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
    from kuzet.services.recording.storage import archive_store

    inst = open_installation(data)
    with inst.db.session() as session:
        report = archive_store(inst.settings).report(session)
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
    if inst.settings.storage.backend == "s3":
        from kuzet.services.recording.uploader import Uploader

        backlog = Uploader(inst.settings, inst.db).measure()
        console.print(f"waiting for upload to the object store: {backlog.files} files, "
                      f"{backlog.bytes / 1e6:.1f} MB", highlight=False)


def upload(data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Upload the closed recordings waiting for the object store now (the server does it every few seconds)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from kuzet.services.recording.uploader import Uploader

    inst = open_installation(data)
    if inst.settings.storage.backend != "s3":
        fail('[storage] backend is not "s3": recordings stay on the local disk, nothing to upload')
    uploader = Uploader(inst.settings, inst.db)
    waiting = uploader.measure()
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=err_console, disable=json_out) as bar:
        task = bar.add_task(f"uploading {waiting.files} files", total=waiting.bytes or None)
        report = uploader.run_once(on_uploaded=lambda size: bar.advance(task, size))
    out = {"uploaded": report.uploaded, "bytes": report.bytes, "error": report.error,
           "waiting": {"files": report.backlog.files, "bytes": report.backlog.bytes}}
    if json_out:
        print_json(out)
    else:
        console.print(f"uploaded {report.uploaded} files ({report.bytes / 1e6:.1f} MB); "
                      f"{report.backlog.files} still waiting", highlight=False)
    if report.error:
        fail(f"the object store failed: {report.error}")


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
    from kuzet.bench.recording import run_record_benchmark

    result = run_record_benchmark(cameras, seconds, ceiling=not skip_ceiling,
                                  progress=None if json_out else err_console)
    print_json(result)


def bench_storage(
    files: Annotated[int, typer.Option(help="Camera-minutes to upload.")] = 40,
    file_mb: Annotated[float, typer.Option(help="Size of one file, MB (a 1 Mbit/s minute is 7.5).")] = 7.5,
    workers: Annotated[int, typer.Option(help="Files uploaded at once (the uploader's upload_workers).")] = 2,
    json_out: JsonOpt = True,
) -> None:
    """Uploader throughput to a real S3 server (SeaweedFS) against a bare boto3 put of the same files, same run."""
    from kuzet.bench.storage import run_storage_benchmark
    from kuzet.services.recording.seaweed import SeaweedUnavailable

    if files < 1 or file_mb <= 0 or not 1 <= workers <= 32:
        fail("--files must be at least 1, --file-mb above 0, --workers 1–32")
    try:
        print_json(run_storage_benchmark(files, int(file_mb * 1_000_000), workers, progress=err_console))
    except SeaweedUnavailable as exc:
        fail(str(exc))
