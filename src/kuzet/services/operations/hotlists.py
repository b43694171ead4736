"""Hot lists of wanted and stolen vehicles: lists with an alarm priority, entries by normalised plate, CSV import
(every row validated, all or nothing), and matching a read plate against every active list."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from kuzet.domain import plates
from kuzet.domain.access import POLICE_KINDS, Role
from kuzet.domain.operations import Priority
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.services.cameras import RowError
from kuzet.store.db import utcnow
from kuzet.store.models import Organisation, User
from kuzet.store.models.operations import HotList, HotListEntry

KINDS = ("wanted", "stolen", "other")
HEADERS = {
    "plate": ("plate", "номер", "госномер", "гос. номер", "грз", "нөмір"),
    "reason": ("reason", "причина", "основание", "описание", "себеп"),
    "valid_to": ("valid_to", "действует до", "до", "срок"),
}


class HotListError(ValueError):
    pass


class HotListImportRejected(HotListError):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} bad row(s); nothing imported: " + "; ".join(map(str, errors[:20])))
        self.errors = errors


class Action:
    LIST_CREATED = "hotlist.created"
    LIST_CHANGED = "hotlist.changed"
    LIST_DELETED = "hotlist.deleted"
    ENTRIES_CHANGED = "hotlist.entries_changed"


def may_use(session: Session, user: User) -> bool:
    """Hot lists are police data: platform admins and police operators of a duty unit or the control centre."""
    if user.role == Role.PLATFORM_ADMIN:
        return True
    if user.role != Role.POLICE_OPERATOR or user.organisation_id is None:
        return False
    org = session.get(Organisation, user.organisation_id)
    return org is not None and org.kind in POLICE_KINDS


def may_change(user: User, hot_list: HotList) -> bool:
    """Every police operator reads every list (a wanted car is wanted everywhere); only the organisation that keeps
    a list, and platform admins, change it."""
    if user.role == Role.PLATFORM_ADMIN:
        return True
    return hot_list.organisation_id is not None and hot_list.organisation_id == user.organisation_id


def list_out(hot_list: HotList, entries: int | None = None) -> dict[str, Any]:
    return {"id": hot_list.id, "name": hot_list.name, "kind": hot_list.kind, "priority": hot_list.priority,
            "organisation_id": hot_list.organisation_id, "active": hot_list.active,
            "created_at": hot_list.created_at, "entries": entries}


def entry_out(entry: HotListEntry) -> dict[str, Any]:
    return {"id": entry.id, "list_id": entry.list_id, "plate": entry.plate, "plate_text": entry.plate_text,
            "reason": entry.reason, "valid_to": entry.valid_to, "created_at": entry.created_at}


def _check(name: str | None, kind: str | None, priority: str | None) -> None:
    if name is not None and not name.strip():
        raise HotListError("a hot list needs a name")
    if kind is not None and kind not in KINDS:
        raise HotListError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if priority is not None and priority not in set(Priority):
        raise HotListError(f"priority must be one of {', '.join(Priority)}, not {priority!r}")


def create_list(session: Session, actor: Actor, name: str, kind: str = "wanted", priority: str = "high",
                organisation_id: int | None = None) -> HotList:
    _check(name, kind, priority)
    if session.scalar(select(HotList).where(HotList.name == name.strip())):
        raise HotListError(f"a hot list named {name!r} exists")
    hot_list = HotList(name=name.strip(), kind=kind, priority=priority, organisation_id=organisation_id,
                       created_by=actor.user_id)
    session.add(hot_list)
    session.flush()
    audit.append(session, actor, Action.LIST_CREATED, object_type="hot_list", object_id=hot_list.id,
                 details={"name": hot_list.name, "kind": kind, "priority": priority})
    return hot_list


def update_list(session: Session, actor: Actor, hot_list: HotList, **changes: Any) -> HotList:
    _check(changes.get("name"), changes.get("kind"), changes.get("priority"))
    for key in ("name", "kind", "priority", "active"):
        if key in changes and changes[key] is not None:
            setattr(hot_list, key, changes[key].strip() if key == "name" else changes[key])
    audit.append(session, actor, Action.LIST_CHANGED, object_type="hot_list", object_id=hot_list.id,
                 details={k: v for k, v in changes.items() if v is not None})
    return hot_list


def delete_list(session: Session, actor: Actor, hot_list: HotList) -> None:
    audit.append(session, actor, Action.LIST_DELETED, object_type="hot_list", object_id=hot_list.id,
                 details={"name": hot_list.name})
    session.execute(delete(HotListEntry).where(HotListEntry.list_id == hot_list.id))
    session.delete(hot_list)


def _valid_to(text: str) -> datetime | None:
    text = (text or "").strip()
    if not text:
        return None
    for parse in (datetime.fromisoformat, lambda s: datetime.strptime(s, "%d.%m.%Y")):
        try:
            value = parse(text)
        except ValueError:
            continue
        if isinstance(value, datetime) and (value.hour, value.minute, value.second) == (0, 0, 0):
            value = datetime.combine(value.date(), time.max)  # a date means "until the end of that day"
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    raise HotListError(f"valid_to {text!r} is not a date (YYYY-MM-DD or DD.MM.YYYY)")


def add_entry(session: Session, actor: Actor, hot_list: HotList, plate_text: str, reason: str = "",
              valid_to: datetime | date | str | None = None) -> HotListEntry:
    number = plates.normalise(plate_text)
    if number is None:
        raise HotListError(f"{plate_text!r} is not a Kazakhstan plate number")
    if isinstance(valid_to, str):
        valid_to = _valid_to(valid_to)
    elif isinstance(valid_to, date) and not isinstance(valid_to, datetime):
        valid_to = datetime.combine(valid_to, time.max, tzinfo=UTC)
    entry = session.scalar(select(HotListEntry).where(HotListEntry.list_id == hot_list.id,
                                                      HotListEntry.plate == number.plate))
    if entry is None:
        entry = HotListEntry(list_id=hot_list.id, plate=number.plate, plate_text=plate_text.strip())
        session.add(entry)
    entry.reason, entry.valid_to = reason.strip(), valid_to
    session.flush()
    audit.append(session, actor, Action.ENTRIES_CHANGED, object_type="hot_list", object_id=hot_list.id,
                 details={"added": [number.plate]})
    return entry


def remove_entry(session: Session, actor: Actor, entry: HotListEntry) -> None:
    audit.append(session, actor, Action.ENTRIES_CHANGED, object_type="hot_list", object_id=entry.list_id,
                 details={"removed": [entry.plate]})
    session.delete(entry)


def _cell(row: list[str], columns: dict[str, int], key: str) -> str:
    index = columns.get(key)
    return row[index].strip() if index is not None and index < len(row) else ""


@dataclass
class ImportResult:
    added: int
    updated: int


def import_csv(session: Session, actor: Actor, hot_list: HotList, source: str | Path | io.TextIOBase,
               replace: bool = False) -> ImportResult:
    """Rows ``plate, reason, valid_to`` (Russian headers accepted). Every row is validated; all are applied or none.
    With ``replace`` the list is replaced by the file; otherwise entries are added or updated by plate."""
    if isinstance(source, (str, Path)):
        try:
            text = Path(source).read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise HotListImportRejected([RowError(1, "the file is not UTF-8 text")]) from None
        except OSError as exc:
            raise HotListImportRejected([RowError(1, f"cannot read the file: {exc.strerror}")]) from None
        stream: io.TextIOBase = io.StringIO(text)
    else:
        stream = source
    sample = stream.read()
    try:
        dialect = csv.Sniffer().sniff(sample.splitlines()[0] if sample else ",", delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(sample), dialect)
    header = next(reader, None)
    if not header:
        raise HotListImportRejected([RowError(1, "the file is empty")])
    columns: dict[str, int] = {}
    for i, raw in enumerate(header):
        for key, aliases in HEADERS.items():
            if raw.strip().lower() in aliases:
                columns[key] = i
    if "plate" not in columns:
        raise HotListImportRejected([RowError(1, "no plate column (plate / номер / госномер)")])
    errors: list[RowError] = []
    rows: dict[str, tuple[str, str, datetime | None]] = {}
    for line, row in enumerate(reader, 2):
        if not any(cell.strip() for cell in row):
            continue
        text_plate = _cell(row, columns, "plate")
        number = plates.normalise(text_plate)
        if number is None:
            errors.append(RowError(line, f"{text_plate!r} is not a Kazakhstan plate number"))
            continue
        try:
            valid_to = _valid_to(_cell(row, columns, "valid_to"))
        except HotListError as exc:
            errors.append(RowError(line, str(exc)))
            continue
        if number.plate in rows:
            errors.append(RowError(line, f"plate {number.plate} appears twice in the file"))
            continue
        rows[number.plate] = (text_plate, _cell(row, columns, "reason"), valid_to)
    if not rows and not errors:
        errors.append(RowError(2, "the file has no plate rows"))
    if errors:
        raise HotListImportRejected(errors)
    existing = {e.plate: e for e in session.scalars(select(HotListEntry).where(HotListEntry.list_id == hot_list.id))}
    added = updated = 0
    with session.begin_nested():
        if replace:
            for plate, entry in existing.items():
                if plate not in rows:
                    session.delete(entry)
        for plate, (text_plate, reason, valid_to) in rows.items():
            entry = existing.get(plate)
            if entry is None:
                session.add(HotListEntry(list_id=hot_list.id, plate=plate, plate_text=text_plate, reason=reason,
                                         valid_to=valid_to))
                added += 1
            else:
                entry.plate_text, entry.reason, entry.valid_to = text_plate, reason, valid_to
                updated += 1
        audit.append(session, actor, Action.ENTRIES_CHANGED, object_type="hot_list", object_id=hot_list.id,
                     details={"imported": len(rows), "added": added, "updated": updated, "replace": replace})
    return ImportResult(added, updated)


def match(session: Session, plate: str, at: datetime | None = None) -> list[tuple[HotListEntry, HotList]]:
    """Entries of active lists with exactly this normalised plate, valid at ``at``."""
    at = at or utcnow()
    rows = session.execute(
        select(HotListEntry, HotList).join(HotList, HotList.id == HotListEntry.list_id)
        .where(HotListEntry.plate == plate, HotList.active.is_(True),
               or_(HotListEntry.valid_to.is_(None), HotListEntry.valid_to >= at))).all()
    return [(row[0], row[1]) for row in rows]
