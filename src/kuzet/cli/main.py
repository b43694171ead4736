"""Entry point of the ``kuzet`` command."""

from __future__ import annotations

import typer

from kuzet.cli import core
from kuzet.cli.bench import bench_app

app = typer.Typer(help="Kuzet — city video surveillance and public safety.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
core.register(app)


def _register_capabilities() -> None:
    from kuzet.cli import crime, operations, recording, safeyard, watching

    for module in (recording, watching, operations, safeyard, crime):
        module.register(app)


_register_capabilities()
app.add_typer(bench_app, name="bench")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
