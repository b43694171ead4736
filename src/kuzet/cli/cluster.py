"""`kuzet cluster status`: the recorder nodes, the cameras each holds, lease ages and upload backlogs."""

from __future__ import annotations

import typer
from rich.table import Table

from kuzet.cli.common import DataOpt, JsonOpt, console, open_installation, print_json

cluster_app = typer.Typer(help="Recorder nodes sharing the cameras (docs/scale.md).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(cluster_app, name="cluster")


@cluster_app.command()
def status(data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Recorder nodes from the lease table: alive or not, cameras held, lease ages, upload backlogs; and the nodes
    analysing cameras, with the analysis leases each holds."""
    from kuzet.services.cluster.status import cluster_status

    inst = open_installation(data)
    try:
        report = cluster_status(inst.db, inst.settings.cluster.lease_seconds)
    finally:
        inst.close()
    if json_out:
        print_json(report.as_dict())
        return
    table = Table(title=f"{report.cameras_enabled} cameras enabled, {report.cameras_unheld} without a recorder")
    for column in ("node", "host", "pid", "state", "heartbeat", "cameras", "oldest renewal", "upload backlog"):
        table.add_column(column, justify="right" if column in ("pid", "cameras") else "left")
    for n in report.nodes:
        table.add_row(n.node, n.host, str(n.pid), "[green]alive[/]" if n.alive else "[red]silent[/]",
                      f"{n.heartbeat_age_seconds:.1f} s ago", str(n.cameras), f"{n.oldest_renewal_seconds:.1f} s",
                      f"{n.upload_backlog_files} files, {n.upload_backlog_bytes / 1e6:.1f} MB")
    if not report.nodes:
        console.print("no recorder nodes: [cluster] enabled is off, or none has started")
    else:
        console.print(table)
    if report.analysis_nodes:
        analysis = Table(title=f"analysis: {report.cameras_unanalysed} enabled cameras analysed by no node")
        for column in ("node", "host", "pid", "state", "heartbeat", "cameras", "camera ids", "oldest renewal"):
            analysis.add_column(column, justify="right" if column in ("pid", "cameras") else "left")
        for n in report.analysis_nodes:
            analysis.add_row(n.node, n.host, str(n.pid), "[green]alive[/]" if n.alive else "[red]silent[/]",
                             f"{n.heartbeat_age_seconds:.1f} s ago", str(n.cameras),
                             ", ".join(map(str, n.camera_ids)) or "-", f"{n.oldest_renewal_seconds:.1f} s")
        console.print(analysis)
