"""The composition root: one `Node` per process (or per node in a multi-node test),
built once from `Settings` by `tongban.contexts.build_node`, and passed explicitly to
the app (`create_app(node)`), the worker and the CLI commands.

Services never look settings up in a global or a context variable: the node's session
factory opens every session with the node's settings in `Session.info`, so a service (or a
message handler) reads the settings of the node whose unit of work it is running in with
`settings_of(session)` — two nodes in one process (the federation tests) each see their
own, with no wrapper around the call. A session opened outside any node carries none, and
`settings_of` refuses it rather than guess.

A CLI command gets its node from the click context (`cli_node(ctx)`): `tongban`'s main
callback puts a `LazyNode` there, built from the process's settings on first use, and a
test passes its own (`CliRunner().invoke(app, args, obj=node)`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from tongban.db import transaction
from tongban.kernel import cache as _cache  # noqa: F401  (every process: invalidation hooks)

if TYPE_CHECKING:
    import typer

    from tongban.config import Settings
    from tongban.kernel.registry import Registry

#: Where a node's sessions carry its settings (`Session.info`).
SETTINGS_KEY = "tongban.settings"


def bind_settings(factory: sessionmaker[Session], settings: Settings) -> sessionmaker[Session]:
    """A session factory like `factory` (same bind and options) whose sessions carry
    `settings`; `factory` itself is left unchanged."""
    kw = dict(factory.kw)
    kw["info"] = {**(kw.get("info") or {}), SETTINGS_KEY: settings}
    return sessionmaker(class_=factory.class_, **kw)


def settings_of(session: Session) -> Settings:
    """The settings of the node that opened `session` (its session factory put them in
    `session.info`). Raises RuntimeError for a session opened outside any node: there is
    no process-wide fallback, so a service can never read another node's settings."""
    settings = session.info.get(SETTINGS_KEY)
    if settings is None:
        raise RuntimeError(
            "this session carries no node settings: open it from a node's session factory "
            "(contexts.build_node(settings).session_factory, or kernel.node.bind_settings)"
        )
    return settings  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Node:
    """This node: its settings, its database sessions and its contexts."""

    settings: Settings
    session_factory: sessionmaker[Session]
    registry: Registry

    def with_settings(self, settings: Settings) -> Node:
        """The same node with other settings (same database and contexts)."""
        return Node(settings, bind_settings(self.session_factory, settings), self.registry)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work on this node (a CLI command's, a job's): commit at the end,
        roll back on error; the session carries this node's settings."""
        with transaction(self.session_factory) as session:
            yield session


@dataclass
class LazyNode:
    """A node built from `settings` on first use: a CLI command that needs no database
    (`tongban calendar check`, `tongban licence verify` from its cache) opens none."""

    settings: Settings
    build: Callable[[Settings], Node]
    _node: Node | None = field(default=None, init=False, repr=False)

    def get(self) -> Node:
        if self._node is None:
            self._node = self.build(self.settings)
        return self._node


def _cli_object(ctx: typer.Context) -> Node | LazyNode:
    obj = ctx.obj
    if isinstance(obj, Node | LazyNode):
        return obj
    raise RuntimeError(
        "no node in the command's context: run it through `tongban` (tongban.cli builds "
        "the node) or pass one, CliRunner().invoke(app, args, obj=node)"
    )


def cli_node(ctx: typer.Context) -> Node:
    """The node a CLI command runs as (see the module's docstring)."""
    obj = _cli_object(ctx)
    return obj.get() if isinstance(obj, LazyNode) else obj


def cli_settings(ctx: typer.Context) -> Settings:
    """The settings of the node a CLI command runs as, without opening its database."""
    return _cli_object(ctx).settings
