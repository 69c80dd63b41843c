"""Registers the tickets context's exchange handlers (`ticket.shared`, `ticket.event`,
`ticket.finding`), loaded by `exchange.service.load_handlers`."""

from tongban.tickets.service import federation

__all__ = ["federation"]
