"""Jurisdictions, cities (GB/T 2260), districts and authorities."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    from tongban.regions.api import router

    app.include_router(router)
