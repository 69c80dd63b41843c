"""The tamper-evident audit chain of this node: hash-linked entries and signed
checkpoints. Part of the `exchange` context of DESIGN.md, kept in its own package."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    """Mount this context's routers."""
    from tongban.audit import views

    app.include_router(views.router)
