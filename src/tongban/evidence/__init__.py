"""Purpose-bound evidence requests between jurisdictions (once-only) and the resident's
log of who used their data (我的数据使用记录). Part of the `exchange` context of DESIGN.md,
kept in its own package."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    """Mount this context's routers."""
