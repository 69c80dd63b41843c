"""Two officers act on one case at the same moment: exactly one succeeds, the other gets
a 409 problem+json (never a 500), and the case's history has no two events with one
number. Run on a database of its own per backend (the races commit for real, from
threads with separate connections), dropped at the end.

On PostgreSQL the loser's UPDATE waits for the winner's row lock and then matches no
row of its version (409 concurrent-change), or it reads after the winner's commit and
the state machine refuses (409 illegal-transition). SQLite serialises writers at BEGIN
IMMEDIATE, so there the loser always reads after the winner: the same outcome through
the second path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from concurrency import (
    BACKENDS,
    LOSER_TYPES,
    assert_numbered,
    at_once,
    node_on,
    one_wins,
    own_database,
    race,
)
from tongban.cases import service
from tongban.cases.models import Case, CaseEvent
from tongban.errors import ConcurrentChange, Conflict
from tongban.identity import service as identity
from tongban.kernel.node import Node
from tongban.web.app import create_app

from builders import make_case, make_officer

AUTHORITY = "320500-housing_fund"


@pytest.fixture(scope="module", params=BACKENDS)
def own_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    yield from own_database(request.param, tmp_path_factory)


@pytest.fixture
def own_node(own_db: Engine, tmp_path: Path) -> Node:
    return node_on(own_db, tmp_path)


def _forwarded_case(factory: sessionmaker[Session], officers: int) -> tuple[Any, list[Any]]:
    """A forwarded case at AUTHORITY and `officers` reviewers of it, committed."""
    with factory() as s:
        case = make_case(s)
        staff = [make_officer(s, AUTHORITY, duty="reviewer") for _ in range(officers)]
        assert all(o.authority_id == case.authority_id for o in staff)
        assert case.state == "submitted" and case.handoff == "delivered"
        s.commit()
        return case.id, staff


def _events(factory: sessionmaker[Session], case_id: Any) -> list[tuple[int, str]]:
    with factory() as s:
        rows = s.execute(
            select(CaseEvent.seq, CaseEvent.action)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.seq)
        )
        return [(r.seq, r.action) for r in rows]


def test_a_step_on_a_stale_copy_is_a_concurrent_change(own_node: Node) -> None:
    """Read by two sessions, changed by the first: the second's change is refused with
    409 concurrent-change (the version it read is gone), not applied over the first."""
    factory = own_node.session_factory
    case_id, (first, second) = _forwarded_case(factory, 2)
    with factory() as s1, factory() as s2:
        stale = s2.get(Case, case_id)
        assert stale is not None and stale.version >= 1
        officer2 = s2.merge(second)
        s2.commit()  # the read is over; `stale` keeps what it read (expire_on_commit=False)
        service.act(s1, s1.merge(first), case_id, "accept")
        s1.commit()
        with pytest.raises(ConcurrentChange) as e:
            service._transition(
                s2, stale, service.Action.ACCEPT, service.Actor.REVIEWER, officer2, ""
            )
        s2.rollback()
    assert (e.value.status, e.value.type) == (409, "concurrent-change")
    assert e.value.detail == "该记录已被他人修改，请刷新后重试"
    assert _events(factory, case_id)[-1:] == [(3, "accept")]
    with factory() as s:
        case = s.get(Case, case_id)
        assert case is not None and case.state == "accepted" and case.event_seq == 3


def test_two_officers_act_on_one_case_at_once_in_the_service(own_node: Node) -> None:
    """Two threads, two sessions, one barrier: one accept wins, the other is a 409."""
    factory = own_node.session_factory
    case_id, staff = _forwarded_case(factory, 2)

    def accept(n: int) -> str:
        with factory() as s:
            officer = s.merge(staff[n])
            try:
                service.act(s, officer, case_id, "accept")
                s.commit()
                return "ok"
            except Conflict as e:
                s.rollback()
                return e.type

    outcomes = sorted(at_once(accept))
    assert outcomes[0] in LOSER_TYPES, outcomes
    assert outcomes[1] == "ok", outcomes
    events = _events(factory, case_id)
    assert_numbered([seq for seq, _ in events])
    assert [a for _, a in events].count("accept") == 1


def test_two_officers_post_one_action_at_once_through_the_api(own_node: Node) -> None:
    """Over HTTP, two clients with their own tokens: 200 and a 409 problem+json."""
    factory = own_node.session_factory
    case_id, staff = _forwarded_case(factory, 2)
    with factory() as s:
        tokens = [identity.issue_token(s, s.merge(o))[0] for o in staff]
        s.commit()
    answers = race(
        create_app(own_node),
        tokens,
        lambda c, h, _n: c.post(
            f"/api/v1/cases/{case_id}/actions", headers=h, json={"action": "accept"}
        ),
    )
    won, _ = one_wins(answers)
    assert won["state"] == "accepted"
    events = _events(factory, case_id)
    assert_numbered([seq for seq, _ in events])
    assert [a for _, a in events].count("accept") == 1
