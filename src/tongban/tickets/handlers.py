"""Registers the tickets context's exchange handlers (`ticket.shared`, `ticket.event`,
`ticket.finding`): a module the tickets context declares in its registry entry
(`context.py`, `handlers=`), imported when a node is built."""

from tongban.tickets.service import federation, findings

__all__ = ["federation", "findings"]
