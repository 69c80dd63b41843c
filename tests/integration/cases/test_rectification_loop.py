"""差评整改: the authority's reply, the applicant's answer (已解决 / 未解决), reopening a
bounded number of times and then escalating to the supervisors; who may take which
step; the pages of both sides (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.cases import service
from tongban.cases.domain import RECT_REOPENS_MAX, RECT_TEXT_MAX
from tongban.cases.models import Case, Rectification
from tongban.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tongban.notifications.models import Message

from builders import csrf_of, make_case, make_officer, make_resident, make_supervisor, sign_in

AUTH = "320500-housing_fund"


def rated_badly(session: Session) -> tuple[Case, object, object, Rectification]:
    resident = make_resident(session)
    officer = make_officer(session, AUTH)
    case = make_case(session, resident)
    for action in ("accept", "start_review", "approve", "issue_result", "deliver"):
        case = service.act(session, officer, case.id, action, "")
    service.rate(session, resident, case.id, 1, "窗口排队两小时")
    (item,) = service.list_rectifications(session, officer)
    return case, resident, officer, item


def test_reply_then_resolved_closes_the_item_and_both_see_the_history(session: Session) -> None:
    case, resident, officer, item = rated_badly(session)
    assert service.rectification_of(session, case).state == "open"
    with pytest.raises(Conflict):  # nothing to answer before the authority replied
        service.answer_rectification(session, resident, case.id, True)
    service.reply_rectification(session, officer, item.id, "已增设自助取号机")
    assert item.status == "replied" and item.response == "已增设自助取号机"
    assert service.list_rectifications(session, officer) == []  # no longer waiting on it
    status = service.answer_rectification(session, resident, case.id, True)
    assert status.state == "resolved" and item.status == "resolved" and item.closed_at
    actions = [e.action for e in case.events][-2:]
    assert actions == ["rectification_reply", "rectification_accepted"]
    assert case.state == "rated" and case.events[-2].comment == "已增设自助取号机"
    # The applicant heard of the reply (the notifications' rule for it).
    topics = session.scalars(select(Message.topic).where(Message.account_id == resident.id))
    assert "case.rating_reply" in set(topics)


def test_not_resolved_reopens_then_escalates_to_the_supervisor(session: Session) -> None:
    case, resident, officer, item = rated_badly(session)
    supervisor = make_supervisor(session, "320000")
    for n in range(RECT_REOPENS_MAX):
        service.reply_rectification(session, officer, item.id, f"第{n + 1}次整改")
        with pytest.raises(ValidationFailed) as e:  # 未解决 must say what is not
            service.answer_rectification(session, resident, case.id, False, " ")
        assert e.value.errors[0]["field"] == "reason"
        status = service.answer_rectification(session, resident, case.id, False, "仍需排队")
        assert status.state == "open" and status.reopens == n + 1
        assert item.status == "open" and [
            i.id for i in service.list_rectifications(session, officer)
        ] == [item.id]
    assert service.list_rectifications(session, supervisor) == []
    service.reply_rectification(session, officer, item.id, "第三次整改")
    status = service.answer_rectification(session, resident, case.id, False, "还是没有解决")
    assert status.state == "escalated" and item.status == "escalated"
    assert [i.id for i in service.list_rectifications(session, supervisor)] == [item.id]
    with pytest.raises(Conflict):  # the loop ended: the authority replies no more
        service.reply_rectification(session, officer, item.id, "补充答复")


def test_only_the_applicant_answers_and_only_the_authority_replies(session: Session) -> None:
    case, resident, officer, item = rated_badly(session)
    stranger = make_resident(session, username="someone-else")
    other_authority = make_officer(session, "320100-housing_fund")
    with pytest.raises(NotFound):
        service.reply_rectification(session, other_authority, item.id, "不是我们的")
    with pytest.raises(NotFound):
        service.reply_rectification(session, resident, item.id, "申请人不能答复")
    with pytest.raises(ValidationFailed) as e:
        service.reply_rectification(session, officer, item.id, "  ")
    assert e.value.errors[0]["field"] == "response"
    with pytest.raises(ValidationFailed):
        service.reply_rectification(session, officer, item.id, "长" * (RECT_TEXT_MAX + 1))
    service.reply_rectification(session, officer, item.id, "已整改")
    with pytest.raises(NotFound):  # a stranger does not see the case at all
        service.answer_rectification(session, stranger, case.id, True)
    with pytest.raises(PermissionDenied):
        service.answer_rectification(session, officer, case.id, True)


def test_the_pages_of_the_loop(client: TestClient, session: Session) -> None:
    case, resident, officer, item = rated_badly(session)
    sign_in(client, officer)
    page = client.get("/workbench/rectifications")
    assert "窗口排队两小时" in page.text and f"/rectifications/{item.id}/reply" in page.text
    r = client.post(
        f"/workbench/rectifications/{item.id}/reply",
        data={"csrf_token": csrf_of(page.text), "response": ""},
    )
    assert r.status_code == 422 and 'aria-invalid="true"' in r.text
    assert item.status == "open"
    r = client.post(
        f"/workbench/rectifications/{item.id}/reply",
        data={"csrf_token": csrf_of(page.text), "response": "已增设自助取号机"},
        follow_redirects=False,
    )
    assert r.status_code == 303

    sign_in(client, resident)
    mine = client.get(f"/my/cases/{case.id}")
    assert "已增设自助取号机" in mine.text and "主管部门已答复" in mine.text
    url = f"/my/cases/{case.id}/rectification"
    r = client.post(url, data={"csrf_token": csrf_of(mine.text), "resolved": "no"})
    assert r.status_code == 422 and 'id="reason-error"' in r.text  # a reason for 未解决
    r = client.post(
        url,
        data={"csrf_token": csrf_of(mine.text), "resolved": "no", "reason": "仍需排队"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    after = client.get(r.headers["location"])
    assert "您的反馈已转主管部门重新整改" in after.text and "仍需排队" in after.text
    session.refresh(item)
    assert item.status == "open"

    sign_in(client, officer)
    page = client.get("/workbench/rectifications")
    assert "仍需排队" in page.text and "反馈未解决" in page.text  # the whole history
