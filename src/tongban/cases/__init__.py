"""Applications (办件): receive anywhere, route, handle, deliver, rate."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    from tongban.cases.api import router as api

    app.include_router(api)
    from tongban.cases.views import router as views

    app.include_router(views)
