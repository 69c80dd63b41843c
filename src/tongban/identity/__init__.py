"""Accounts, login, API tokens, roles; ID-number and credit-code validation."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    from tongban.identity.api import router as api
    from tongban.identity.views import router as views

    app.include_router(api)
    app.include_router(views)
