"""Cross-region outpatient direct settlement (异地就医门诊直接结算) and inter-regional clearing."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    """Mount this context's routers."""
    from tongban.medical.api import router as api
    from tongban.medical.views import router as views

    app.include_router(api)
    app.include_router(views)
