"""E-licences (电子证照): types, issuance as SD-JWT VCs, trust list, status lists,
the holder's wallet, presentation and verification."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    """Mount this context's routers (API, issuer metadata, pages)."""
