"""Corrections (补正) and the statutory clock: the pure rules."""

from __future__ import annotations

from datetime import date

import pytest

from tongban.cases.domain import (
    Action,
    Actor,
    CaseState,
    CorrectionDue,
    CorrectionItem,
    CorrectionStage,
    allowed_actions,
    check_correction,
    clock,
    correction_due,
    correction_stage,
    next_state,
)
from tongban.errors import Conflict, ValidationFailed

ITEM = CorrectionItem("id_card", "身份证", "照片页模糊")


def test_review_correction_pauses_and_resubmission_returns_to_review():
    assert correction_stage(CaseState.SUBMITTED) is CorrectionStage.INTAKE
    assert correction_stage(CaseState.UNDER_REVIEW) is CorrectionStage.REVIEW
    assert allowed_actions(CaseState.REVIEW_CORRECTION, Actor.APPLICANT) == [Action.RESUBMIT]
    assert (
        next_state(CaseState.REVIEW_CORRECTION, Action.RESUBMIT, Actor.APPLICANT)
        is CaseState.UNDER_REVIEW
    )
    # Only the platform closes an unanswered correction, from either stage.
    assert allowed_actions(CaseState.CORRECTION, Actor.REVIEWER) == []
    assert allowed_actions(CaseState.CORRECTION, Actor.SYSTEM) == [Action.WITHDRAW]
    assert allowed_actions(CaseState.REVIEW_CORRECTION, Actor.SYSTEM) == [Action.WITHDRAW]


def test_a_correction_notice_names_each_item_and_a_bounded_deadline():
    check_correction("材料不全", [ITEM], 15, set(), "intake")
    with pytest.raises(ValidationFailed) as e:
        check_correction(" ", [CorrectionItem("x", "", " "), ITEM, ITEM], 31, set(), "intake")
    fields = {f["field"] for f in e.value.errors}
    assert fields == {
        "comment",
        "items.0.name",
        "items.0.reason",
        "items.2.code",
        "deadline_days",
    }
    with pytest.raises(ValidationFailed) as e:
        check_correction("材料不全", [], 0, set(), "intake")
    assert {f["field"] for f in e.value.errors} == {"items", "deadline_days"}


def test_one_time_notice_one_correction_per_stage():
    with pytest.raises(Conflict) as e:
        check_correction("再补", [ITEM], 5, {"intake"}, "intake")
    assert e.value.type.endswith("correction-already-requested")
    check_correction("审查中发现", [ITEM], 5, {"intake"}, "review")


def test_reminder_comes_before_withdrawal():
    deadline = date(2026, 12, 4)
    assert correction_due(date(2026, 12, 4), deadline, None, None) is CorrectionDue.WAIT
    # Long past the deadline but never reminded: the reminder first.
    assert correction_due(date(2027, 1, 30), deadline, None, None) is CorrectionDue.REMIND
    reminded, grace_end = date(2026, 12, 7), date(2026, 12, 14)
    assert correction_due(date(2026, 12, 14), deadline, reminded, grace_end) is CorrectionDue.WAIT
    assert (
        correction_due(date(2026, 12, 15), deadline, reminded, grace_end) is CorrectionDue.WITHDRAW
    )


def test_clock_counts_used_days_without_pauses():
    c = clock(20, elapsed=12, paused_days=5, paused_since=date(2026, 12, 1))
    assert (c.used, c.remaining, c.paused_since) == (7, 13, date(2026, 12, 1))
    assert clock(20, 0, 0, None).used == 0
