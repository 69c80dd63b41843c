"""One registry of contexts: each context declares itself once (`CONTEXT` in its
`context.py`) and this list drives the app, the worker, the CLI, the templates, the
demo and the tables Alembic sees.

The kernel names no context: `tongban.contexts` holds the one ordered list of context
modules and calls `load` on it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter
    from sqlalchemy.orm import Session, sessionmaker
    from typer import Typer

    from tongban.config import Settings


@dataclass(frozen=True)
class Job:
    """A periodic job of a context: `run(factory, settings)` every `interval` seconds."""

    name: str
    interval: float
    run: Callable[[sessionmaker[Session], Settings], object]


@dataclass(frozen=True)
class Context:
    """What a context is, declared once in its `context.py` as `CONTEXT`.

    `routers` are JSON APIs and `pages` HTML routers; both are mounted in that order,
    context by context in the registry's order. `handlers` are the modules whose import
    registers the context's exchange message handlers (already imported by the time the
    context is). `cli` is a list of (command name, typer app) pairs. `demo` loaders run
    in the registry's order by `tongban demo`. `models` is the module of its tables.
    `template_context` are Jinja2 context processors (request -> names every page may
    use, e.g. the header's unread message count), added to the shared templates."""

    name: str
    routers: Sequence[APIRouter] = ()
    pages: Sequence[APIRouter] = ()
    handlers: Sequence[ModuleType] = ()
    jobs: Sequence[Job] = ()
    cli: Sequence[tuple[str, Typer]] = ()
    templates: Path | None = None
    demo: Sequence[Callable[[Session], object]] = ()
    models: ModuleType | None = None
    template_context: Sequence[Callable[[Any], dict[str, Any]]] = ()


class ContextImportError(RuntimeError):
    """A context (or a module it declares) failed to import: the node must not start
    without it (a message type nobody handles would be refused, a job would never run)."""

    def __init__(self, context: str, module: str, cause: BaseException) -> None:
        self.context = context
        self.module = module
        super().__init__(
            f"context {context!r} failed to load: cannot import {module} "
            f"({type(cause).__name__}: {cause})"
        )


def templates_of(context_file: str) -> Path | None:
    """The `templates/` directory beside a context's `context.py`, if it has one."""
    path = Path(context_file).with_name("templates")
    return path if path.is_dir() else None


@dataclass(frozen=True)
class Registry:
    """The contexts of this build, in order."""

    contexts: tuple[Context, ...]

    def __iter__(self) -> Iterator[Context]:
        return iter(self.contexts)

    def names(self) -> list[str]:
        return [c.name for c in self.contexts]

    def get(self, name: str) -> Context:
        for c in self.contexts:
            if c.name == name:
                return c
        raise KeyError(name)

    def jobs(self) -> list[Job]:
        return [job for c in self.contexts for job in c.jobs]

    def template_dirs(self) -> list[Path]:
        return [c.templates for c in self.contexts if c.templates is not None]

    def template_context(self) -> list[Callable[[Any], dict[str, Any]]]:
        return [fn for c in self.contexts for fn in c.template_context]

    def cli(self) -> list[tuple[str, Typer]]:
        return [entry for c in self.contexts for entry in c.cli]

    def demo_loaders(self) -> list[Callable[[Session], object]]:
        return [load for c in self.contexts for load in c.demo]

    def with_context(self, context: Context) -> Registry:
        """This registry plus `context` (tests register a dummy context this way)."""
        return Registry((*self.contexts, context))


def _failing_module(exc: BaseException, fallback: str) -> str:
    """The module whose import failed: the one a ModuleNotFoundError names, else the
    innermost module being executed when the exception was raised."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return exc.name
    module = fallback
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__", "")
        if name and name != __name__ and not name.startswith(("importlib", "_frozen")):
            module = name
        tb = tb.tb_next
    return module


def load_context(module_name: str) -> Context:
    """Import `module_name` (a context's `context.py`) and return its `CONTEXT`; any
    failure raises ContextImportError naming the context and the module."""
    context_name = module_name.removeprefix("tongban.").split(".")[0]
    try:
        module: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - re-raised with the context's name
        raise ContextImportError(context_name, _failing_module(exc, module_name), exc) from exc
    context = getattr(module, "CONTEXT", None)
    if not isinstance(context, Context):
        raise ContextImportError(
            context_name, module_name, TypeError(f"{module_name} declares no CONTEXT")
        )
    return context


def load(module_names: Sequence[str]) -> Registry:
    """The registry of the contexts declared by `module_names`, in that order."""
    contexts = tuple(load_context(m) for m in module_names)
    names = [c.name for c in contexts]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"contexts declared twice: {sorted(duplicates)}")
    return Registry(contexts)
