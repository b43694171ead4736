"""Importing registered offences (CSV or XLSX) and population: every row validated, all or nothing, line-numbered
errors; re-importing the same ids updates them."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.domain.crime import (
    GRAVITY_ALIASES,
    OFFENCE_TYPES,
    PLACE_ALIASES,
    PLACE_TYPES,
    REQUIRED,
    TYPE_ALIASES,
    Gravity,
    header_key,
)
from kuzet.domain.imports import ImportRejected, RowError  # noqa: F401 - this module's errors
from kuzet.store.db import utcnow
from kuzet.store.models.crime import Offence, Population


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)


def read_table(path: Path) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    """(headers, [(line number, values)]) of a CSV (UTF-8, comma or semicolon) or XLSX file."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
            rows = list(wb.active.iter_rows(values_only=True))
        except Exception:  # noqa: BLE001 - openpyxl raises many kinds (zip, XML, key) for a file that is not XLSX
            raise ImportRejected([RowError(1, "the file is not a readable XLSX workbook")]) from None
        if not rows:
            return [], []
        headers = [str(h or "") for h in rows[0]]
        return headers, [(i + 2, list(r)) for i, r in enumerate(rows[1:]) if any(v not in (None, "") for v in r)]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRejected([RowError(1, "the file is not UTF-8 text (save it as CSV UTF-8 or XLSX)")]) from None
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t") if text else csv.excel
    except csv.Error:  # one column, or no delimiter in the header: read it as plain CSV
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        rows = list(reader)
    except csv.Error as exc:  # a NUL byte, an unterminated quote at the end, …
        raise ImportRejected([RowError(reader.line_num or 1, f"not readable as CSV: {exc}")]) from None
    if not rows:
        return [], []
    return rows[0], [(i + 2, r) for i, r in enumerate(rows[1:]) if any(v.strip() for v in r)]


def _date(value: Any, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    for fmt in ("%Y-%m-%d", "%d.%m.%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d.%m.%Y %H:%M"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{name} {text!r} is not a date (YYYY-MM-DD or DD.MM.YYYY)")


def _datetime(value: Any, name: str) -> datetime | None:
    from datetime import UTC

    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M",
                "%Y-%m-%d", "%d.%m.%Y"):
        try:
            parsed = datetime.strptime(text, fmt)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"{name} {text!r} is not a date and time")


def _choice(value: Any, canonical: set[str], aliases: dict, name: str) -> str:
    text = str(value or "").strip()
    low = text.lower()
    if low in canonical:
        return low
    if low in aliases:
        return str(aliases[low])
    raise ValueError(f"{name} {text!r} is unknown (use one of {', '.join(sorted(canonical))})")


def _coordinate(value: Any, name: str, low: float, high: float) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(str(value).replace(",", "."))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a number") from None
    if not low <= number <= high:
        raise ValueError(f"{name} {number} is outside {low:g}..{high:g}")
    return number


def parse_offence(values: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in REQUIRED if values.get(k) in (None, "")]
    if missing:
        raise ValueError(f"empty {', '.join(missing)}")
    row = {
        "id": str(values["id"]).strip(),
        "registered_on": _date(values["registered_at"], "registered_at"),
        "committed_at": _datetime(values.get("committed_at"), "committed_at"),
        "article": (str(values.get("article") or "").strip() or None),
        "gravity": _choice(values["gravity"], {g.value for g in Gravity}, GRAVITY_ALIASES, "gravity"),
        "offence_type": _choice(values["offence_type"], set(OFFENCE_TYPES), TYPE_ALIASES, "offence_type"),
        "place_type": (_choice(values["place_type"], set(PLACE_TYPES), PLACE_ALIASES, "place_type")
                       if values.get("place_type") not in (None, "") else None),
        "district": str(values["district"]).strip(),
        "lat": _coordinate(values.get("lat"), "lat", -90, 90),
        "lon": _coordinate(values.get("lon"), "lon", -180, 180),
        "status": (str(values.get("status") or "").strip() or None),
    }
    if (row["lat"] is None) != (row["lon"] is None):
        raise ValueError("lat and lon go together")
    if row["committed_at"] and row["committed_at"].date() > row["registered_on"]:
        raise ValueError("committed_at is after registered_at")
    return row


def import_offences(session: Session, path: Path, progress=None) -> ImportResult:  # noqa: ANN001
    headers, rows = read_table(path)
    keys = [header_key(h) for h in headers]
    missing = [k for k in REQUIRED if k not in keys]
    if missing:
        unknown = [h for h, k in zip(headers, keys, strict=False) if k is None and h]
        raise ImportRejected([RowError(1, f"missing column(s) {', '.join(missing)}"
                                          + (f"; unknown column(s) {', '.join(unknown)}" if unknown else ""))])
    result = ImportResult(rows=len(rows))
    parsed: dict[str, dict] = {}
    for line, raw in rows:
        values = {k: raw[i] if i < len(raw) else None for i, k in enumerate(keys) if k}
        try:
            row = parse_offence(values)
            if row["id"] in parsed:
                raise ValueError(f"id {row['id']} appears twice in the file")
            parsed[row["id"]] = row
        except ValueError as exc:
            result.errors.append(RowError(line, str(exc)))
    if not rows:
        result.errors.append(RowError(2, "the file has no rows"))
    if result.errors:
        raise ImportRejected(result.errors)
    existing: set[str] = set()
    ids = list(parsed)
    for i in range(0, len(ids), 5000):
        existing.update(session.scalars(select(Offence.id).where(Offence.id.in_(ids[i:i + 5000]))))
    now = utcnow()
    new_rows = [dict(r, imported_at=now) for k, r in parsed.items() if k not in existing]
    if new_rows:
        from sqlalchemy import insert

        for i in range(0, len(new_rows), 5000):
            session.execute(insert(Offence), new_rows[i:i + 5000])
            if progress:
                progress(min(i + 5000, len(new_rows)), len(parsed))
    for key in existing:
        offence = session.get(Offence, key)
        for name, value in parsed[key].items():
            setattr(offence, name, value)
    session.flush()
    result.created, result.updated = len(new_rows), len(existing)
    return result


def import_population(session: Session, path: Path) -> int:
    """Columns district, year, population (Russian: район, год, население). All rows or none."""
    headers, rows = read_table(path)
    names = {"district": ("district", "район"), "year": ("year", "год"), "population": ("population", "население")}
    index = {}
    for key, aliases in names.items():
        found = [i for i, h in enumerate(headers) if str(h).strip().lower() in aliases]
        if not found:
            raise ImportRejected([RowError(1, f"missing column {key}")])
        index[key] = found[0]
    errors, parsed = [], []
    for line, raw in rows:
        try:
            district = str(raw[index["district"]]).strip()
            year = int(str(raw[index["year"]]).strip())
            population = int(str(raw[index["population"]]).replace(" ", "").strip())
            if not district or population <= 0 or not 1900 <= year <= 2100:
                raise ValueError
            parsed.append((district, year, population))
        except (ValueError, IndexError):
            errors.append(RowError(line, "needs a district, a year and a positive population"))
    if errors:
        raise ImportRejected(errors)
    for district, year, population in parsed:
        row = session.get(Population, (district, year))
        if row is None:
            session.add(Population(district=district, year=year, population=population))
        else:
            row.population = population
    session.flush()
    return len(parsed)
