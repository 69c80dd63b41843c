"""多地联办 across nodes: the lead authority's node holds a copy of each sub-task and
follows its steps, so the lead cannot approve before every sub-task is decided, and the
platform decides the whole case on the lead's node once they are; the decision flows
back to the receiving node. Node A serves 上海 and 安徽, node B 江苏 and 浙江."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from tongban.cases import service as cases
from tongban.cases.models import Case
from tongban.errors import Conflict
from tongban.regions.models import Authority

from builders import make_officer, make_resident, upload

MATTER = "YRD-GJJ-0001"  # 住房公积金异地转移接续: online or joint
FORM = {
    "out_center": "苏州市住房公积金管理中心",
    "out_account": "12345678",
    "in_center": "合肥市住房公积金管理中心",
    "new_employer": "合肥某公司",
}
LEAD_AUTH = "340100-housing_fund"  # 合肥, on node A


def _submit_joint(
    node: Any, home_city: str, lead: tuple[str, str], joint: list[str]
) -> tuple[uuid.UUID, str, str]:
    """A joint application on `node`; returns the parent's id and number and the number
    of its (single) sub-task."""
    with node.session() as s:
        resident = make_resident(s, home_city)
        att = upload(s, resident, tmp=node.upload_root)
        case = cases.submit_online(
            s,
            resident,
            cases.Application(
                matter_code=MATTER,
                competent_jurisdiction=lead[0],
                competent_city=lead[1],
                form_data=dict(FORM),
                consent=True,
                attachment_ids=[att.id],
                mode="joint",
                joint_jurisdictions=joint,
            ),
        )
        s.commit()
        (sub,) = case.subtasks
        return case.id, case.number, sub.number


def _officer(node: Any, number: str, duty: str = "approver") -> Any:
    """An officer of the authority handling case `number` on `node`."""
    with node.session() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert case is not None
        code = s.get(Authority, case.authority_id).code  # type: ignore[union-attr]
        officer = make_officer(s, code, duty=duty)
        s.commit()
        return officer


def _walk(node: Any, officer: Any, number: str, *steps: tuple[str, str]) -> None:
    with node.session() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert case is not None
        for action, comment in steps:
            cases.act(s, s.get(type(officer), officer.id), case.id, action, comment)
            s.commit()


def _state(node: Any, number: str) -> str | None:
    with node.session() as s:
        return s.scalar(select(Case.state).where(Case.number == number))


def _history(node: Any, number: str) -> list[tuple[int, str]]:
    with node.session() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert case is not None
        return [(e.seq, e.action) for e in case.events]


def _event_ids(node: Any, number: str) -> list[str]:
    with node.session() as s:
        case = s.scalar(select(Case).where(Case.number == number))
        assert case is not None
        return [str(e.id) for e in case.events]


def test_lead_node_follows_a_subtask_handled_on_the_receiving_node(
    tools: Any, fed: dict[str, Any]
) -> None:
    """Received on B (苏州 applicant), lead 合肥 on A, sub-task 江苏 on B: the sub-task's
    steps reach A only through the new forwarding to the lead."""
    a, b = fed["node-a"], fed["node-b"]
    parent_id, parent_no, sub_no = _submit_joint(b, "320500", ("340000", "340100"), ["320000"])
    tools.drain(a, b)

    # A holds the parent and a copy of the sub-task, linked to it, that followed its
    # forwarding on B.
    with a.session() as s:
        parent = s.get(Case, parent_id)
        assert parent is not None and [t.number for t in parent.subtasks] == [sub_no]
        assert parent.subtasks[0].handoff == "delivered"
    assert _history(a, sub_no) == _history(b, sub_no) == [(1, "submit"), (2, "forwarded")]

    lead = _officer(a, parent_no)
    _walk(a, lead, parent_no, ("accept", ""), ("start_review", ""))
    with a.session() as s, pytest.raises(Conflict) as e:
        cases.act(s, s.get(type(lead), lead.id), parent_id, "approve")
    assert e.value.type == "joint-incomplete"

    partner = _officer(b, sub_no)
    _walk(b, partner, sub_no, ("accept", ""), ("start_review", ""))
    tools.drain(a, b)
    assert _state(a, sub_no) == "under_review" and _state(a, parent_no) == "under_review"

    _walk(b, partner, sub_no, ("approve", "同意转出"))
    tools.drain(a, b)
    # The platform decided the whole case on A, the lead's node …
    with a.session() as s:
        parent = s.get(Case, parent_id)
        assert parent is not None and parent.state == "approved"
        assert parent.events[-1].actor_role == "system"
    # … and the decision came back to B, the receiving node.
    assert _state(b, parent_no) == "approved"
    assert _history(b, parent_no) == _history(a, parent_no)
    # The very events of A: B, which also holds the parent, did not decide it itself.
    assert _event_ids(b, parent_no) == _event_ids(a, parent_no)
    assert _history(a, sub_no) == _history(b, sub_no)

    _walk(a, lead, parent_no, ("issue_result", ""), ("deliver", ""))
    tools.drain(a, b)
    assert _state(b, parent_no) == "delivered"
    assert not [m for n in (a, b) for m in n.outbox() if m.status != "delivered"]


def test_the_lead_approves_by_hand_once_the_remote_subtask_is_decided(
    tools: Any, fed: dict[str, Any]
) -> None:
    """Received on B, led on A (合肥), sub-task 江苏 on B, decided before the lead
    reviews: A's copy of the sub-task shows it, the lead approves, B learns it."""
    a, b = fed["node-a"], fed["node-b"]
    parent_id, parent_no, sub_no = _submit_joint(b, "320500", ("340000", "340100"), ["320000"])
    tools.drain(a, b)
    lead = _officer(a, parent_no)
    _walk(a, lead, parent_no, ("accept", ""))

    partner = _officer(b, sub_no)
    _walk(b, partner, sub_no, ("accept", ""), ("start_review", ""), ("approve", ""))
    tools.drain(a, b)
    assert _state(a, sub_no) == "approved"
    assert _state(a, parent_no) == "accepted"  # nothing to decide before the lead reviews

    _walk(a, lead, parent_no, ("start_review", ""), ("approve", "准予转移"))
    tools.drain(a, b)
    with a.session() as s:
        parent = s.get(Case, parent_id)
        assert parent is not None and parent.state == "approved"
        assert parent.events[-1].actor_role == "officer"
    assert _state(b, parent_no) == "approved"


def test_a_remote_denial_denies_the_whole_case(tools: Any, fed: dict[str, Any]) -> None:
    """Received and led on A, sub-task on B denied: the platform denies the parent on A."""
    a, b = fed["node-a"], fed["node-b"]
    parent_id, parent_no, sub_no = _submit_joint(a, "340100", ("340000", "340100"), ["320000"])
    tools.drain(a, b)
    _walk(a, _officer(a, parent_no), parent_no, ("accept", ""), ("start_review", ""))
    _walk(b, _officer(b, sub_no), sub_no, ("accept", ""), ("start_review", ""), ("deny", "无记录"))
    tools.drain(a, b)
    with a.session() as s:
        parent = s.get(Case, parent_id)
        assert parent is not None and parent.state == "denied"
        assert parent.events[-1].actor_role == "system"
    assert _state(b, sub_no) == "denied"


def test_lead_and_subtask_on_the_same_remote_node(tools: Any, fed: dict[str, Any]) -> None:
    """Received on A (合肥 applicant), lead 苏州 and sub-task 浙江 both on B: the sub-task's
    copy on B, made before the parent arrived, is linked to it there."""
    a, b = fed["node-a"], fed["node-b"]
    parent_id, parent_no, sub_no = _submit_joint(a, "340100", ("320000", "320500"), ["330000"])
    tools.drain(a, b)
    with b.session() as s:
        parent = s.get(Case, parent_id)
        assert parent is not None and [t.number for t in parent.subtasks] == [sub_no]
    lead = _officer(b, parent_no)
    _walk(b, lead, parent_no, ("accept", ""), ("start_review", ""))
    with b.session() as s, pytest.raises(Conflict):
        cases.act(s, s.get(type(lead), lead.id), parent_id, "approve")
    _walk(b, _officer(b, sub_no), sub_no, ("accept", ""), ("start_review", ""), ("approve", ""))
    tools.drain(a, b)
    assert _state(b, parent_no) == "approved"
    assert _state(a, parent_no) == "approved" and _state(a, sub_no) == "approved"
    assert _history(a, parent_no) == _history(b, parent_no)


def test_a_subtask_step_ahead_of_its_parent_waits_for_it(tools: Any, fed: dict[str, Any]) -> None:
    """Received on B, lead on A: a sub-task's step sent on to A before the parent (which
    brings A's copy of the sub-task) arrived is answered 409 and delivered later."""
    a, b = fed["node-a"], fed["node-b"]
    parent_id, parent_no, sub_no = _submit_joint(b, "320500", ("340000", "340100"), ["320000"])
    (forward,) = [m for m in b.outbox(type="case.forwarded") if m.target_jurisdiction == "340000"]
    assert [t["number"] for t in forward.payload["subtasks"]] == [sub_no]
    with b.session() as s:  # hold back the parent's forwarding to A
        s.get(type(forward), forward.id).next_attempt_at = forward.created_at.replace(year=2999)  # type: ignore[union-attr]
        s.commit()
    b.dispatch()  # the sub-task's forwarding, on B itself: its "forwarded" step goes on to A
    b.dispatch()
    (early,) = [
        m for m in b.outbox(type="case.status_changed") if m.target_jurisdiction == "340000"
    ]
    assert early.status == "pending" and "409" in (early.last_error or "")
    assert tools.stored_case(a, sub_no) is None
    with b.session() as s:
        for m in (forward, early):
            s.get(type(m), m.id).next_attempt_at = m.created_at  # type: ignore[union-attr]
        s.commit()
    tools.drain(a, b)
    assert _history(a, sub_no) == _history(b, sub_no) == [(1, "submit"), (2, "forwarded")]
    with a.session() as s:
        parent = s.get(Case, parent_id)
        assert parent is not None and [t.number for t in parent.subtasks] == [sub_no]
    assert _state(b, parent_no) == "submitted"
