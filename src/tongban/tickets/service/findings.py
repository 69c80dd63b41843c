"""A co-handler's finding (联办意见) on a joint work order: written on the replica, sent
to the lead's node as `ticket.finding`, recorded there as the co-handler's `co_note`
event — which comes back to the replica as a `ticket.event` (service/federation.py). A
plain message, not replication."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tongban.errors import PermissionDenied, ValidationFailed
from tongban.exchange import service as exchange
from tongban.identity.models import Account
from tongban.regions import service as regions
from tongban.tickets.models import WorkOrder
from tongban.tickets.service import common, federation, journal, messages


def send_finding(session: Session, actor: Account, wo: WorkOrder, comment: str) -> None:
    """A co-handling officer's finding on a replica: sent to the lead's node, which
    records it (it comes back here as that work order's next event)."""
    party = next((p for p in wo.parties if p.authority_id == actor.authority_id), None)
    if party is None:
        raise PermissionDenied("只有协办部门可以填写联办意见")
    exchange.send(
        session,
        federation.MSG_FINDING,
        party.jurisdiction_code,
        wo.jurisdiction_code,
        {
            "id": str(wo.id),
            "number": wo.number,
            "authority_code": regions.get_authority(session, party.authority_id).code,
            "actor_name": actor.display_name,
            "comment": comment,
        },
    )
    common.notify(
        session,
        wo,
        "finding_sent",
        f"联办意见已发送至主办方（工单 {wo.number}），主办方记录后同步显示",
        authority_id=party.authority_id,
    )


@exchange.handler(
    federation.MSG_FINDING, schema=messages.Finding, authorise=messages.authorise_finding
)
def on_finding(session: Session, payload: dict[str, Any], msg: Any) -> None:
    """Record a co-handler's finding on the lead's work order (as its `co_note`); the
    sender's right was checked by `messages.authorise_finding`."""
    wo = federation.find(session, payload)
    party = messages.finding_party(session, wo, payload["authority_code"]) if wo else None
    if wo is None or party is None:  # only when called around the contract
        raise PermissionDenied("发送方不是该工单的协办部门", type="not-a-party")
    comment = str(payload["comment"]).strip()
    if not comment:
        raise ValidationFailed("联办意见为空", errors=[{"field": "comment", "message": "必填"}])
    name = f"{payload['actor_name']}（{party.authority_name}）"[:80]
    journal.record(
        session,
        wo,
        "co_note",
        wo.state,
        wo.state,
        None,
        comment,
        actor_name=name,
        actor_role="officer",
    )


__all__ = ["on_finding", "send_finding"]
