"""Commands of the safe-yard registry: ``kuzet keys rotate`` and ``kuzet safeyard import|assign|assignments``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kuzet.cli.common import DataOpt, JsonOpt, console, err_console, fail, open_installation, print_json, rejected

keys_app = typer.Typer(help="Keys kept outside the database.", no_args_is_help=True)
safeyard_app = typer.Typer(help="Safe-yard passports.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.add_typer(safeyard_app, name="safeyard")


@keys_app.command("rotate")
def keys_rotate(data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """New personal-data key; every safe-yard record re-encrypted with it; old keys dropped."""
    from kuzet.services.safeyard.lists import rotate_keys
    from kuzet.services.safeyard.vault import Vault

    inst = open_installation(data)
    vault = Vault(inst.settings.keys_path)
    with err_console.status("re-encrypting personal records…"), inst.db.session() as session:
        result = rotate_keys(session, vault)
    vault.drop_old_keys()
    if json_out:
        print_json(result)
    else:
        console.print(f"new key {result['key_id']}; {result['records']} records re-encrypted")


@safeyard_app.command("import")
def safeyard_import(yard: int, file: Path, user: Annotated[str, typer.Option(help="Inspector importing.")],
                    data: DataOpt = None) -> None:
    """Import a passport's lists (CSV/XLSX, column category + fields). All rows or none."""
    from sqlalchemy import select

    from kuzet.services.audit import Actor
    from kuzet.services.crime.importing import ImportRejected
    from kuzet.services.safeyard import passport as pp
    from kuzet.services.safeyard.lists import import_people
    from kuzet.services.safeyard.vault import Vault
    from kuzet.store.models import User
    from kuzet.store.models.safeyard import SafeYard

    inst = open_installation(data)
    try:
        with inst.db.session() as session:
            who = session.scalar(select(User).where(User.username == user))
            row = session.get(SafeYard, yard)
            if who is None or row is None or not pp.may_read_personal(session, who, row):
                fail(f"safe yard {yard} not found for {user}")
            n = import_people(session, Vault(inst.settings.keys_path), Actor(who.id, who.username, "cli"), row, file)
    except ImportRejected as exc:
        rejected(exc.errors)
    console.print(f"{n} records imported")


@safeyard_app.command("assign")
def safeyard_assign(user: Annotated[str, typer.Argument(help="Inspector (or supervising police operator).")],
                    place: Annotated[int, typer.Argument(help="District (or settlement, region) id.")],
                    basis: Annotated[str, typer.Option("--basis", help="The order that assigns them.")],
                    until: Annotated[str | None, typer.Option(help="End of the assignment (ISO date or time).")] = None,
                    data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Give need to know: USER reads the personal data of the safe yards in PLACE (audited)."""
    from sqlalchemy import select

    from kuzet.services.audit import Actor
    from kuzet.services.safeyard import assignments
    from kuzet.store.models import User

    valid_to = _when(until) if until else None
    inst = open_installation(data)
    with inst.db.session() as session:
        who = session.scalar(select(User).where(User.username == user))
        if who is None:
            fail(f"no user {user!r}")
        try:
            row = assignments.assign(session, Actor(None, "cli", "cli"), None, user_id=who.id, place_id=place,
                                     legal_basis=basis, valid_to=valid_to)
        except (assignments.AssignmentError, assignments.AssignmentDenied) as exc:
            fail(str(exc))
        out = assignments.assignment_out(session, row)
    if json_out:
        print_json(out)
    else:
        console.print(f"assignment {out['id']}: {user} → {out['place']} ({basis})", highlight=False)


@safeyard_app.command("assignments")
def safeyard_assignments(data: DataOpt = None, json_out: JsonOpt = False) -> None:
    """Who is assigned to which district, since when, until when, on what basis."""
    from rich.table import Table
    from sqlalchemy import select

    from kuzet.services.safeyard import assignments
    from kuzet.store.models.safeyard import DistrictAssignment

    inst = open_installation(data)
    with inst.db.session() as session:
        rows = [assignments.assignment_out(session, r)
                for r in session.scalars(select(DistrictAssignment).order_by(DistrictAssignment.id))]
    if json_out:
        print_json(rows)
        return
    table = Table("id", "user", "place", "basis", "until", "active")
    for r in rows:
        table.add_row(str(r["id"]), r["username"] or "", r["place"] or "", r["legal_basis"],
                      str(r["valid_to"] or "—"), "yes" if r["active"] else "no")
    console.print(table)


def _when(text: str):  # noqa: ANN202
    from datetime import UTC, datetime

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--until {text!r} is not an ISO date or time")
    return value if value.tzinfo else value.replace(tzinfo=UTC)
