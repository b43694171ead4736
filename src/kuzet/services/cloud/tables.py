"""Reading the tables people bring (CSV in UTF-8 with comma, semicolon or tab; XLSX), with line numbers for errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from kuzet.domain.imports import ImportRejected, RowError  # noqa: F401 - this module's errors


def read_table(path: Path) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    """(headers, [(line number, values)]), blank lines skipped."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
            rows = list(book.active.iter_rows(values_only=True))
        except Exception:  # noqa: BLE001 - openpyxl raises many kinds (zip, XML, key) for a file that is not XLSX
            raise ImportRejected([RowError(1, "the file is not a readable XLSX workbook")]) from None
        if not rows:
            return [], []
        return ([str(h or "").strip() for h in rows[0]],
                [(i + 2, list(r)) for i, r in enumerate(rows[1:]) if any(v not in (None, "") for v in r)])
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRejected([RowError(1, "the file is not UTF-8 text (save it as CSV UTF-8 or XLSX)")]) from None
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t") if text else csv.excel
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ImportRejected([RowError(reader.line_num or 1, f"not readable as CSV: {exc}")]) from None
    if not rows:
        return [], []
    return [h.strip() for h in rows[0]], [(i + 2, r) for i, r in enumerate(rows[1:]) if any(v.strip() for v in r)]


def columns(headers: list[str], aliases: dict[str, set[str]], required: list[str]) -> dict[str, int]:
    """Column index of each known field (headers matched case-insensitively against ``aliases``)."""
    found: dict[str, int] = {}
    for index, header in enumerate(headers):
        key = header.strip().lower().replace("ё", "е")
        for name, names in aliases.items():
            if key == name or key in names:
                found.setdefault(name, index)
    missing = [name for name in required if name not in found]
    if missing:
        raise ImportRejected([RowError(1, f"missing column(s): {', '.join(missing)} "
                                          f"(the header has: {', '.join(h for h in headers if h) or 'nothing'})")])
    return found
