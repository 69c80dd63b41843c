"""Applications (办件): receive anywhere, route, handle, deliver, rate."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    from tongban.cases.api import router as api

    app.include_router(api)
    try:
        from tongban.cases.views import router as views
    except ImportError:  # pages not built yet
        return
    app.include_router(views)
