"""The holder and a window clerk replace one card at the same moment, from two threads,
each with its own HTTP client, database session and real commit (SQLite and
PostgreSQL): exactly one replacement is made, the other caller gets a 409 problem+json
(never a 500), and the card's history has no two events with one number. The cards and
tokens are deleted at the end (the accounts stay: other rows refer to them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from concurrency import assert_numbered, one_wins, race
from tongban.card import service
from tongban.card.models import Card, CardEvent
from tongban.contexts import build_node
from tongban.identity import service as identity
from tongban.identity.models import ApiToken
from tongban.web.app import create_app

from builders import make_clerk, make_resident


def _cleanup(factory: sessionmaker[Session], card_id: Any, accounts: list[Any]) -> None:
    with factory() as s:
        ids = list(
            s.scalars(select(Card.id).where(or_(Card.id == card_id, Card.replaces_id == card_id)))
        )
        s.execute(delete(CardEvent).where(CardEvent.card_id.in_(ids)))
        s.execute(delete(Card).where(Card.replaces_id == card_id))
        s.execute(delete(Card).where(Card.id == card_id))
        s.execute(delete(ApiToken).where(ApiToken.account_id.in_(accounts)))
        s.commit()


def test_the_holder_and_a_clerk_replace_one_card_at_once(engine, settings):  # type: ignore[no-untyped-def]
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    node = build_node(settings, factory)
    with node.session_factory() as s:
        holder = make_resident(s, "320100")
        clerk = make_clerk(s, "320100")
        card = service.issue(s, service.holder_of(holder))
        tokens = [identity.issue_token(s, a)[0] for a in (holder, clerk)]
        s.commit()
        card_id, accounts = card.id, [holder.id, clerk.id]
    app = create_app(node)
    try:
        answers = race(
            app,
            tokens,
            lambda c, h, n: c.post(
                f"/api/v1/{'me/' if n == 0 else ''}cards/{card_id}/actions",
                headers=h,
                json={"action": "replace", "reason": "卡片损坏"},
            ),
        )
        won, _ = one_wins(answers)
        assert won["card"]["state"] == "replaced" and won["replacement"]["state"] == "normal"
        with factory() as s:
            seqs = list(s.scalars(select(CardEvent.seq).where(CardEvent.card_id == card_id)))
            assert_numbered(seqs)
            assert len(seqs) == 2
            replacements = list(s.scalars(select(Card).where(Card.replaces_id == card_id)))
            assert len(replacements) == 1
    finally:
        _cleanup(factory, card_id, accounts)
