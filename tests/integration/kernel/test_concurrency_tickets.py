"""Two officers of the lead authority act on one work order at the same moment, from two
threads, each with its own HTTP client, database session and real commit: exactly one
succeeds, the other gets a 409 problem+json (never a 500), and the work order's history
has no two events with one number. The work order and the tokens are deleted at the
end (the accounts stay: other rows refer to them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from concurrency import assert_numbered, one_wins, race
from tongban.contexts import build_node
from tongban.identity import service as identity
from tongban.identity.models import ApiToken
from tongban.tickets.models import TicketEvent, TicketNotice, TicketParty, TicketPhoto, WorkOrder
from tongban.web.app import create_app

from builders import make_officer, make_work_order


def _cleanup(factory: sessionmaker[Session], wo_id: Any, account_ids: list[Any]) -> None:
    with factory() as s:
        s.execute(delete(TicketEvent).where(TicketEvent.ticket_id == wo_id))
        s.execute(delete(TicketNotice).where(TicketNotice.ticket_id == wo_id))
        s.execute(delete(TicketParty).where(TicketParty.ticket_id == wo_id))
        s.execute(delete(TicketPhoto).where(TicketPhoto.ticket_id == wo_id))
        s.execute(delete(WorkOrder).where(WorkOrder.id == wo_id))
        s.execute(delete(ApiToken).where(ApiToken.account_id.in_(account_ids)))
        s.commit()


def test_two_officers_accept_one_work_order_at_once(committing_factory, settings):
    factory = committing_factory
    with factory() as s:
        wo = make_work_order(s)
        assert wo.state == "dispatched" and wo.authority_id is not None
        authority_code = "320500-transport"
        officers = [make_officer(s, authority_code) for _ in range(2)]
        assert all(o.authority_id == wo.authority_id for o in officers)
        tokens = [identity.issue_token(s, o)[0] for o in officers]
        s.commit()
        wo_id = wo.id
        accounts = [wo.reporter_id, *(o.id for o in officers)]
    app = create_app(build_node(settings, factory))
    try:
        answers = race(
            app,
            tokens,
            lambda c, h, _n: c.post(
                f"/api/v1/tickets/{wo_id}/actions", headers=h, json={"action": "accept"}
            ),
        )
        won, _ = one_wins(answers)
        assert won["state"] == "accepted"
        with factory() as s:
            seqs = list(s.scalars(select(TicketEvent.seq).where(TicketEvent.ticket_id == wo_id)))
            actions = list(
                s.scalars(
                    select(TicketEvent.action)
                    .where(TicketEvent.ticket_id == wo_id)
                    .order_by(TicketEvent.seq)
                )
            )
            assert_numbered(seqs)
            assert actions.count("accept") == 1
            wo_row = s.get(WorkOrder, wo_id)
            assert wo_row is not None and wo_row.state == "accepted"
    finally:
        _cleanup(factory, wo_id, [a for a in accounts if a is not None])
