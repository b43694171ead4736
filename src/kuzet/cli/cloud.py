"""``kuzet cloud …``: the telecom's business from the command line — invoice runs and exports, payment imports,
printable notices with activation codes, the periodic checks, the compliance report; ``kuzet bench billing``."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

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

cloud_app = typer.Typer(help="The cloud service: billing, payments, activation notices, checks, compliance.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    from kuzet.cli.bench import bench_app

    app.add_typer(cloud_app, name="cloud")
    bench_app.command("billing")(bench_billing)


def _period(text: str):  # noqa: ANN202
    from kuzet.domain.cloud import Period

    try:
        return Period.parse(text)
    except ValueError as exc:
        fail(str(exc))


@cloud_app.command("invoice")
def invoice(period: Annotated[str, typer.Option(help="The month, YYYY-MM.")],
            due_on: Annotated[str | None, typer.Option(help="Due date, YYYY-MM-DD (default: in invoice_due_days).")]
            = None,
            replace: Annotated[bool, typer.Option(help="Make a month invoiced already again.")] = False,
            out: Annotated[Path | None, typer.Option(help="Also write the invoices to this .csv or .xlsx file.")]
            = None,
            data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Invoice every subscriber for a month, pro rata by days active (amounts in tiyn)."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cloud import billing
    from kuzet.services.cloud.common import CloudConflict

    month = _period(period)
    due = None
    if due_on:
        try:
            due = date.fromisoformat(due_on)
        except ValueError:
            fail(f"due_on {due_on!r} is not a date (YYYY-MM-DD)")
    inst = open_installation(data)
    try:
        with progress_bar() as bar, inst.db.session() as session:
            task = bar.add_task(f"invoicing {month}", total=None)
            result = billing.run_invoices(session, SYSTEM, month, inst.settings.timezone, due_on=due,
                                          due_days=inst.settings.cloud.invoice_due_days, replace=replace,
                                          progress=lambda n, total: bar.update(task, completed=n, total=total))
    except CloudConflict as exc:
        fail(str(exc))
    if out is not None:
        with inst.db.session() as session:
            rows = billing.invoice_rows(session, month)
        out.write_bytes(billing.invoices_xlsx(rows, str(month)) if out.suffix.lower() == ".xlsx"
                        else billing.invoices_csv(rows).encode("utf-8-sig"))
    if json_out:
        print_json(result.__dict__)
    else:
        from kuzet.domain.cloud import format_tenge

        console.print(f"{result.invoices} invoices for {result.period}, {format_tenge(result.amount_tiyn)} KZT in "
                      f"all, due {result.due_on}" + (f"; written to {out}" if out else ""))


@cloud_app.command("payments")
def payments(file: Path, data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Import the bank's register (CSV or XLSX: account, amount in tenge, paid_on, reference). All rows or none."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cloud.payments import import_payments
    from kuzet.services.cloud.tables import ImportRejected

    if not file.exists():
        fail(f"{file}: no such file")
    inst = open_installation(data)
    try:
        with progress_bar() as bar, inst.db.session() as session:
            task = bar.add_task("importing payments", total=None)
            result = import_payments(session, SYSTEM, file, inst.settings.timezone,
                                     grace_days=inst.settings.cloud.grace_days,
                                     progress=lambda n, total: bar.update(task, completed=n, total=total))
    except ImportRejected as exc:
        rejected(exc.errors, json_out)
    if json_out:
        print_json(result.__dict__)
    else:
        console.print(f"{result.rows} payments imported (batch {result.batch}); {result.reactivated} subscribers "
                      f"active again")


@cloud_app.command("notices")
def notices(entrance: Annotated[int, typer.Argument(help="Place id of the entrance.")],
            out: Annotated[Path, typer.Option(help="The PDF to write.")] = Path("notices.pdf"),
            reissue: Annotated[bool, typer.Option(help="Replace every code.")] = False,
            data: DataOpt = None) -> None:
    """The entrance's printable notice: a card per subscriber with its activation code and QR code."""
    from sqlalchemy import select

    from kuzet.services.audit import SYSTEM
    from kuzet.services.cloud import activation
    from kuzet.services.cloud import notices as printing
    from kuzet.services.cloud.subscriptions import current_residents
    from kuzet.store.models import Place
    from kuzet.store.models.cloud import Flat

    inst = open_installation(data)
    with inst.db.session() as session:
        place = session.get(Place, entrance)
        if place is None or place.kind != "entrance":
            fail(f"place {entrance} is not an entrance")
        building = session.get(Place, place.parent_id)
        flats = list(session.scalars(select(Flat).where(Flat.entrance_id == entrance, Flat.state != "ended")))
        if not flats:
            fail(f"entrance {entrance} has no subscribers")
        fresh = [f for f in flats if reissue or activation.current_code(session, inst.keys, f) is None]
        if fresh:
            activation.issue_codes(session, SYSTEM, inst.keys, fresh, days=inst.settings.cloud.code_days)
        cards = []
        for flat in sorted(flats, key=lambda f: (len(f.number), f.number)):
            code = activation.current_code(session, inst.keys, flat)
            cards.append(printing.Card(building.address or building.name, place.name, flat.number, code.code,
                                       code.expires_at, max(0, flat.resident_slots - len(
                                           current_residents(session, flat)))))
    out.write_bytes(printing.notices_pdf(cards, inst.settings.cloud.portal_url, inst.settings.timezone))
    console.print(f"{len(cards)} cards ({len(fresh)} new codes) written to {out}")


@cloud_app.command("check")
def check(data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Now, as `kuzet serve` does every minute: expire agreements, end trials, suspend unpaid flats, resume paid."""
    from kuzet.services.cloud.runtime import check_once

    result = check_once(open_installation(data))
    print_json(result) if json_out else console.print(", ".join(f"{k}: {v}" for k, v in result.items()))


@cloud_app.command("compliance")
def compliance(window_days: Annotated[int, typer.Option(help="Uptime and gaps over this many days.")] = 30,
               pdf: Annotated[Path | None, typer.Option(help="Write the printable report here.")] = None,
               xlsx: Annotated[Path | None, typer.Option(help="Write the workbook here.")] = None,
               lang: Annotated[str, typer.Option(help="ru or kk.")] = "ru",
               data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Required and held archive depth, uptime, gaps and offline cameras; exit 2 if any camera is short."""
    from rich.table import Table

    from kuzet.services.cloud.compliance import report
    from kuzet.services.cloud.compliance_print import compliance_pdf, compliance_xlsx

    if lang not in ("ru", "kk"):
        fail("lang must be ru or kk")
    inst = open_installation(data)
    with inst.db.session() as session:
        result = report(session, inst.settings.timezone, window_days=window_days)
    if pdf:
        pdf.write_bytes(compliance_pdf(result, lang, inst.settings.timezone))
    if xlsx:
        xlsx.write_bytes(compliance_xlsx(result, lang, inst.settings.timezone))
    if json_out:
        print_json(result.as_dict())
    else:
        table = Table("camera", "required", "held", "uptime %", "offline since", title="Retention compliance")
        for c in sorted(result.cameras, key=lambda c: (not c.short, c.name)):
            table.add_row(("[red]" if c.short else "") + c.name, str(c.required_days or "—"),
                          f"{c.held_days:.1f}", f"{c.uptime_percent:.1f}",
                          c.offline_since.isoformat() if c.offline_since else "")
        console.print(table)
        err_console.print(f"{len(result.short)} of {len(result.cameras)} cameras short of their required depth")
    if result.short:
        raise typer.Exit(2)


def bench_billing(
    subscribers: Annotated[int, typer.Option(help="Subscribers to invoice.")] = 100_000,
    payments: Annotated[int, typer.Option(help="Payment rows to import.")] = 100_000,
    postgres: Annotated[str | None, typer.Option(envvar="KUZET_BENCH_POSTGRES_URL",
                                                 help="Also run on this PostgreSQL (a throw-away schema).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Invoice run for 100,000 subscribers and payment import of 100,000 rows (goal: each under 10 s) on SQLite and
    PostgreSQL, against the bare reads and inserts of the same rows."""
    from kuzet.bench.billing import run_billing_benchmark

    print_json(run_billing_benchmark(subscribers, payments, [None, postgres] if postgres else [None],
                                     progress=None if json_out else err_console))
