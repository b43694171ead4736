"""``kuzet bench billing``: the invoice run for 100,000 subscribers and the import of 100,000 payments, on SQLite and
on PostgreSQL, each against a ceiling measured in the same run (the bare reads and bulk inserts of the same rows,
without the rules)."""

from __future__ import annotations

import csv
import os
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, insert, select, text

from kuzet.bench import create_scratch_schema, drop_scratch_schema
from kuzet.domain.cloud import Period

TZ = "Asia/Almaty"


def _installation(work: Path, database_url: str | None):  # noqa: ANN202
    from kuzet.config import load_settings
    from kuzet.installation import Installation

    env = {"KUZET_DATA_DIR": str(work)}
    schema = None
    if database_url:
        schema, env["KUZET_DATABASE_URL"] = create_scratch_schema(database_url, "bench")
    inst = Installation.open(settings=load_settings(environ=env))
    inst.init()
    return inst, schema


def _seed(inst, subscribers: int, period: Period, say) -> None:  # noqa: ANN001
    """Buildings of 2 entrances × 100 flats; every flat active since before the month, one in ten suspended in it,
    one in twenty activated in it and one in fifty back after a suspension."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cloud.plans import save_plan
    from kuzet.services.places import create_place
    from kuzet.store.models.cloud import Contract, Flat, SubscriptionChange

    rng = random.Random(7)
    per_building = 200
    buildings = (subscribers + per_building - 1) // per_building
    with inst.db.session() as session:
        plan = save_plan(session, SYSTEM, name="Bench", archive_days=30, clip_downloads_per_month=10,
                         price_tiyn=250_000)
        region = create_place(session, SYSTEM, "region", "Bench region")
        street = create_place(session, SYSTEM, "street", "Bench street", parent_id=create_place(
            session, SYSTEM, "district", "Bench district", parent_id=region.id).id)
        plan_id, street_id = plan.id, street.id
    say(f"seeding {subscribers} subscribers in {buildings} buildings…")
    first = datetime(period.year, period.month, 1, 12, tzinfo=UTC)
    flat_id = 0
    for start in range(0, buildings, 100):
        with inst.db.session() as session:
            contracts, flats, changes = [], [], []
            for b in range(start, min(buildings, start + 100)):
                building = create_place_fast(session, street_id, b)
                entrances = [create_place_fast(session, building, b, e) for e in (1, 2)]
                contracts.append({"id": b + 1, "number": f"B-{b}", "building_id": building, "plan_id": plan_id,
                                  "entrance_ids": entrances, "starts_on": date(2020, 1, 1),
                                  "created_at": first - timedelta(days=400)})
                for n in range(per_building):
                    if flat_id >= subscribers:
                        break
                    flat_id += 1
                    created = first - timedelta(days=40)
                    flats.append({"id": flat_id, "contract_id": b + 1, "entrance_id": entrances[n % 2],
                                  "number": str(n + 1), "account": f"B-{b}-{n + 1}", "state": "active",
                                  "state_since": created, "resident_slots": 4, "created_at": created})
                    roll = rng.random()
                    if roll < 0.05:  # activated in the month
                        changes.append({"flat_id": flat_id, "at": created, "to_state": "trial", "reason": "created"})
                        changes.append({"flat_id": flat_id, "at": first + timedelta(days=rng.randrange(27)),
                                        "to_state": "active", "reason": "trial_over"})
                        continue
                    changes.append({"flat_id": flat_id, "at": created, "to_state": "active", "reason": "created"})
                    if roll < 0.15:
                        day = rng.randrange(1, 20)
                        changes.append({"flat_id": flat_id, "at": first + timedelta(days=day),
                                        "to_state": "suspended", "reason": "unpaid"})
                        if roll < 0.07:
                            changes.append({"flat_id": flat_id, "at": first + timedelta(days=day + 5),
                                            "to_state": "active", "reason": "paid"})
            session.execute(insert(Contract), contracts)
            session.execute(insert(Flat), flats)
            session.execute(insert(SubscriptionChange), changes)
    if inst.db.engine.dialect.name == "postgresql":
        with inst.db.session() as session:
            for table in ("contracts", "flats", "subscription_changes", "places"):
                session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT max(id) FROM {table}))"))
            session.execute(text("ANALYZE"))



def create_place_fast(session, parent_id: int, b: int, entrance: int | None = None) -> int:  # noqa: ANN001
    """A building or entrance row without the audit record per place (the bench's own set-up)."""
    from kuzet.store.models import Place

    parent = session.get(Place, parent_id)
    place = Place(parent_id=parent_id, kind="entrance" if entrance else "building",
                  name=f"Bench {b}" + (f", entrance {entrance}" if entrance else ""), path="")
    session.add(place)
    session.flush()
    place.path = f"{parent.path}{place.id}/"
    return place.id


def _ceiling_invoices(inst, period: Period) -> float:  # noqa: ANN001
    """Read the same flats and changes, insert as many invoice rows for another month, with no rules."""
    from kuzet.store.models.cloud import Flat, Invoice, SubscriptionChange

    started = time.perf_counter()
    with inst.db.session() as session:
        flats = session.execute(select(Flat.id, Flat.plan_id)).all()
        session.execute(select(SubscriptionChange.flat_id, SubscriptionChange.at, SubscriptionChange.to_state)).all()
        now = datetime.now(UTC)
        rows = [{"flat_id": f, "period": "1999-01", "plan_id": 1, "plan_name": "Bench", "price_tiyn": 1,
                 "days_active": 1, "days_in_period": 31, "amount_tiyn": 1, "due_on": date(1999, 2, 1),
                 "created_at": now} for f, _p in flats]
        for start in range(0, len(rows), 20_000):
            session.execute(insert(Invoice), rows[start:start + 20_000])
    took = time.perf_counter() - started
    with inst.db.session() as session:
        session.execute(delete(Invoice).where(Invoice.period == "1999-01"))
    return took


def _payments_file(inst, work: Path, rows: int) -> Path:  # noqa: ANN001
    from kuzet.store.models.cloud import Flat

    with inst.db.session() as session:
        accounts = list(session.scalars(select(Flat.account).order_by(Flat.id).limit(rows)))
    path = work / "payments.csv"
    today = datetime.now(UTC).date() - timedelta(days=1)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["account", "amount", "paid_on", "reference"])
        for n in range(rows):
            out.writerow([accounts[n % len(accounts)], f"{2500 + n % 7}.{n % 100:02d}", today.isoformat(),
                          f"BANK-{n:08d}"])
    return path


def _ceiling_payments(inst, path: Path) -> float:  # noqa: ANN001
    """Read the same file and bulk-insert the same rows, with no checks."""
    from kuzet.store.models.cloud import Payment

    started = time.perf_counter()
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    now = datetime.now(UTC)
    with inst.db.session() as session:
        payload = [{"flat_id": 1, "amount_tiyn": 1, "paid_on": date(1999, 1, 1), "reference": f"C-{r[3]}",
                    "batch": "ceiling", "imported_at": now} for r in rows]
        for start in range(0, len(payload), 5_000):
            session.execute(insert(Payment), payload[start:start + 5_000])
    took = time.perf_counter() - started
    with inst.db.session() as session:
        session.execute(delete(Payment).where(Payment.batch == "ceiling"))
    return took


def _cpu_now(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by this thread (the run is single-threaded), or by process ``pid``
    (PostgreSQL's backend of the session, on the same machine). Beside the wall time, what the run itself cost: on a
    busy shared machine the wall time measures the queue for the CPU as much as the work."""
    if pid is None:
        return time.thread_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # a database on another machine: its work is not counted
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend(session) -> tuple[int | None, float]:  # noqa: ANN001
    """PostgreSQL's backend process of this session and its CPU so far (SQLite works inside this process)."""
    if session.get_bind().dialect.name != "postgresql":
        return None, 0.0
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid, _cpu_now(pid)


def run_billing_benchmark(subscribers: int = 100_000, payments: int = 100_000,
                          database_urls: list[str | None] | None = None, progress=None) -> dict:  # noqa: ANN001
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cloud.billing import run_invoices
    from kuzet.services.cloud.payments import import_payments

    def say(message: str) -> None:
        if progress is not None:
            progress.print(message)

    today = datetime.now(UTC).date()
    last = today.replace(day=1) - timedelta(days=1)
    period = Period(last.year, last.month)
    out: dict = {"benchmark": "billing", "subscribers": subscribers, "payments": payments, "period": str(period),
                 "goal_seconds": 10, "runs": []}
    for url in database_urls or [None]:
        work = Path(tempfile.mkdtemp(prefix="kuzet-billing-"))
        inst, schema = _installation(work, url)
        backend = inst.db.engine.dialect.name
        try:
            _seed(inst, subscribers, period, say)
            say(f"{backend}: invoice run…")
            started, cpu = time.perf_counter(), _cpu_now(None)
            with inst.db.session() as session:
                backend_pid, backend_cpu = _backend(session)
                result = run_invoices(session, SYSTEM, period, TZ, due_on=today + timedelta(days=10))
                invoice_cpu = _cpu_now(None) - cpu + (_cpu_now(backend_pid) - backend_cpu if backend_pid else 0.0)
            invoice_seconds = time.perf_counter() - started
            ceiling_invoices = _ceiling_invoices(inst, period)
            path = _payments_file(inst, work, payments)
            say(f"{backend}: payment import…")
            started, cpu = time.perf_counter(), _cpu_now(None)
            with inst.db.session() as session:
                backend_pid, backend_cpu = _backend(session)
                imported = import_payments(session, SYSTEM, path, TZ)
                payment_cpu = _cpu_now(None) - cpu + (_cpu_now(backend_pid) - backend_cpu if backend_pid else 0.0)
            payment_seconds = time.perf_counter() - started
            ceiling_payments = _ceiling_payments(inst, path)
            out["runs"].append({
                "database": backend,
                "invoice_run": {"seconds": round(invoice_seconds, 2), "invoices": result.invoices,
                                "amount_tiyn": result.amount_tiyn, "ceiling_seconds": round(ceiling_invoices, 2),
                                "ratio": round(invoice_seconds / ceiling_invoices, 2) if ceiling_invoices else None,
                                "cpu_seconds": round(invoice_cpu, 2), "met": invoice_seconds < 10},
                "payment_import": {"seconds": round(payment_seconds, 2), "rows": imported.rows,
                                   "ceiling_seconds": round(ceiling_payments, 2),
                                   "ratio": round(payment_seconds / ceiling_payments, 2) if ceiling_payments else None,
                                   "cpu_seconds": round(payment_cpu, 2), "met": payment_seconds < 10},
                "load_average": round(os.getloadavg()[0], 1)})
        finally:
            inst.close()
            if schema and url:
                drop_scratch_schema(url, schema)
    return out
