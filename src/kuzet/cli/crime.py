"""``kuzet crime …``: import offences and population, dynamics report, hot spots, effect, coverage, placement."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

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

crime_app = typer.Typer(help="Crime analytics.", no_args_is_help=True)
FromOpt = Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")]
ToOpt = Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD.")]


def register(app: typer.Typer) -> None:
    from kuzet.cli.bench import bench_app

    app.add_typer(crime_app, name="crime")
    bench_app.command("crime")(bench_crime)


def bench_crime(
    records: Annotated[int, typer.Option(help="Offence records for the dynamics report.")] = 1_000_000,
    json_out: JsonOpt = False,
) -> None:
    """Dynamics over 1,000,000 records, Gi* with 999 permutations on 10,000 cells, placement at scale."""
    from kuzet.bench.crime import run_crime_benchmark

    print_json(run_crime_benchmark(records, progress=None if json_out else err_console))


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{name} {text!r} is not a date (YYYY-MM-DD)")


@crime_app.command("import")
def crime_import(file: Path, data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Import registered offences (CSV or XLSX; English or Russian headers). All rows or none; re-import updates."""
    from kuzet.services.crime.importing import ImportRejected, import_offences

    if not file.exists():
        fail(f"{file}: no such file")
    inst = open_installation(data)
    try:
        with progress_bar() as bar:
            task = bar.add_task("importing offences", total=None)
            with inst.db.session() as session:
                result = import_offences(session, file, progress=lambda n, t: bar.update(task, completed=n, total=t))
    except ImportRejected as exc:
        rejected(exc.errors, json_out)
    if json_out:
        print_json({"rows": result.rows, "created": result.created, "updated": result.updated})
    else:
        console.print(f"{result.rows} rows: {result.created} new, {result.updated} updated")


@crime_app.command("population")
def crime_population(file: Path, data: DataOpt = None) -> None:
    """Import population per district and year (columns district, year, population)."""
    from kuzet.services.crime.importing import ImportRejected, import_population

    inst = open_installation(data)
    try:
        with inst.db.session() as session:
            n = import_population(session, file)
    except ImportRejected as exc:
        fail(str(exc))
    console.print(f"{n} population rows imported")


@crime_app.command("report")
def crime_report(
    start: FromOpt, end: ToOpt,
    district: Annotated[str | None, typer.Option(help="One district only.")] = None,
    compare_rate: Annotated[float | None, typer.Option(help="Country rate per 10,000 to compare with.")] = None,
    lang: Annotated[str, typer.Option(help="ru, kk or en.")] = "ru",
    charts: Annotated[Path | None, typer.Option(help="Write PNG and SVG charts into this directory.")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write an HTML report.")] = None,
    pdf_out: Annotated[Path | None, typer.Option("--pdf", help="Write a PDF of the charts.")] = None,
    data: DataOpt = None, json_out: JsonOpt = False,
) -> None:
    """Dynamics against the same period of the previous year, rates per 10,000, and a press release in ru/kk/en."""
    from kuzet.services.crime.dynamics import report
    from kuzet.services.crime.press import press_release
    from kuzet.web import i18n

    inst = open_installation(data)
    with inst.db.session() as session:
        try:
            rep = report(session, _day(start, "--from"), _day(end, "--to"), district, compare_rate)
        except ValueError as exc:
            fail(str(exc))
    rep["press_release"] = {code: press_release(rep, code, i18n) for code in ("ru", "kk", "en")}
    if charts or html_out or pdf_out:
        from kuzet.services.crime import charts as ch

        if charts:
            ch.write_charts(rep, charts, i18n, lang)
        if html_out:
            html_out.write_text(ch.html_report(rep, i18n, lang), encoding="utf-8")
        if pdf_out:
            import io

            import matplotlib.pyplot as plt
            from matplotlib.backends.backend_pdf import PdfPages

            with PdfPages(pdf_out) as pdf:
                for group in ch.GROUPS:
                    img = plt.imread(io.BytesIO(ch.chart(rep, group, i18n, "png", lang)))
                    fig = plt.figure(figsize=(8.27, 11.69))
                    fig.text(0.05, 0.97, rep["press_release"][lang][:400], wrap=True, va="top", fontsize=8)
                    fig.figimage(img, xo=40, yo=200)
                    pdf.savefig(fig)
                    plt.close(fig)
    if json_out:
        print_json(rep)
        return
    total = rep["total"]
    console.print(f"[bold]{rep['period']['start']} — {rep['period']['end']}[/]: {total['current']} "
                  f"(previous {total['previous']}, {total['change_pct']:+.1f} %)" if total["change_pct"] is not None
                  else f"{total['current']} offences")
    for group in ("gravity", "offence_type", "district"):
        table = Table(title=group)
        for col in ("", "previous", "current", "change %"):
            table.add_column(col)
        for r in rep["by"][group]:
            table.add_row(str(r["key"]), str(r["previous"]), str(r["current"]),
                          "—" if r["change_pct"] is None else f"{r['change_pct']:+.1f}")
        console.print(table)
    console.print(rep["press_release"][lang])


@crime_app.command("hotspots")
def crime_hotspots(
    start: FromOpt, end: ToOpt,
    later_from: Annotated[str | None, typer.Option(help="Later period start, for the PAI.")] = None,
    later_to: Annotated[str | None, typer.Option(help="Later period end.")] = None,
    district: Annotated[str | None, typer.Option()] = None,
    bandwidth: Annotated[float | None, typer.Option(help="KDE bandwidth, metres (default: Silverman's rule).")] = None,
    cell: Annotated[float | None, typer.Option(help="KDE cell size, metres (default: bandwidth / 4).")] = None,
    permutations: Annotated[int, typer.Option(help="Gi* permutations.")] = 999,
    geojson: Annotated[Path | None, typer.Option(help="Write the Gi* cells as GeoJSON.")] = None,
    data: DataOpt = None, json_out: JsonOpt = False,
) -> None:
    """Quartic KDE and Getis-Ord Gi* hot spots; the PAI against a later period."""
    from kuzet.services.crime.analysis import hotspot_map

    inst = open_installation(data)
    later = (_day(later_from, "--later-from"), _day(later_to, "--later-to")) if later_from and later_to else None
    with inst.db.session() as session:
        try:
            result = hotspot_map(session, _day(start, "--from"), _day(end, "--to"), district=district, later=later,
                                 bandwidth=bandwidth, cell=cell, permutations=permutations)
        except ValueError as exc:
            fail(str(exc))
    if geojson:
        geojson.write_text(json.dumps(result["gi_star"], ensure_ascii=False))
    summary = {k: v for k, v in result.items() if k not in ("kde", "gi_star")}
    if json_out:
        print_json(summary)
    else:
        console.print(summary)


@crime_app.command("effect")
def crime_effect(
    installed_from: Annotated[str, typer.Option(help="Cameras installed from this day…")],
    installed_to: Annotated[str, typer.Option(help="…to this day form the intervention.")],
    radius: Annotated[float, typer.Option(help="Treated radius around each camera, metres.")] = 150,
    months: Annotated[int, typer.Option(help="Months before and after.")] = 12,
    offence_type: Annotated[str | None, typer.Option(help="Only this offence type.")] = None,
    lang: Annotated[str, typer.Option(help="Language of the verdict: ru, kk or en.")] = "en",
    safe_yards: Annotated[bool, typer.Option("--safe-yards", help="Safe yards that joined in the period, "
                                                                  "instead of cameras installed.")] = False,
    data: DataOpt = None, json_out: JsonOpt = False,
) -> None:
    """Effect of cameras installed (or safe yards joined) in a period: RES with CI, WDQ and the WDD test."""
    from kuzet.services.crime.analysis import cameras_installed, intervention_effect, safe_yards_joined
    from kuzet.services.crime.effect import verdict
    from kuzet.web import i18n

    inst = open_installation(data)
    with inst.db.session() as session:
        pick = safe_yards_joined if safe_yards else cameras_installed
        when, sites = pick(session, _day(installed_from, "--installed-from"), _day(installed_to, "--installed-to"))
        if not sites:
            fail("nothing with coordinates was installed or joined in that period")
        try:
            result = intervention_effect(session, when, sites, radius=radius, months=months,
                                         offence_type=offence_type)
        except ValueError as exc:
            fail(str(exc))
    result["verdict"] = verdict(result, lang, i18n)
    if json_out:
        print_json(result)
    else:
        console.print(result["counts"])
        console.print(result["verdict"])


@crime_app.command("coverage")
def crime_coverage(
    streets: Annotated[Path | None, typer.Option(help="Street network: GeoJSON or OpenStreetMap .osm.pbf "
                                                     "(default: streets in the database).")] = None,
    main_only: Annotated[bool, typer.Option(help="Main streets only (OSM motorway … tertiary).")] = False,
    data: DataOpt = None, json_out: JsonOpt = False,
) -> None:
    """Share of street length in view of cameras (per district and city-wide) and of street offences in view."""
    from kuzet.services.crime.analysis import street_coverage
    from kuzet.services.crime.streets import read_streets

    inst = open_installation(data)
    try:
        network = read_streets(streets, main_only) if streets else None
    except (ValueError, OSError) as exc:
        fail(str(exc))
    with inst.db.session() as session:
        try:
            result = street_coverage(session, network)
        except ValueError as exc:
            fail(str(exc))
    if json_out:
        print_json(result)
    else:
        console.print(f"{result['covered_share_pct']} % of {result['street_km']} km of streets in view of "
                      f"{result['cameras']} cameras; {result['street_offences_in_view_pct']} % of street offences")


@crime_app.command("plan")
def crime_plan(
    cameras: Annotated[int, typer.Option("--cameras", help="How many new cameras.")],
    start: FromOpt, end: ToOpt,
    radius: Annotated[float, typer.Option(help="Coverage radius of a camera, metres.")] = 100,
    method: Annotated[str, typer.Option(help="auto, exact or greedy.")] = "auto",
    geojson: Annotated[Path | None, typer.Option(help="Write the chosen sites as GeoJSON.")] = None,
    data: DataOpt = None, json_out: JsonOpt = False,
) -> None:
    """Where to put K new cameras to cover the most offences, existing cameras kept (MCLP)."""
    from kuzet.services.crime.analysis import plan_cameras

    if method not in ("auto", "exact", "greedy"):
        fail("--method is auto, exact or greedy")
    inst = open_installation(data)
    with inst.db.session() as session:
        try:
            result = plan_cameras(session, cameras, _day(start, "--from"), _day(end, "--to"), radius=radius,
                                  method=method)
        except ValueError as exc:
            fail(str(exc))
    if geojson:
        geojson.write_text(json.dumps(result["geojson"]))
    result.pop("geojson")
    if json_out:
        print_json(result)
    else:
        console.print(result)
