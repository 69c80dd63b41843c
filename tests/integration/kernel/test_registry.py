"""The registry drives everything: a context declared once shows up in the app's routes
and pages, the templates, the worker's jobs, the CLI and the demo; a context (or a
handler module it declares) that fails to import stops the node from starting."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tongban import contexts
from tongban.cli import add_context_commands
from tongban.config import Settings
from tongban.contexts import build_node, registry
from tongban.demo import load_demo
from tongban.kernel.registry import Context, ContextImportError, Job, Registry, load
from tongban.web.app import create_app
from tongban.worker import periodic_jobs, run_once


def _dummy_context(tmp_path: Path, calls: list[tuple[str, Any]]) -> Context:
    api = APIRouter(prefix="/api/v1/dummy")

    @api.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "dummy"}

    pages = APIRouter(include_in_schema=False)

    @pages.get("/dummy", response_class=HTMLResponse)
    def page(request: Request) -> HTMLResponse:
        return request.app.state.templates.TemplateResponse(request, "dummy/hello.html", {})

    templates = tmp_path / "dummy-templates"
    (templates / "dummy").mkdir(parents=True)
    (templates / "dummy" / "hello.html").write_text("你好，{{ federation_name }}", "utf-8")

    def job(factory: sessionmaker[Session], settings: Settings) -> None:
        calls.append(("job", settings.node_id))

    cli = typer.Typer()

    @cli.command()
    def hello() -> None:
        typer.echo("dummy says hello")

    @cli.command()
    def other() -> None:  # two commands keep `hello` a subcommand
        pass

    def demo(session: Session) -> None:
        calls.append(("demo", session))

    return Context(
        name="dummy",
        routers=[api],
        pages=[pages],
        jobs=[Job("dummy.job", 3600.0, job)],
        cli=[("dummy", cli)],
        templates=templates,
        demo=[demo],
    )


def test_a_registered_context_shows_up_everywhere(
    settings: Settings, factory: sessionmaker[Session], session: Session, tmp_path: Path
) -> None:
    calls: list[tuple[str, Any]] = []
    dummy = _dummy_context(tmp_path, calls)
    with_dummy = registry().with_context(dummy)
    node = build_node(
        settings.model_copy(update={"node_id": "n-dummy"}), factory, contexts=with_dummy
    )

    # App: its API route and its page, rendered from its own template directory.
    with TestClient(create_app(node)) as client:
        assert client.get("/api/v1/dummy/ping").json() == {"pong": "dummy"}
        page = client.get("/dummy")
        assert page.status_code == 200 and page.text == "你好，长三角"
        # The other contexts are still there.
        assert client.get("/api/v1/jurisdictions").status_code == 200
    # Without it, neither exists.
    with TestClient(create_app(build_node(settings, factory))) as client:
        assert client.get("/api/v1/dummy/ping").status_code == 404

    # Worker: its job runs with the node's settings.
    assert "dummy.job" in {j.name for j in periodic_jobs(with_dummy)}
    assert "dummy.job" not in {j.name for j in periodic_jobs()}
    run_once(node)
    assert ("job", "n-dummy") in calls

    # CLI: its command group.
    app = typer.Typer()
    add_context_commands(app, with_dummy)
    result = CliRunner().invoke(app, ["dummy", "hello"])
    assert result.exit_code == 0 and "dummy says hello" in result.output

    # Demo: its loader runs (alone here: the real demo federation takes seconds).
    load_demo(session, Registry((dummy,)))
    assert ("demo", session) in calls


def test_every_context_is_declared_once_in_order() -> None:
    names = registry().names()
    assert names[0] == "regions"  # reference data first: the demo's accounts need it
    assert len(names) == len(set(names)) == len(contexts.CONTEXTS)
    assert {"cases", "licences", "tickets", "exchange", "audit", "evidence"} <= set(names)


def test_a_broken_handler_import_stops_the_node(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, factory: sessionmaker[Session]
) -> None:
    # tickets declares its handler module; make that import fail and load afresh.
    import tongban.tickets

    monkeypatch.setitem(sys.modules, "tongban.tickets.handlers", None)
    monkeypatch.delattr(tongban.tickets, "handlers")
    monkeypatch.delitem(sys.modules, "tongban.tickets.context")
    monkeypatch.setattr(contexts, "_registry", None)
    with pytest.raises(ContextImportError) as err:
        build_node(settings, factory)
    assert err.value.context == "tickets"
    assert err.value.module == "tongban.tickets.handlers"
    assert "context 'tickets' failed to load: cannot import tongban.tickets.handlers" in str(
        err.value
    )
    # `tongban serve` / `worker` stop with that message instead of starting without it.
    from tongban import cli

    with pytest.raises(SystemExit) as stop:
        cli._every_context()
    assert "cannot import tongban.tickets.handlers" in str(stop.value.code)


def test_a_handler_module_raising_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pkg = tmp_path / "brokenctx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "handlers.py").write_text("raise RuntimeError('bad handler table')\n")
    (pkg / "context.py").write_text(
        "from brokenctx import handlers\n"
        "from tongban.kernel.registry import Context\n"
        "CONTEXT = Context(name='brokenctx', handlers=[handlers])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ContextImportError) as err:
        load(["tongban.regions.context", "brokenctx.context"])
    assert (err.value.context, err.value.module) == ("brokenctx", "brokenctx.handlers")
    assert "RuntimeError: bad handler table" in str(err.value)
    for name in ("brokenctx", "brokenctx.handlers", "brokenctx.context"):
        sys.modules.pop(name, None)
