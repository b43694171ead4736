"""The ``kuzet`` command line (Typer + Rich): a thin adapter over the services."""
