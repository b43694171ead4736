"""What an import that applies all rows or none says when rows are bad: every bad row by its line, nothing applied."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ImportRejected(ValueError):
    """Some rows are bad: nothing was imported. ``errors`` names every one."""

    def __init__(self, errors: list[RowError]) -> None:
        shown = "; ".join(map(str, errors[:10])) + (f" (and {len(errors) - 10} more)" if len(errors) > 10 else "")
        super().__init__(f"{len(errors)} bad row(s); nothing imported: {shown}")
        self.errors = errors
