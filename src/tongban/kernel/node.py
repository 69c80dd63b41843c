"""The composition root: one `Node` per process (or per node in a multi-node test),
built once from `Settings` by `tongban.contexts.build_node`, and passed explicitly to
the app (`create_app(node)`), the worker and the CLI commands.

Services never look settings up themselves: whoever calls them passes `node.settings`
(or the part they need)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tongban.config import Settings
    from tongban.kernel.registry import Registry


@dataclass(frozen=True)
class Node:
    """This node: its settings, its database sessions and its contexts."""

    settings: Settings
    session_factory: sessionmaker[Session]
    registry: Registry

    def with_settings(self, settings: Settings) -> Node:
        """The same node with other settings (same database and contexts)."""
        return Node(settings, self.session_factory, self.registry)
