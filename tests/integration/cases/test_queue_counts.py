"""The workbench's queue badges and its rectification badge (issue 14): counts of what
the officer may see only (delivered cases of their authority), bounded at
QUEUE_COUNT_CAP ("999+" beyond), and a page whose statements do not grow with the
cases (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from listing import counted
from tongban.cases import service
from tongban.cases.domain import CaseState

from builders import make_case, make_officer, sign_in

AUTH = "320500-housing_fund"


def test_counts_are_what_the_officer_sees_per_queue(session: Session) -> None:
    reviewer = make_officer(session, AUTH, duty="reviewer")
    submitted = [make_case(session) for _ in range(3)]
    make_case(session, dispatch=False)  # not delivered to the authority yet: not counted
    service.act(session, reviewer, submitted[0].id, "accept", "")
    counts = dict(service.queue_counts(session, reviewer))
    assert counts[CaseState.SUBMITTED] == 2
    assert counts[CaseState.ACCEPTED] == 1
    assert counts[CaseState.UNDER_REVIEW] == 0
    assert [s for s, _ in service.queue_counts(session, reviewer)] == [
        CaseState.SUBMITTED,
        CaseState.ACCEPTED,
        CaseState.UNDER_REVIEW,
    ]


def test_a_long_queue_is_counted_up_to_the_cap(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "QUEUE_COUNT_CAP", 2)
    reviewer = make_officer(session, AUTH, duty="reviewer")
    for _ in range(4):
        make_case(session)
    assert dict(service.queue_counts(session, reviewer))[CaseState.SUBMITTED] == 3  # cap + 1
    session.commit()
    sign_in(client, reviewer)
    page = client.get("/workbench")
    assert page.status_code == 200
    assert "2+ 件" in page.text and "0 件" in page.text


def test_the_rectification_badge_counts_what_the_list_lists(session: Session) -> None:
    reviewer = make_officer(session, AUTH, duty="reviewer")
    assert service.count_rectifications(session, reviewer) == len(
        service.list_rectifications(session, reviewer)
    )
    for status in ("all", "open", "replied"):
        assert service.count_rectifications(session, reviewer, status) == len(
            service.list_rectifications(session, reviewer, status)
        )


def test_the_workbench_costs_the_same_statements_with_more_cases(
    client: TestClient, session: Session, engine
) -> None:  # type: ignore[no-untyped-def]
    reviewer = make_officer(session, AUTH, duty="reviewer")
    make_case(session)
    session.commit()
    sign_in(client, reviewer)
    client.get("/workbench")  # warm: reference data
    with counted(engine) as one:
        assert client.get("/workbench").status_code == 200
    for _ in range(4):
        make_case(session)
    session.commit()
    with counted(engine) as five:
        assert client.get("/workbench").status_code == 200
    assert len(one) == len(five), (one, five)
    # The rectifications, the queues (one statement for all), the header's unread count.
    assert sum("count(" in s.lower() for s in five) == 3, five
