"""Commands of the operations capability."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kuzet.cli.bench import bench_app
from kuzet.cli.common import JsonOpt, err_console, fail, print_json, progress_bar


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the kuzet app (and to kuzet bench via kuzet.cli.bench)."""
    bench_app.command("motion")(bench_motion)


def bench_motion(
    streams: Annotated[int, typer.Option(help="Simulated 640x360 25 fps sub streams analysed at once.")] = 40,
    seconds: Annotated[float, typer.Option(help="Measured seconds (after a few seconds of warm-up).")] = 20,
    workers: Annotated[int, typer.Option(help="Analysis threads (operations.workers).")] = 2,
    fps: Annotated[float, typer.Option(help="Frames analysed per second per stream.")] = 5.0,
    file: Annotated[Path | None, typer.Option(help="Use this H.264/H.265 file instead of the generated clip.")] = None,
    json_out: JsonOpt = False,
    skip_ceiling: Annotated[bool, typer.Option(help="Do not measure the decode ceilings.")] = False,
    opencv_threads: Annotated[int, typer.Option(help="OpenCV's own threads (0: OpenCV's default, one per core).")]
    = 0,
) -> None:
    """Motion analysis CPU per stream (decode included) against the bare decode ceiling measured in the same run."""
    from kuzet.services.operations.bench_motion import run_motion_benchmark

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
