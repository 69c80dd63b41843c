"""Two coordinators of 合肥 receive one shipment at the same moment, each with its own HTTP
client, database session and real commit (SQLite and PostgreSQL, a database of its own):
exactly one receipt is recorded, the other gets a 409 problem+json (never a 500), the
shipment's history has no two events with one number, and the destination's stock grows
by the shipment once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from concurrency import BACKENDS, assert_numbered, node_on, one_wins, own_database, race
from integration.emergency.kit import point, staff, stocked
from tongban.emergency import aid
from tongban.emergency.aid import DispatchLine
from tongban.emergency.domain import Duty
from tongban.emergency.models import Shipment, StockLot
from tongban.identity import service as identity
from tongban.web.app import create_app


@pytest.fixture(scope="module", params=BACKENDS)
def own_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    yield from own_database(request.param, tmp_path_factory)


def test_one_shipment_is_received_once_when_two_coordinators_race(
    own_db: Engine, tmp_path: Path
) -> None:
    node = node_on(own_db, tmp_path)
    with node.session_factory() as s:
        first, second = staff(s, "340100", Duty.COORDINATOR), staff(s, "340100", Duty.COORDINATOR)
        giver = staff(s, "310000", Duty.COORDINATOR)
        dest, src = point(s, "340100"), point(s, "310000")
        stocked(s, src, "PPE-SUIT", 500, batch="S1")
        req = aid.request_aid(
            s,
            first,
            city_code="340100",
            destination_code=dest.code,
            urgency="immediate",
            title="防护服告急",
            lines=[("PPE-SUIT", 500)],
            targets=["310000"],
        )
        c = aid.commit(s, giver, req.id, [("PPE-SUIT", 500)])
        sh = aid.dispatch(
            s,
            giver,
            c.id,
            point_code=src.code,
            vehicle="沪A",
            lines=[DispatchLine("PPE-SUIT", 500, 100)],
        )
        tokens = [identity.issue_token(s, a)[0] for a in (first, second)]
        s.commit()
        sh_id, dest_id = sh.id, dest.id
        counts = {b["code"]: b["quantity"] for b in sh.boxes}
    answers = race(
        create_app(node),
        tokens,
        lambda client, headers, n: client.post(
            f"/api/v1/emergency/shipments/{sh_id}/receipt", headers=headers, json={"counts": counts}
        ),
    )
    won, _ = one_wins(answers)
    assert won["state"] == "received"
    with node.session_factory() as s:
        shipment = s.get(Shipment, sh_id)
        assert shipment is not None
        assert_numbered([e.seq for e in shipment.events])
        assert [e.action for e in shipment.events] == ["dispatch", "receive"]
        held = s.scalar(select(func.sum(StockLot.quantity)).where(StockLot.point_id == dest_id))
        assert held == 500
