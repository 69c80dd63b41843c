"""The service-matter catalogue (事项)."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    from tongban.catalog.api import router as api
    from tongban.catalog.views import router as views

    app.include_router(api)
    app.include_router(views)
