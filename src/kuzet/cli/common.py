"""Options and output shared by every command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from kuzet.config import ConfigError
from kuzet.installation import Installation

console = Console()
err_console = Console(stderr=True)

DataOpt = Annotated[
    Path | None,
    typer.Option("--data", envvar="KUZET_DATA_DIR", help="Data directory of the installation (default ./kuzet-data)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def open_installation(data: Path | None, *, must_exist: bool = True) -> Installation:
    try:
        inst = Installation.open(data)
    except ConfigError as exc:
        fail(str(exc))
    if must_exist and not inst.settings.config_file.exists() and inst.settings.database_url is None:
        fail(f"no Kuzet installation in {inst.settings.data_dir}: run `kuzet init --data {inst.settings.data_dir}`")
    return inst


def fail(message: str, code: int = 1) -> None:
    """Print one error and exit. Soft-wrapped: a path or a command in the message stays on one line to copy."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def progress_bar(transient: bool = True) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, transient=transient)


def rejected(errors: list, json_out: bool = False, shown: int = 50) -> None:
    """An import refused as a whole: every bad line (the first ``shown`` on screen), nothing imported; exit 1."""
    if json_out:
        print_json({"imported": 0, "errors": [{"line": e.line, "message": e.message} for e in errors]})
    else:
        err_console.print(f"[bold red]{len(errors)} bad row(s); nothing was imported:[/]")
        for e in errors[:shown]:
            err_console.print(f"  line {e.line}: {e.message}", highlight=False)
        if len(errors) > shown:
            err_console.print(f"  … and {len(errors) - shown} more (--json lists them all)")
    raise typer.Exit(1)
