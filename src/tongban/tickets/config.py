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
    """The process's tickets settings, cached. Deprecated: only tickets.service.common
    (being rewritten to take `ticket_settings(session)`) and the job interval of
    tickets.tasks still read it."""
    return TicketSettings()
