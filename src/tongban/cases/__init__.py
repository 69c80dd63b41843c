"""Applications (办件): receive anywhere, route, handle, deliver, rate."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    from tongban.cases.api import router as api

    app.include_router(api)
    from tongban.cases.views import router as portal
    from tongban.cases.views_window import router as window
    from tongban.cases.views_workbench import router as workbench

    for router in (portal, window, workbench):
        app.include_router(router)
