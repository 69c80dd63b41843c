"""The rules of incidents and hand-overs without a database: who may take each step,
where ownership lies in each state, and what a hand-over may carry."""

from __future__ import annotations

import pytest

from tongban.emergency.domain.incidents import (
    HANDOVER_MACHINE,
    INCIDENT_MACHINE,
    PURPOSES,
    HandoverAction,
    HandoverState,
    IncidentAction,
    IncidentState,
    Role,
    Side,
    handover_number,
    incident_number,
    mask_id,
    minimise,
    owner_side,
)
from tongban.errors import ValidationFailed
from tongban.kernel.lifecycle import IllegalTransition

CONTACT = {
    "name": "王小明",
    "id_number": "340104199001011234",
    "phone": "13900000000",
    "exposure_date": "2026-11-27",
    "destination_address": "苏州市姑苏区",
}


def test_only_the_lead_moves_an_incident_on_and_nobody_after_the_close() -> None:
    s, a = IncidentState, IncidentAction
    assert INCIDENT_MACHINE.next_state(s.RESPONDING, a.HANDLE, Role.LEAD) is s.HANDLING
    assert INCIDENT_MACHINE.next_state(s.HANDLING, a.CLOSE, Role.LEAD) is s.CLOSED
    with pytest.raises(IllegalTransition):
        INCIDENT_MACHINE.next_state(s.RESPONDING, a.CLOSE, Role.PARTICIPANT)
    with pytest.raises(IllegalTransition):
        INCIDENT_MACHINE.next_state(s.RESPONDING, a.TASK, Role.PARTICIPANT)
    with pytest.raises(IllegalTransition):
        INCIDENT_MACHINE.next_state(s.CLOSED, a.HANDLE, Role.LEAD)
    # Entries keep the state; a participant's late post is still recorded after the close.
    assert INCIDENT_MACHINE.next_state(s.HANDLING, a.ENTRY, Role.PARTICIPANT) is s.HANDLING
    assert INCIDENT_MACHINE.next_state(s.CLOSED, a.ENTRY, Role.PARTICIPANT) is s.CLOSED
    with pytest.raises(IllegalTransition):
        INCIDENT_MACHINE.next_state(s.CLOSED, a.ENTRY, Role.LEAD)
    # A work order's state is told even after the incident ended.
    assert INCIDENT_MACHINE.next_state(s.CLOSED, a.TASK_UPDATE, Role.SYSTEM) is s.CLOSED


def test_the_receiver_owns_a_case_only_once_the_transfer_is_committed() -> None:
    assert owner_side(HandoverState.OFFERED) is Side.SENDER
    assert owner_side(HandoverState.REFUSED) is Side.SENDER
    assert owner_side(HandoverState.WITHDRAWN) is Side.SENDER
    assert owner_side(HandoverState.TRANSFERRED) is Side.RECEIVER


def test_every_shared_step_is_the_senders_and_a_withdrawal_comes_too_late_after_the_commit() -> (
    None
):
    s, a = HandoverState, HandoverAction
    for action, target in (
        (a.ACCEPT, s.TRANSFERRED),
        (a.REFUSE, s.REFUSED),
        (a.WITHDRAW, s.WITHDRAWN),
    ):
        assert HANDOVER_MACHINE.next_state(s.OFFERED, action, Side.SENDER) is target
        with pytest.raises(IllegalTransition):
            HANDOVER_MACHINE.next_state(s.OFFERED, action, Side.RECEIVER)
    for done in (s.TRANSFERRED, s.REFUSED, s.WITHDRAWN):
        for action in (a.ACCEPT, a.REFUSE, a.WITHDRAW):
            with pytest.raises(IllegalTransition):
                HANDOVER_MACHINE.next_state(done, action, Side.SENDER)
    # Follow-ups: the owner's only.
    assert HANDOVER_MACHINE.next_state(s.OFFERED, a.FOLLOW_UP, Side.SENDER) is s.OFFERED
    with pytest.raises(IllegalTransition):
        HANDOVER_MACHINE.next_state(s.OFFERED, a.FOLLOW_UP, Side.RECEIVER)
    assert HANDOVER_MACHINE.next_state(s.TRANSFERRED, a.FOLLOW_UP, Side.RECEIVER) is s.TRANSFERRED
    with pytest.raises(IllegalTransition):
        HANDOVER_MACHINE.next_state(s.TRANSFERRED, a.FOLLOW_UP, Side.SENDER)


def test_a_hand_over_carries_exactly_what_its_purpose_needs() -> None:
    assert minimise("close_contact", {**CONTACT, "index_case": ""}) == CONTACT
    with pytest.raises(ValidationFailed) as extra:
        minimise("close_contact", {**CONTACT, "hospital": "某医院"})
    assert [e["field"] for e in extra.value.errors] == ["subject.hospital"]
    with pytest.raises(ValidationFailed) as missing:
        minimise("secondary_contact", {"name": "王小明"})
    assert {e["field"] for e in missing.value.errors} == {
        "subject.id_number",
        "subject.phone",
        "subject.destination_address",
    }
    with pytest.raises(ValidationFailed) as bad_date:
        minimise("close_contact", {**CONTACT, "exposure_date": "11月27日"})
    assert [e["field"] for e in bad_date.value.errors] == ["subject.exposure_date"]
    with pytest.raises(ValidationFailed) as unknown:
        minimise("curiosity", CONTACT)
    assert [e["field"] for e in unknown.value.errors] == ["purpose"]
    assert all(set(p.required) <= set(p.fields) for p in PURPOSES.values())


def test_numbers_and_masks() -> None:
    assert incident_number("340100", "20261129", 7) == "SJ340100202611290007"
    assert handover_number("310000", "20261129", 12) == "YJ310000202611290012"
    assert mask_id("340104199001011234") == "3401**********1234"
