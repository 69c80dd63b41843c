"""Two officers of the issuing authority change one licence's status at the same moment:
exactly one succeeds, the other gets a 409 problem+json (never a 500), and the licence's
history has no two events with one number. Run on a database of its own per backend
(the races commit for real, from threads with separate connections), dropped at the end.

Two revocations race: a revoked licence can be revoked no more, so whichever path the
loser takes it is refused. On PostgreSQL, when both read the valid licence, the loser's
UPDATE matches no row of the `row_version` it read (409 concurrent-change); when it
reads after the winner's commit, the state machine refuses (409 illegal-status-change).
SQLite serialises writers at BEGIN IMMEDIATE: there it is always the second path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from concurrency import BACKENDS, assert_numbered, at_once, node_on, one_wins, own_database, race
from tongban.errors import ConcurrentChange, Conflict
from tongban.identity import service as identity
from tongban.kernel.node import Node
from tongban.licences import status
from tongban.licences.models import Licence, LicenceEvent
from tongban.web.app import create_app

from builders import make_licence, make_officer, make_resident

AUTHORITY = "340100-public_security"
#: How the loser is refused: its version was gone, or the licence was already revoked.
LOSER_TYPES = ("concurrent-change", "illegal-status-change")


@pytest.fixture(scope="module", params=BACKENDS)
def own_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    yield from own_database(request.param, tmp_path_factory)


@pytest.fixture
def own_node(own_db: Engine, tmp_path: Path) -> Node:
    return node_on(own_db, tmp_path)


def _licence_and_officers(factory: sessionmaker[Session]) -> tuple[Any, list[Any]]:
    """A valid licence issued by AUTHORITY and two officers of it, committed."""
    with factory() as s:
        lic = make_licence(s, make_resident(s), authority=AUTHORITY)
        staff = [make_officer(s, AUTHORITY) for _ in range(2)]
        assert lic.status == "valid"
        s.commit()
        return lic.id, staff


def _events(factory: sessionmaker[Session], licence_id: Any) -> list[tuple[int, str]]:
    with factory() as s:
        rows = s.execute(
            select(LicenceEvent.seq, LicenceEvent.action)
            .where(LicenceEvent.licence_id == licence_id)
            .order_by(LicenceEvent.seq)
        )
        return [(r.seq, r.action) for r in rows]


def _status(factory: sessionmaker[Session], licence_id: Any) -> str:
    with factory() as s:
        lic = s.get(Licence, licence_id)
        assert lic is not None
        return lic.status


def test_a_status_change_on_a_stale_copy_is_a_concurrent_change(own_node: Node) -> None:
    """Read by two sessions, suspended by the first: the second's revocation, decided
    on the valid licence it read, is refused with 409 concurrent-change, not applied
    over the suspension."""
    factory = own_node.session_factory
    licence_id, (first, second) = _licence_and_officers(factory)
    with factory() as s1, factory() as s2:
        stale = s2.get(Licence, licence_id)
        assert stale is not None and stale.status == "valid"
        officer2 = s2.merge(second)
        s2.commit()  # the read is over; `stale` keeps what it read (expire_on_commit=False)
        status.change_status(s1, s1.merge(first), licence_id, "suspend", "核查")
        s1.commit()
        with pytest.raises(ConcurrentChange) as e:
            status.change_status(s2, officer2, licence_id, "revoke", "注销")
        s2.rollback()
    assert (e.value.status, e.value.type) == (409, "concurrent-change")
    assert [a for _, a in _events(factory, licence_id)] == ["issue", "suspend"]
    assert _status(factory, licence_id) == "suspended"


def test_two_officers_revoke_one_licence_at_once_in_the_service(own_node: Node) -> None:
    """Two threads, two sessions, one barrier: one revocation wins, the other is a 409."""
    factory = own_node.session_factory
    licence_id, staff = _licence_and_officers(factory)

    def revoke(n: int) -> str:
        with factory() as s:
            try:
                status.change_status(s, s.merge(staff[n]), licence_id, "revoke", f"注销{n}")
                s.commit()
                return "ok"
            except Conflict as e:
                s.rollback()
                return e.type

    outcomes = sorted(at_once(revoke))
    assert outcomes[0] in LOSER_TYPES and outcomes[1] == "ok", outcomes
    events = _events(factory, licence_id)
    assert_numbered([seq for seq, _ in events])
    assert [a for _, a in events] == ["issue", "revoke"]
    assert _status(factory, licence_id) == "revoked"


def test_two_officers_revoke_one_licence_at_once_through_the_api(own_node: Node) -> None:
    """Over HTTP, two clients with their own tokens: 200 and a 409 problem+json."""
    factory = own_node.session_factory
    licence_id, staff = _licence_and_officers(factory)
    with factory() as s:
        tokens = [identity.issue_token(s, s.merge(o))[0] for o in staff]
        s.commit()
    answers = race(
        create_app(own_node),
        tokens,
        lambda c, h, n: c.post(
            f"/api/v1/licences/{licence_id}/status",
            headers=h,
            json={"action": "revoke", "reason": f"注销{n}"},
        ),
    )
    won, _ = one_wins(answers, types=LOSER_TYPES)
    assert won["status"] == "revoked"
    events = _events(factory, licence_id)
    assert_numbered([seq for seq, _ in events])
    assert [a for _, a in events] == ["issue", "revoke"]
    assert _status(factory, licence_id) == "revoked"
