"""The FastAPI application: every context's routers, pages, static assets, error handling."""

from __future__ import annotations

import atexit
import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.middleware.sessions import SessionMiddleware

from tongban import __version__
from tongban.kernel.node import Node
from tongban.web import problems, security
from tongban.web.templating import make_templates

log = logging.getLogger(__name__)


def create_app(node: Node, *, run_worker: bool = False) -> FastAPI:
    """The app of `node` (`tongban.contexts.build_node`): its settings, its database and
    every context of its registry. `run_worker` starts the background worker in-process
    (the embedded default)."""
    settings = node.settings
    factory = node.session_factory

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.gc_freeze:
            freeze_start_up_objects()
        stop = threading.Event()
        thread = None
        if run_worker:
            from tongban.worker import run_forever

            thread = threading.Thread(
                target=run_forever, args=(node, stop), daemon=True, name="worker"
            )
            thread.start()
        yield
        stop.set()
        if thread is not None:
            thread.join(timeout=10)

    app = FastAPI(
        title="tongban 通办",
        version=__version__,
        description=f"{settings.federation_name}政务服务跨域通办平台 API",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.node = node
    app.state.settings = settings
    app.state.session_factory = factory
    app.state.templates = make_templates(node.registry, settings.federation_name)
    # Inside the session middleware: it reads the session's CSRF token.
    app.add_middleware(security.CookieApiOriginCheck, public_url=settings.public_url)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="tongban_session",
        same_site="lax",
        https_only=settings.secure_cookies,
        # The cookie only carries the id of a server-side session (identity.sessions),
        # which is what logout, idleness and password changes end.
        max_age=settings.session_max_minutes * 60,
    )
    # Order matters: the last added runs first. The body limit and headers wrap everything.
    app.add_middleware(
        security.BodySizeLimit,
        limit=max(settings.max_body_bytes, settings.max_upload_bytes + 1024 * 1024),
    )
    app.add_middleware(security.SecurityHeaders)
    problems.install(app)
    static_dir = resources.files("tongban") / "web" / "static"
    app.mount("/static", StaticFiles(directory=str(static_dir)), name="static")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        with factory() as s:
            s.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__, "node": settings.node_id}

    from tongban.web.pages import router as pages

    app.include_router(pages)
    # Context by context, in the registry's order: its APIs, then its pages.
    for context in node.registry:
        for router in (*context.routers, *context.pages):
            app.include_router(router)
    return app


def freeze_start_up_objects() -> None:
    """Collect once, then move every object alive out of the cyclic garbage collector's
    generations (`gc.freeze()`): what start-up built (≈ 370,000 objects: modules, the ORM
    mappings, routes, templates) lives as long as the process, and without this each full
    collection walks all of it again — the spikes of a page's CPU. Once per process: a
    second app in the same process (tests) finds objects already frozen and leaves the
    rest to the collector, so it never freezes another app's garbage. Unfrozen again at
    exit, so the interpreter's last collection still finalises them (extension modules
    such as DuckDB's report what it does not as leaked)."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()
        atexit.register(gc.unfreeze)
