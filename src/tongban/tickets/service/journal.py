"""A work order's history: every change is one event, recorded through the kernel and,
for a joint work order, sent to its copies in the co-handlers' jurisdictions."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tongban.identity.models import Account
from tongban.kernel import history
from tongban.tickets.models import TicketEvent, WorkOrder
from tongban.tickets.service import federation


def record(
    session: Session,
    wo: WorkOrder,
    action: str,
    from_state: str | None,
    to_state: str,
    actor: Account | None,
    comment: str = "",
    *,
    actor_name: str | None = None,
    actor_role: str | None = None,
) -> TicketEvent:
    """Append an event to the work order's history (every change is one) through the
    kernel: numbered from the work order's counter, its version checked (ConcurrentChange,
    a 409, when another request changed it meanwhile), in the audit chain. A joint work
    order's copies in its co-handlers' jurisdictions are sent it at commit, through the
    outbox (service/federation.py, on the kernel's replication).
    `actor_name`/`actor_role` name an actor without an account here (another node's)."""
    ev = history.record(
        session,
        wo,
        action,
        history.who(actor, name=actor_name, kind=actor_role),
        from_state,
        to_state,
        comment,
    )
    assert isinstance(ev, TicketEvent)
    wo.updated_at = ev.at
    federation.after_record(session, wo, ev)
    return ev
