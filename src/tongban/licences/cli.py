"""`tongban licence …` and `tongban trust …` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="E-licences: issue, verify (offline too)", no_args_is_help=True)
trust_app = typer.Typer(
    help="The federation trust list and status lists cache", no_args_is_help=True
)
