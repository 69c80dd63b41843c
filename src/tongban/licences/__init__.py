"""E-licences (电子证照): types, issuance as SD-JWT VCs, trust list, status lists,
the holder's wallet, presentation and verification."""

from fastapi import FastAPI

# Its table joins Base.metadata wherever licences.models does (tongban.models, Alembic).
from tongban.licences import federation_models as _federation_models  # noqa: F401


def register(app: FastAPI) -> None:
    """Mount this context's routers (API, issuer metadata, pages)."""
    from tongban.licences.api import router as api
    from tongban.licences.federation_api import router as federation_api
    from tongban.licences.views import router as views
    from tongban.licences.wellknown import router as wellknown

    app.include_router(federation_api)  # first: its trust-list routes defer to the root
    app.include_router(api)
    app.include_router(wellknown)
    app.include_router(views)
