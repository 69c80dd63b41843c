"""`tongban exchange …` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Messages between nodes: dead letters, replay", no_args_is_help=True)
