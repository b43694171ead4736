"""``kuzet bench …``: speed and memory goals, measured against a ceiling from the same run. Output is JSON."""

import typer

bench_app = typer.Typer(help="Benchmarks: print JSON, each against a ceiling measured in the same run.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """``kuzet bench``; capabilities add their benchmarks to ``bench_app`` when they register."""
    app.add_typer(bench_app, name="bench")


@bench_app.command("api")
def bench_api(
    database: str = typer.Option("sqlite", help="sqlite (a fresh file) or a PostgreSQL URL "
                                                "(a fresh schema in it, dropped afterwards)."),
    scale: float = typer.Option(1.0, min=0.001, max=10.0,
                                help="Size of the synthetic city: 1 = 10,000 cameras, 100,000 grants, 1,000,000 "
                                     "events and audit records; 0.01 takes about a minute."),
    seconds: float = typer.Option(8.0, min=1, help="Seconds of load per endpoint and role."),
    connections: int = typer.Option(50, min=1, max=1000, help="Concurrent connections (wrk -c)."),
    workers: int = typer.Option(1, min=1, max=64, help="API worker processes (uvicorn --workers)."),
    against: str | None = typer.Option(None, "--against", help="Instead of a synthetic city: drive a running "
                                       "installation at this URL (the demo: http://127.0.0.1:8080) — the camera "
                                       "list as --user, and live latency in Chromium with and without that load."),
    user: str = typer.Option("center", help="With --against: who signs in (the demo's control centre)."),
    password: str = typer.Option("demo", help="With --against: their password (the demo's)."),
    camera: int | None = typer.Option(None, help="With --against: the camera watched live (default: the first "
                                                 "the user sees)."),
    browser: bool = typer.Option(True, "--browser/--no-browser", help="With --against: measure live latency in "
                                                                      "headless Chromium."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """The API at city scale: camera list and detail, timeline, alarms, events, a camera's audit log and the map,
    as the control centre, a district unit and a resident, against /api/v1/health (the ceiling). With --against,
    a running installation instead (issue 16's check: ≥ 200 req/s, live latency within 0.1 s)."""
    from kuzet.bench.api import run_against, run_api_benchmark
    from kuzet.cli.common import err_console, fail, print_json, progress_bar

    if against is not None:
        if not against.startswith(("http://", "https://")):
            fail("--against must be an http:// or https:// URL")
        try:
            with progress_bar() as bar:
                task = bar.add_task("signing in", total=1)
                result = run_against(against, user, password, seconds, min(connections, 1000), camera, browser,
                                     progress=lambda stage, done, total: bar.update(
                                         task, description=stage, completed=done, total=max(total, 1)))
        except RuntimeError as exc:
            fail(str(exc))
        if not json_out:
            c = result["cameras"]
            err_console.print(f"ceiling /api/v1/health: {result['ceiling']['rps']:.0f} req/s; camera list as "
                              f"{user}: {c['rps']:.0f} req/s p50 {c['p50_ms']} ms p99 {c['p99_ms']} ms "
                              f"errors {c['errors']}")
            if "live" in result:
                live = result["live"]
                err_console.print(f"live latency p50: {live['idle']['p50_s']} s idle, {live['under_load']['p50_s']}"
                                  f" s under load (+{live['added_p50_s']} s)")
        print_json(result)
        return
    url = None if database == "sqlite" else database
    if url is not None and not url.startswith("postgresql"):
        fail("--database must be sqlite or a postgresql:// URL")
    try:
        with progress_bar() as bar:
            task = bar.add_task("generating the city", total=1)
            result = run_api_benchmark(url, scale, seconds, connections, workers, progress=lambda stage, done, total:
                                       bar.update(task, description=stage, completed=done, total=max(total, 1)))
    except RuntimeError as exc:
        fail(str(exc))
    if not json_out:
        ceiling = result["ceiling"]
        err_console.print(f"ceiling /api/v1/health: {ceiling['rps']:.0f} req/s, p99 {ceiling['p99_ms']} ms, "
                          f"server CPU {ceiling.get('server_cpu_ms_per_request')} ms/request")
        for role, per in result["results"].items():
            for name, r in per.items():
                err_console.print(f"{role:9} {name:13} {r['rps']:8.0f} req/s  p50 {r['p50_ms']} ms  "
                                  f"p99 {r['p99_ms']} ms  errors {r['errors']}  "
                                  f"CPU {r.get('server_cpu_ms_per_request')} ms/request")
    print_json(result)


@bench_app.command("scale")
def bench_scale(
    database: str = typer.Option(..., help="A PostgreSQL URL (a fresh schema in it, dropped afterwards)."),
    events: str = typer.Option("nats://127.0.0.1:4222", help="The NATS server the nodes share."),
    cameras: int = typer.Option(30, min=2, max=2000, help="Simulated 1 Mbit/s cameras (kuzet sim)."),
    nodes: int = typer.Option(3, min=2, max=16, help="Recorder nodes (kuzet serve --role recorder, cluster enabled)."),
    api_nodes: int = typer.Option(2, "--api-nodes", min=0, max=8, help="API nodes (kuzet serve --role api)."),
    workers: int = typer.Option(1, "--workers", min=0, max=8, help="Worker nodes (kuzet serve --role worker)."),
    seconds: float = typer.Option(30.0, min=5, max=600, help="Seconds of CPU measurement, single box and cluster."),
    s3: bool | None = typer.Option(None, "--s3/--no-s3", help="Record to SeaweedFS (default: when weed is found)."),
    s3_outage: float | None = typer.Option(None, "--s3-outage", min=0, max=3600,
                                           help="Seconds SeaweedFS is stopped while recording goes on (default 60 "
                                                "with S3; 0: no outage)."),
    s3_outage_kind: str = typer.Option("stop", "--s3-outage-kind",
                                       help="stop: the server is stopped (connections refused) and started again; "
                                            "freeze: SIGSTOP then SIGCONT (connections accepted, never answered: a "
                                            "hung store)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON only."),
) -> None:
    """Recorder, API and worker nodes on one machine: cameras per node, CPU per stream against a single box of the
    same cameras in the same run, live video through the API nodes, S3 away for a while (the local backlog, its
    drain), kill -9 of one recorder (time until its cameras record again, gaps), bytes in S3 = bytes recorded."""
    from kuzet.bench.scale import run_scale_benchmark
    from kuzet.cli.common import err_console, fail, print_json

    if not database.startswith("postgresql"):
        fail("--database must be a postgresql:// URL")
    if s3_outage_kind not in ("stop", "freeze"):
        fail("--s3-outage-kind must be stop or freeze")
    try:
        result = run_scale_benchmark(database, events, cameras=cameras, nodes=nodes, api_nodes=api_nodes,
                                     workers=workers, seconds=seconds, s3=s3, s3_outage=s3_outage,
                                     s3_outage_kind=s3_outage_kind,
                                     say=None if json_out else err_console.print)
    except RuntimeError as exc:
        fail(str(exc))
    if not json_out:
        c, f = result["cluster"], result["failover"]
        err_console.print(f"cameras per node {c['cameras_per_node']}; CPU per stream {c['cpu_percent_per_stream']} % "
                          f"= {c['ratio_to_single_box']}× the single box")
        err_console.print(f"kill -9 {f['killed']}: {f['cameras_moved']} cameras recording again after "
                          f"{f['seconds_until_recording_again']['max']} s at most (goal {f['goal_seconds']} s)")
        if "s3_outage" in result:
            o = result["s3_outage"]
            err_console.print(f"S3 stopped {o['seconds_stopped']} s (+{o['seconds_until_s3_answered_again']} s to "
                              f"start): backlog {o['backlog_at_return']['files']} files, drained "
                              f"{o['seconds_until_drained']} s after it returned; {o['gaps_while_away']} gaps")
        if "s3" in result:
            err_console.print(f"S3: {result['s3']['files_lost']} files lost; bytes in S3 = bytes recorded: "
                              f"{result['s3']['bytes_in_s3_equal_bytes_recorded']}")
    print_json(result)
