"""Commands of the crime capability."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the kuzet app (and to kuzet bench via kuzet.cli.bench)."""
