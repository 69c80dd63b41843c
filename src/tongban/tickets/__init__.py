"""12345-style work orders (工单): intake from every channel, routing by location across
borders, the closed loop, deadlines, supervision, figures, and Open311 GeoReport v2."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    from tongban.tickets.api import router as api
    from tongban.tickets.open311 import router as open311
    from tongban.tickets.views import router as views
    from tongban.tickets.views_supervision import router as supervision_views

    app.include_router(api)
    app.include_router(open311)
    # Fixed paths (/tickets/figures, /tickets/tasks …) before /tickets/{ticket_id}.
    app.include_router(supervision_views)
    app.include_router(views)
