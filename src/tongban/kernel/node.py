"""The composition root: one `Node` per process (or per node in a multi-node test),
built once from `Settings` by `tongban.contexts.build_node`, and passed explicitly to
the app (`create_app(node)`), the worker and the CLI commands.

Services never look settings up in a global or a context variable: the node's session
factory opens every session with the node's settings in `Session.info`, so a service (or a
message handler) reads the settings of the node whose unit of work it is running in with
`settings_of(session)` — two nodes in one process (the federation tests) each see their
own, with no wrapper around the call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
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
    `session.info`). A session opened outside any node — a CLI command's
    `db.transaction()` — gets the process's settings (`config.get_settings`), which at that
    outermost entry point are the node's."""
    settings = session.info.get(SETTINGS_KEY)
    if settings is None:
        from tongban.config import get_settings

        return get_settings()
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
