"""Everything that crosses a jurisdiction's border: outbox, inbox, dispatcher, and the
signed HTTP messages between the nodes of a federation (docs/federation.md)."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    from tongban.exchange.api import router
    from tongban.exchange.service import load_handlers

    load_handlers()
    app.include_router(router)
