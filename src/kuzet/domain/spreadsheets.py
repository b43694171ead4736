"""Cells of the CSV and XLSX files the product writes, made safe to open in a spreadsheet.

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel, LibreOffice and
Google Sheets as a formula, so a camera name or an incident title like ``=HYPERLINK("http://…")`` or
``@SUM(1+1)*cmd|' /C calc'!A0`` would run in whoever opens an export. Following OWASP's guidance on CSV injection,
such a text cell gets a leading apostrophe (shown as text, not evaluated). Numbers written as numbers stay numbers,
and so does text that is just a number (``-12.5``), which no spreadsheet runs.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """``value`` as a cell that no spreadsheet evaluates: a formula-like text gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV document (header, then rows) with every cell passed through ``safe_cell``."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([safe_cell(c) for c in columns])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return buf.getvalue()
