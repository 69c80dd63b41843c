"""Corrections (补正) that can be completed, the paused statutory clock, reminders and
withdrawal by the job, against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tongban.calendar import service as calendar
from tongban.cases import service
from tongban.cases.domain import CorrectionItem
from tongban.errors import Conflict, ValidationFailed

from builders import SIMPLE_FORM, make_case, make_officer, make_resident, upload

OFFICER_AUTH = "320500-housing_fund"
ID_CARD = CorrectionItem("id_card", "身份证", "照片页模糊")
LEASE = CorrectionItem("extra1", "租房合同", "请提供现住址证明", listed=False)


class Clock:
    """The time the cases service sees (its `utcnow`), moved by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: datetime) -> None:
        self.now = start
        monkeypatch.setattr(service, "utcnow", lambda: self.now)

    def to(self, day: date) -> None:
        self.now = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)  # 10:00 in China


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, datetime(2026, 12, 1, 2, 0, tzinfo=UTC))  # a Tuesday


def test_correction_items_round_trip(session, clock):
    resident = make_resident(session)
    officer = make_officer(session, OFFICER_AUTH)
    case = make_case(session, resident)
    case = service.request_correction(session, officer, case.id, "材料不全", [ID_CARD, LEASE], 10)
    assert case.state == "correction_requested"
    (notice,) = case.corrections
    assert notice.stage == "intake" and notice.status == "open"
    assert [(i["code"], i["listed"], i["reason"]) for i in notice.items] == [
        ("id_card", True, "照片页模糊"),
        ("extra1", False, "请提供现住址证明"),
    ]
    # Ten working days from Tuesday 1 December 2026.
    assert notice.deadline == calendar.add_working_days(session, date(2026, 12, 1), 10)
    ev = case.events[-1]
    assert ev.action == "request_correction" and ev.comment == "材料不全"
    assert [i["code"] for i in ev.payload["items"]] == ["id_card", "extra1"]

    # One item answered, one not: refused, naming the missing item's slot.
    with pytest.raises(ValidationFailed) as e:
        service.resubmit(session, resident, case.id, attachment_ids=[upload(session, resident).id])
    assert [f["field"] for f in e.value.errors] == ["item_extra1"]
    assert case.state == "correction_requested"

    files = [upload(session, resident, "id_card").id, upload(session, resident, "extra1").id]
    case = service.resubmit(session, resident, case.id, dict(SIMPLE_FORM), files)
    assert case.state == "submitted" and notice.status == "answered"
    assert notice.answered_at is not None
    assert sorted(a.material_code for a in case.attachments) == ["extra1", "id_card", "id_card"]

    # 一次性告知: the intake stage had its notice.
    with pytest.raises(Conflict) as c:
        service.request_correction(session, officer, case.id, "再补", [ID_CARD], 5)
    assert "一次性告知" in c.value.detail


def test_bad_notices_are_refused_with_every_field(session):
    officer = make_officer(session, OFFICER_AUTH)
    case = make_case(session)
    with pytest.raises(ValidationFailed) as e:
        service.request_correction(session, officer, case.id, "", [], 45)
    assert {f["field"] for f in e.value.errors} == {"comment", "items", "deadline_days"}
    assert case.state == "submitted" and case.corrections == []


def test_the_clock_pauses_during_review_correction_and_resumes(session, clock):
    resident = make_resident(session)
    officer = make_officer(session, OFFICER_AUTH)
    case = make_case(session, resident)
    clock.to(date(2026, 12, 1))
    service.act(session, officer, case.id, "accept")
    deadline = case.deadline
    assert deadline == calendar.add_working_days(session, date(2026, 12, 1), case.time_limit_days)
    service.act(session, officer, case.id, "start_review")

    clock.to(date(2026, 12, 4))  # Friday: 3 working days used
    assert service.clock_of(session, case).used == 3
    case = service.request_correction(session, officer, case.id, "审查发现", [ID_CARD], 5)
    assert case.state == "review_correction" and case.clock_paused_since == date(2026, 12, 4)
    assert case.corrections[-1].stage == "review"

    clock.to(date(2026, 12, 10))  # Thursday: 4 working days later, the clock still says 3
    c = service.clock_of(session, case)
    assert (c.used, c.paused_since) == (3, date(2026, 12, 4))
    # The deadline job does not watch a paused case.
    assert service.refresh_deadlines(session, date(2099, 1, 1), 3)["overdue"] == 0

    case = service.resubmit(
        session, resident, case.id, attachment_ids=[upload(session, resident).id]
    )
    assert case.state == "under_review" and case.clock_paused_since is None
    assert case.clock_paused_days == 4
    assert case.deadline == calendar.add_working_days(session, deadline, 4)
    clock.to(date(2026, 12, 11))
    assert service.clock_of(session, case).used == 4  # 3 before the pause, 1 after


def test_unanswered_correction_is_reminded_then_withdrawn(session, clock):
    resident = make_resident(session)
    officer = make_officer(session, OFFICER_AUTH)
    case = make_case(session, resident)
    case = service.request_correction(session, officer, case.id, "材料不全", [ID_CARD], 3)
    deadline = case.corrections[0].deadline

    assert service.lapse_corrections(session, deadline) == {"reminded": 0, "withdrawn": 0}
    after = deadline + timedelta(days=1)
    assert service.lapse_corrections(session, after)["reminded"] == 1
    reminder = case.events[-1]
    assert reminder.action == "correction_reminder" and reminder.to_state == "correction_requested"
    assert "逾期视为撤回" in reminder.comment
    # Reminded once: not again, and not withdrawn before the grace period ends.
    assert service.lapse_corrections(session, after) == {"reminded": 0, "withdrawn": 0}
    grace_end = calendar.add_working_days(session, after, 5)
    assert service.lapse_corrections(session, grace_end)["withdrawn"] == 0

    counts = service.lapse_corrections(session, grace_end + timedelta(days=1))
    assert counts == {"reminded": 0, "withdrawn": 1}
    assert case.state == "withdrawn" and case.closed_at is not None
    assert case.corrections[0].status == "lapsed"
    last = case.events[-1]
    assert last.action == "withdraw" and last.actor_role == "system" and "视为撤回" in last.comment
    with pytest.raises(Conflict):
        service.resubmit(session, resident, case.id, attachment_ids=[upload(session, resident).id])


def test_the_api_takes_a_named_correction(client, session):
    from builders import token_for

    officer = make_officer(session, OFFICER_AUTH)
    case = make_case(session)
    headers = token_for(client, officer)
    body = {
        "action": "request_correction",
        "comment": "材料不全",
        "items": [{"code": "id_card", "name": "身份证", "reason": ""}],
        "deadline_days": 5,
    }
    r = client.post(f"/api/v1/cases/{case.id}/actions", json=body, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "items.0.reason"
    body["items"][0]["reason"] = "照片页模糊"
    r = client.post(f"/api/v1/cases/{case.id}/actions", json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "correction_requested"
    session.refresh(case)
    assert case.corrections[0].items[0]["reason"] == "照片页模糊"
