"""The one list of tongban's contexts, in order (routers are mounted, templates
searched, demo data loaded and jobs run in this order), and the composition root that
builds a `Node` from settings. The only module that names every context."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from tongban.config import Settings
from tongban.kernel.node import Node, bind_settings
from tongban.kernel.registry import Registry, load

CONTEXTS: tuple[str, ...] = (
    "tongban.regions.context",
    "tongban.identity.context",
    "tongban.calendar.context",
    "tongban.catalog.context",
    "tongban.cases.context",
    "tongban.keys.context",
    "tongban.licences.context",
    "tongban.evidence.context",
    "tongban.audit.context",
    "tongban.medical.context",
    "tongban.exchange.context",
    "tongban.tickets.context",
    "tongban.card.context",
    "tongban.lifeevents.context",
    "tongban.emergency.context",
    "tongban.benefits.context",
    "tongban.notifications.context",
    "tongban.dashboard.context",
    "tongban.virtualwindow.context",
)

_registry: Registry | None = None


def registry() -> Registry:
    """Every context, loaded once per process; a context that fails to import raises
    `ContextImportError` naming it and the module."""
    global _registry
    if _registry is None:
        _registry = load(CONTEXTS)
    return _registry


def build_node(
    settings: Settings,
    factory: sessionmaker[Session] | None = None,
    *,
    contexts: Registry | None = None,
) -> Node:
    """The node of `settings`: its database sessions (like `factory`'s, or on
    `settings.database_url`; each carries `settings`, see kernel.node.settings_of) and its
    contexts (`contexts`, or every registered one)."""
    if factory is None:
        from tongban.db import get_engine, session_factory

        factory = session_factory(get_engine(settings.database_url))
    return Node(
        settings,
        bind_settings(factory, settings),
        contexts if contexts is not None else registry(),
    )
