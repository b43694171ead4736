"""``kuzet bench …``: speed and memory goals, measured against a ceiling from the same run. Output is JSON."""

import typer

bench_app = typer.Typer(help="Benchmarks: print JSON, each against a ceiling measured in the same run.",
                        no_args_is_help=True)
