"""The sender's outbox (issue 14, session 10): a message queued in a transaction that
rolls back leaves nothing to dispatch, and messages queued in one transaction leave in
the order sent, even when the clock does not move between them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tongban.exchange import service as exchange
from tongban.exchange.models import OutboxMessage


def test_a_rolled_back_send_leaves_nothing_to_dispatch(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        msg = exchange.send(s, exchange.PING, "310000", "320000", {"note": "crash"})
        s.flush()  # written, then the change fails before its commit
        s.rollback()
    with factory() as s:
        assert s.scalar(select(func.count()).where(OutboxMessage.id == msg.id)) == 0
        claimed = exchange._claim(s, datetime.now(UTC) + timedelta(seconds=1), 100)
        assert msg.id not in {c.id for c in claimed}


def test_messages_sent_in_one_transaction_leave_in_the_order_sent(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The clock stands still: every message is queued in the same microsecond.
    frozen = datetime.now(UTC) - timedelta(seconds=1)
    monkeypatch.setattr(exchange, "utcnow", lambda: frozen)
    with factory() as s:
        sent = [
            exchange.send(s, exchange.PING, "310000", "320000", {"note": str(i)}).id
            for i in range(20)
        ]
        s.commit()
    with factory() as s:
        claimed = exchange._claim(s, datetime.now(UTC) + timedelta(seconds=1), 100)
    assert [c.id for c in claimed if c.id in set(sent)] == sent
