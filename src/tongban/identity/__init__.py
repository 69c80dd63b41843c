"""Accounts, login, API tokens, roles; ID-number and credit-code validation."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    from tongban.identity.api import router as api
    from tongban.identity.api_assurance import router as api_assurance
    from tongban.identity.views import router as views
    from tongban.identity.views_assurance import router as views_assurance

    app.include_router(api)
    app.include_router(api_assurance)
    app.include_router(views)
    app.include_router(views_assurance)
