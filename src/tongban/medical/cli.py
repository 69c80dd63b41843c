"""`tongban medical …` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Cross-region outpatient settlement and clearing", no_args_is_help=True)
