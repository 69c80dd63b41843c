"""Withdrawing consent (撤回授权) when the case is handled on another node. The applicant
(安徽, node A) applies online to 苏州 (node B): A received the case and holds the
consent, B handles it and holds a copy. The applicant may withdraw on either node — on
A, their home node, as usual; on B when they have an account there too (the demo has
every resident on every node) — and the other copy follows
by `evidence.consent_withdrawn`, so B's officer cannot fetch the kind and A's page says
so, with whether the withdrawal has reached the other node. Nobody but the two nodes of
the case may send it, and only for the consent's own subject."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from integration.exchange.test_cross_node_evidence import _submit
from tongban.cases import service as cases
from tongban.errors import Conflict, ValidationFailed
from tongban.evidence import service as evidence
from tongban.evidence.handlers import MSG_WITHDRAWN
from tongban.exchange import service as exchange
from tongban.exchange.federation import Node
from tongban.exchange.transport import Envelope
from tongban.identity.models import Account

from builders import make_officer, make_resident

NODE_B = Node("node-b", "node-b", ("320000", "330000"), "http://node-b.test")


def _handled_on_b(tools: Any, a: Any, b: Any) -> tuple[Any, Any, Any]:
    """The case submitted on A with consent to both kinds, accepted on B; the officer."""
    case, resident = _submit(a, ["household", "social_insurance"])
    tools.drain(a, b)
    with b.session() as s:
        officer = make_officer(s, "320500-housing_fund")
        cases.act(s, officer, case.id, "accept")
        s.commit()
        return case, resident, officer.id


def _request_refused(b: Any, officer_id: Any, case: Any, kind: str) -> None:
    with b.session() as s:
        officer = s.get(Account, officer_id)
        with pytest.raises(Conflict) as e:
            evidence.request_evidence(s, officer, case.id, kind, "housing_fund_transfer")
        assert e.value.type == "consent-withdrawn"


def _reached(node: Any, resident_id: Any, number: str) -> dict[str, str] | None:
    with node.session() as s:
        c = evidence.consent_for(s, number)
        assert c is not None
        return evidence.withdrawal_reached(s, c)


def test_withdrawn_on_the_home_node_the_competent_copy_follows(tools: Any, fed: dict[str, Any]):
    a, b = fed["node-a"], fed["node-b"]
    case, resident, officer_id = _handled_on_b(tools, a, b)
    with a.session() as s:
        evidence.withdraw_consent(s, s.get(type(resident), resident.id), case.number, "social_insurance")  # fmt: skip
        s.commit()
    pending = _reached(a, resident.id, case.number)
    assert pending is not None and pending["state"] == "pending" and pending["where"] == "江苏省"
    tools.drain(a, b)
    assert _reached(a, resident.id, case.number) == {"where": "江苏省", "state": "delivered"}
    with b.session() as s:
        copy = evidence.consent_for(s, case.number)
        assert copy is not None and copy.active_scopes() == ["household"]
    _request_refused(b, officer_id, case, "social_insurance")


def test_withdrawn_on_the_competent_node_the_home_node_follows(tools: Any, fed: dict[str, Any]):
    a, b = fed["node-a"], fed["node-b"]
    case, resident, officer_id = _handled_on_b(tools, a, b)
    with b.session() as s:  # the same person signed in on 江苏's node
        twin = make_resident(s, "340100", id_number=resident.id_number)
        assert [c.case_number for c in evidence.my_consents(s, twin)] == [case.number]
        evidence.withdraw_consent(s, twin, case.number, "household")
        s.commit()
    _request_refused(b, officer_id, case, "household")  # at once where it is requested
    with a.session() as s:  # not yet at home
        c = evidence.consent_for(s, case.number)
        assert c is not None and c.active_scopes() == ["household", "social_insurance"]
    tools.drain(a, b)
    with a.session() as s:
        me = s.get(type(resident), resident.id)
        (c,) = evidence.my_consents(s, me)
        assert c.active_scopes() == ["social_insurance"]
        assert [w["kind"] for w in c.withdrawals or []] == ["household"]
        # Withdrawn elsewhere: nothing is sent back (no echo), and nothing claims it was.
        assert evidence.withdrawal_reached(s, c) is None
    assert not [m for m in a.outbox(type=MSG_WITHDRAWN)]
    assert _reached(b, None, case.number) == {"where": "安徽省", "state": "delivered"}
    with a.session() as s, pytest.raises(ValidationFailed, match="未授权或已撤回"):
        evidence.withdraw_consent(s, s.get(type(resident), resident.id), case.number, "household")  # fmt: skip


def _to_a(a: Any, payload: dict[str, Any], source: str) -> Any:
    env = Envelope(
        id=uuid.uuid4(),
        type=MSG_WITHDRAWN,
        source_node=NODE_B.id,
        source_jurisdiction=source,
        target_jurisdiction="340000",
        created_at=datetime.now(UTC).isoformat(),
        payload=payload,
        version=1,
    )
    with a.session() as s:
        try:
            return exchange.receive(s, env, NODE_B)
        finally:
            s.commit()


def test_only_the_cases_nodes_and_only_for_its_subject(tools: Any, fed: dict[str, Any]):
    a, b = fed["node-a"], fed["node-b"]
    case, resident, _ = _handled_on_b(tools, a, b)
    body = {
        "case_number": case.number,
        "subject": resident.id_number,
        "kind": "household",
        "at": datetime.now(UTC).isoformat(),
        "by": "某人",
    }
    # B serves 浙江 too, but the case is not handled there: refused.
    with pytest.raises(exchange.Refused) as refused:
        _to_a(a, body, "330000")
    assert refused.value.reason == "not-allowed"
    # From the competent jurisdiction but for someone else: nothing changes.
    _to_a(a, {**body, "subject": "110101199003074477"}, "320000")
    with a.session() as s:
        c = evidence.consent_for(s, case.number)
        assert c is not None and c.active_scopes() == ["household", "social_insurance"]
    # From the competent jurisdiction for the subject: applied.
    assert _to_a(a, body, "320000")
    with a.session() as s:
        c = evidence.consent_for(s, case.number)
        assert c is not None and c.active_scopes() == ["social_insurance"]
