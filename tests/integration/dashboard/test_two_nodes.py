"""The federation view across two nodes in one process (SQLite and PostgreSQL): node A
serves 上海 and 安徽, node B 江苏 and 浙江. A case received on A for 苏州 is counted by
B only (its competent jurisdiction's node); B publishes its cells (aggregates, no
personal data) and A's federation view adds them, replacing B's copy whole on each
publication; a publication about a jurisdiction B does not serve is refused."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tongban.dashboard import federation, service
from tongban.dashboard.models import DashCell
from tongban.exchange.models import InboxMessage, OutboxMessage

F = service.Filters(start=date.today() - timedelta(days=2), end=date.today() + timedelta(1))


def _refresh(node: Any) -> None:
    with node.session() as s:
        service.refresh(
            s, service.owns_for(node.settings.served_jurisdictions), settle=timedelta(0)
        )
        s.commit()


def _publish(node: Any) -> int:
    with node.session() as s:
        n = federation.publish_all(s)
        s.commit()
        return n


def _received(node: Any, scope: str) -> int | None:
    with node.session() as s:
        f = service.Filters(**{**F.__dict__, "scope": scope})
        return service.total(s, f, "cases.received", threshold=1).n


@pytest.mark.usefixtures("without_noise")
def test_the_federation_view_adds_the_cells_other_nodes_publish(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    # The nodes' databases live for the session: count from what earlier tests left.
    _refresh(a)
    _refresh(b)
    a0, b0 = _received(a, "local") or 0, _received(b, "local") or 0
    tools.submit(a)
    tools.drain(a, b)
    _refresh(a)
    _refresh(b)
    assert (_received(a, "local") or 0) == a0  # a copy of 江苏's case: B counts it, not A
    assert _received(b, "local") == b0 + 1
    assert _publish(b) >= 1
    tools.drain(a, b)
    with a.session() as s:
        copies = s.scalars(select(DashCell).where(DashCell.origin == "320000")).all()
        assert copies and {c.jurisdiction for c in copies} == {"320000"}
    assert _received(a, "federation") == a0 + b0 + 1

    tools.submit(a)  # a second case; B publishes again: A's copy is replaced, not added to
    tools.drain(a, b)
    _refresh(b)
    _publish(b)
    tools.drain(a, b)
    assert _received(a, "federation") == a0 + b0 + 2


def test_a_node_may_not_publish_cells_of_a_jurisdiction_it_does_not_serve(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    payload = {"jurisdiction": "310000", "as_of": "2026-11-29T00:00:00+00:00", "rows": []}
    with b.session() as s:
        from tongban.exchange import service as exchange

        msg_id = exchange.send(s, federation.CELLS_PUBLISHED, "320000", "310000", payload).id
        s.commit()
    tools.drain(a, b)
    with a.session() as s:
        assert s.scalars(select(DashCell).where(DashCell.origin == "310000")).all() == []
        assert s.get(InboxMessage, msg_id) is None
    with b.session() as s:
        sent = s.get(OutboxMessage, msg_id)
        assert sent is not None and sent.status == "dead"  # refused by A: not B's to publish
