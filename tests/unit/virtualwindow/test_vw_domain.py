"""The rules of a virtual-window session: who may do what in which state, and the
guards (identity confirmed before submitting, a locked field closed to the clerk)."""

from __future__ import annotations

import pytest

from tongban.errors import ValidationFailed
from tongban.kernel.lifecycle import IllegalTransition
from tongban.virtualwindow.domain import MACHINE, Action, Facts, Side, State


def test_the_officer_takes_a_queued_session_and_the_clerk_may_not() -> None:
    assert MACHINE.next_state(State.QUEUED, Action.TAKE, Side.OFFICER) is State.IN_PROGRESS
    with pytest.raises(IllegalTransition) as e:
        MACHINE.next_state(State.QUEUED, Action.TAKE, Side.CLERK)
    assert e.value.why == "actor"


def test_nothing_is_edited_before_the_session_is_taken_or_after_it_ended() -> None:
    for state in (State.QUEUED, State.ENDED):
        with pytest.raises(IllegalTransition):
            MACHINE.next_state(state, Action.FORM, Side.CLERK, Facts(Side.CLERK))


def test_submitting_needs_a_confirmed_identity_check() -> None:
    facts = Facts(Side.CLERK, identity_recorded=True, identity_confirmed=False)
    with pytest.raises(ValidationFailed) as e:
        MACHINE.next_state(State.IN_PROGRESS, Action.SUBMIT, Side.CLERK, facts)
    assert e.value.type == "identity-not-confirmed"
    ok = Facts(Side.CLERK, identity_recorded=True, identity_confirmed=True)
    assert MACHINE.next_state(State.IN_PROGRESS, Action.SUBMIT, Side.CLERK, ok) is State.SUBMITTED
    # Only the clerk's desk submits; the officer confirms, and only what was recorded.
    with pytest.raises(IllegalTransition):
        MACHINE.next_state(State.IN_PROGRESS, Action.SUBMIT, Side.OFFICER, ok)
    with pytest.raises(IllegalTransition) as g:
        MACHINE.next_state(
            State.IN_PROGRESS, Action.CONFIRM_IDENTITY, Side.OFFICER, Facts(Side.OFFICER)
        )
    assert g.value.why == "guard"


def test_a_locked_field_is_closed_to_the_clerk_not_to_the_officer() -> None:
    locked = frozenset({"loan_city"})
    clerk = Facts(Side.CLERK, locked=locked, fields=frozenset({"loan_city"}))
    with pytest.raises(ValidationFailed) as e:
        MACHINE.next_state(State.IN_PROGRESS, Action.FORM, Side.CLERK, clerk)
    assert e.value.type == "field-locked"
    assert e.value.errors[0]["field"] == "form.loan_city"
    other = Facts(Side.CLERK, locked=locked, fields=frozenset({"proof_purpose"}))
    assert MACHINE.next_state(State.IN_PROGRESS, Action.FORM, Side.CLERK, other)
    officer = Facts(Side.OFFICER, locked=locked, fields=frozenset({"loan_city"}))
    assert MACHINE.next_state(State.IN_PROGRESS, Action.FORM, Side.OFFICER, officer)
    with pytest.raises(IllegalTransition):
        MACHINE.next_state(State.IN_PROGRESS, Action.LOCK, Side.CLERK, clerk)


def test_turn_credentials_follow_coturns_rest_scheme_and_expire() -> None:
    import base64
    import hashlib
    import hmac

    from tongban.config import Settings
    from tongban.virtualwindow.service import ice_servers

    assert ice_servers(Settings(), "u1") == []  # loopback and LAN: no relay
    settings = Settings(
        vw_turn_urls="turns:turn.example:5349, turn:turn.example:3478",
        vw_turn_secret="shared",
        vw_turn_ttl_seconds=600,
    )
    [server] = ice_servers(settings, "u1", now=1_000_000.0)
    assert server["urls"] == ["turns:turn.example:5349", "turn:turn.example:3478"]
    assert server["username"] == "1000600:u1"
    mac = hmac.new(b"shared", b"1000600:u1", hashlib.sha1).digest()
    assert server["credential"] == base64.b64encode(mac).decode()
