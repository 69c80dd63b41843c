"""Settings of the tickets context: `Settings.tickets` (TONGBAN_TICKETS_* environment
variables), read from the node whose session a service was given."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.orm import Session

from tongban.config import TicketSettings
from tongban.kernel.node import settings_of

__all__ = ["TicketSettings", "get_ticket_settings", "ticket_settings"]


def ticket_settings(session: Session) -> TicketSettings:
    """The tickets settings of the node that opened `session`."""
    return settings_of(session).tickets


@lru_cache
def get_ticket_settings() -> TicketSettings:
    """The tickets settings of the process's environment, cached: only the deadline job's
    interval (tickets.tasks), fixed when the context's jobs are declared, before any node
    exists. Services read `ticket_settings(session)`."""
    return TicketSettings()
