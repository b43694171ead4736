"""Entry point of the ``kuzet`` command: the commands of every capability (``kuzet.capabilities``)."""

from __future__ import annotations

import typer

from kuzet import capabilities

app = typer.Typer(help="Kuzet — city video surveillance and public safety.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
capabilities.register_commands(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
