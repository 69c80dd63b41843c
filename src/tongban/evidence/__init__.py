"""Purpose-bound evidence requests between jurisdictions (once-only) and the resident's
log of who used their data (我的数据使用记录). Part of the `exchange` context of DESIGN.md,
kept in its own package."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    """Mount this context's routers (importing the service registers its message
    handlers with the exchange dispatcher)."""
    from tongban.evidence.api import router as api

    app.include_router(api)
    from tongban.evidence.views import router as views

    app.include_router(views)
