"""Hand-overs of a person-related case across two nodes in one process (SQLite and
PostgreSQL): node A serves 上海 and 安徽, node B 江苏 and 浙江. 合肥 (A) hands a close
contact over to 苏州 (B). The case is owned by exactly one jurisdiction on the sender's
record at every step, the receiver may act only once the sender committed the transfer
and told it, an answer to a withdrawn offer changes nothing, only the purpose's fields
travel, and the disclosure is in the person's data-use log on both nodes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from integration.emergency.kit import PERSON, staff
from tongban.emergency import handover
from tongban.emergency.domain import Duty
from tongban.emergency.incidents_models import Handover
from tongban.errors import Conflict, ValidationFailed
from tongban.evidence.models import DataAccess
from tongban.exchange import service as exchange
from tongban.identity.models import Account
from tongban.kernel.lifecycle import IllegalTransition

HEFEI, SUZHOU = "340100", "320500"


def _setup(a: Any, b: Any) -> tuple[Any, Any]:
    with a.session() as s:
        hf = staff(s, HEFEI, Duty.COORDINATOR)
        s.commit()
        hf_id = hf.id
    with b.session() as s:
        sz = staff(s, SUZHOU, Duty.COORDINATOR)
        s.commit()
        sz_id = sz.id
    return hf_id, sz_id


def _offer(a: Any, hf_id: Any, **kw: Any) -> Any:
    with a.session() as s:
        h = handover.offer(
            s,
            s.get(Account, hf_id),
            sender_city=HEFEI,
            receiver_city=SUZHOU,
            purpose=kw.pop("purpose", "close_contact"),
            reason="密接人员已返回苏州，请属地落实管控",
            subject=kw.pop("subject", dict(PERSON)),
        )
        s.commit()
        return h.id


def _offered(tools: Any, fed: dict[str, Any]) -> tuple[Any, Any, Any, Any, Any]:
    """合肥 (node A) has offered the close contact to 苏州 (node B), and B holds the copy:
    the nodes, both coordinators' ids and the hand-over's."""
    a, b = fed["node-a"], fed["node-b"]
    hf_id, sz_id = _setup(a, b)
    hid = _offer(a, hf_id)
    tools.drain(a, b)
    return a, b, hf_id, sz_id, hid


def _view(node: Any, hid: Any) -> dict[str, Any] | None:
    with node.session() as s:
        h = s.get(Handover, hid)
        if h is None:
            return None
        return {
            "state": h.state,
            "owner": h.owner_jurisdiction,
            "may_act": handover.may_act(s, h),
            "status": handover.status_here(s, h),
            "events": [(e.seq, e.action, e.to_state) for e in h.events],
        }


def test_a_close_contact_is_handed_over_with_exactly_one_owner_throughout(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    hf_id, sz_id = _setup(a, b)
    hid = _offer(a, hf_id)

    # Offered: the sender owns it and may act; the receiver has nothing yet.
    assert _view(a, hid) == {
        "state": "offered",
        "owner": "340000",
        "may_act": True,
        "status": "待接收",
        "events": [(1, "offer", "offered")],
    }
    assert _view(b, hid) is None
    tools.drain(a, b)
    on_b = _view(b, hid)
    assert on_b is not None and on_b["owner"] == "340000" and not on_b["may_act"]
    assert on_b["status"] == "接收中"

    # Only the purpose's fields travelled, and the disclosure is in the person's log.
    for node in (a, b):
        with node.session() as s:
            h = s.get(Handover, hid)
            assert h is not None and set(h.subject) == set(PERSON)
            use = s.scalar(select(DataAccess).where(DataAccess.request_id == hid))
            assert use is not None
            assert use.subject_identifier == PERSON["id_number"]
            assert use.purpose == "close_contact" and use.kind == "emergency_handover"
            assert use.requester_jurisdiction == "320000"
            assert use.provider_jurisdiction == "340000"
            assert sorted(use.fields) == sorted(PERSON)

    # The receiver cannot act before the transfer is committed.
    with b.session() as s, pytest.raises(Conflict) as refused:
        handover.follow_up(s, s.get(Account, sz_id), hid, "已电话联系")
    assert refused.value.type == "not-owner"

    # The receiver accepts: still the sender's until the sender's node commits it.
    with b.session() as s:
        handover.answer(s, s.get(Account, sz_id), hid, accept=True)
        s.commit()
    assert _view(b, hid)["may_act"] is False  # type: ignore[index]
    assert _view(b, hid)["status"].startswith("接收中")  # type: ignore[index]
    assert _view(a, hid)["owner"] == "340000"  # type: ignore[index]
    with b.session() as s, pytest.raises(Conflict) as twice:
        handover.answer(s, s.get(Account, sz_id), hid, accept=False, note="重复")
    assert twice.value.type == "already-answered"

    # B delivers the answer to A: A commits the transfer, but B does not know yet.
    b.dispatch()
    on_a = _view(a, hid)
    assert on_a is not None and on_a["state"] == "transferred" and on_a["owner"] == "320000"
    assert on_a["may_act"] is False
    assert _view(b, hid)["may_act"] is False  # type: ignore[index]  # nobody acts in between
    a.dispatch()
    on_b = _view(b, hid)
    assert on_b is not None and on_b["owner"] == "320000" and on_b["may_act"] is True
    assert on_b["status"] == "已接收，由本辖区负责"
    assert _view(a, hid)["events"] == on_b["events"]  # type: ignore[index]
    assert [e[1] for e in on_b["events"]] == ["offer", "accept"]

    # Too late to withdraw; the new owner acts, the old one cannot.
    with a.session() as s, pytest.raises(IllegalTransition):
        handover.withdraw(s, s.get(Account, hf_id), hid, "误发")
    with a.session() as s, pytest.raises(Conflict):
        handover.follow_up(s, s.get(Account, hf_id), hid, "继续跟进")
    with b.session() as s:
        handover.follow_up(s, s.get(Account, sz_id), hid, "已落实居家隔离")
        s.commit()
    assert [e[1] for e in _view(b, hid)["events"]] == ["offer", "accept", "follow_up"]  # type: ignore[index]
    tools.drain(a, b)
    assert [e[1] for e in _view(a, hid)["events"]] == ["offer", "accept"]  # type: ignore[index]
    for node in (a, b):
        assert node.outbox(status="dead") == []


def test_an_acceptance_arriving_after_a_withdrawal_changes_nothing(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b, hf_id, sz_id, hid = _offered(tools, fed)
    with b.session() as s:
        handover.answer(s, s.get(Account, sz_id), hid, accept=True)
        s.commit()
    with a.session() as s:  # before the acceptance arrived
        handover.withdraw(s, s.get(Account, hf_id), hid, "人员已返回合肥")
        s.commit()
    tools.drain(a, b)
    for node in (a, b):
        v = _view(node, hid)
        assert v is not None and v["state"] == "withdrawn" and v["owner"] == "340000"
        assert [e[1] for e in v["events"]] == ["offer", "withdraw"]
    assert _view(a, hid)["may_act"] is True and _view(b, hid)["may_act"] is False  # type: ignore[index]
    for node in (a, b):
        assert node.outbox(status="dead") == [] and node.outbox(status="pending") == []


def test_a_refusal_keeps_the_case_with_the_sender(tools: Any, fed: dict[str, Any]) -> None:
    a, b, hf_id, sz_id, hid = _offered(tools, fed)
    with b.session() as s, pytest.raises(ValidationFailed):
        handover.answer(s, s.get(Account, sz_id), hid, accept=False)
    with b.session() as s:
        handover.answer(s, s.get(Account, sz_id), hid, accept=False, note="该人员不在本市")
        s.commit()
    tools.drain(a, b)
    for node in (a, b):
        v = _view(node, hid)
        assert v is not None and (v["state"], v["owner"]) == ("refused", "340000")
    with a.session() as s:
        h = s.get(Handover, hid)
        assert h is not None and h.events[-1].comment == "该人员不在本市"


def test_only_what_the_purpose_needs_is_accepted(tools: Any, fed: dict[str, Any]) -> None:
    a, b = fed["node-a"], fed["node-b"]
    hf_id, _ = _setup(a, b)
    with pytest.raises(ValidationFailed) as extra:
        _offer(a, hf_id, subject={**PERSON, "hospital": "苏州市第五人民医院"})
    assert [e["field"] for e in extra.value.errors] == ["subject.hospital"]
    without_phone = {k: v for k, v in PERSON.items() if k != "phone"}
    with pytest.raises(ValidationFailed) as missing:
        _offer(a, hf_id, subject=without_phone)
    assert [e["field"] for e in missing.value.errors] == ["subject.phone"]


def test_a_node_that_does_not_serve_the_receiver_cannot_answer_nor_move_ownership(
    tools: Any, fed: dict[str, Any]
) -> None:
    a, b, hf_id, _, hid = _offered(tools, fed)
    with a.session() as s:
        h = s.get(Handover, hid)
        assert h is not None
        answer = {
            "handover_id": str(hid),
            "number": h.number,
            "answer": "accept",
            "note": "",
            "answered_by": "冒名者",
            "answered_at": "2026-11-29T00:00:00+00:00",
        }
        change = {
            "handover_id": str(hid),
            "number": h.number,
            "seq": 2,
            "event": {
                "id": "00000000-0000-0000-0000-000000000001",
                "seq": 2,
                "action": "accept",
                "from_state": "offered",
                "to_state": "transferred",
                "actor_name": "冒名者",
                "actor_role": "receiver",
                "comment": "",
                "at": "2026-11-29T00:00:00+00:00",
            },
            "state": "transferred",
            "owner_jurisdiction": "320000",
            "transferred_at": "2026-11-29T00:00:00+00:00",
            "updated_at": "2026-11-29T00:00:00+00:00",
        }
    # 浙江 (node B, not the receiver 江苏's jurisdiction) answers: refused.
    zhejiang = exchange.Sender("node-b", frozenset({"320000", "330000"}), "330000", "340000")
    with a.session() as s, pytest.raises(exchange.Refused) as refused:
        exchange.check(s, handover.ANSWER, answer, zhejiang)
    assert refused.value.reason == "not-allowed"
    # The receiver's node cannot commit the transfer itself: only the sender's changes count.
    jiangsu = exchange.Sender("node-b", frozenset({"320000", "330000"}), "320000", "340000")
    with a.session() as s, pytest.raises(exchange.Refused):
        exchange.check(s, handover.HANDOVERS.change_type, change, jiangsu)
    # A change claiming the transfer without naming the receiver as owner is malformed.
    sender_node = exchange.Sender("node-a", frozenset({"310000", "340000"}), "340000", "320000")
    with b.session() as s, pytest.raises(exchange.Refused):
        exchange.check(
            s,
            handover.HANDOVERS.change_type,
            {**change, "owner_jurisdiction": "340000"},
            sender_node,
        )
    assert _view(a, hid)["owner"] == "340000"  # type: ignore[index]
