"""A decision made on the competent node reaches the applicant's inbox on the applicant's
node: two nodes in one process over signed HTTP (the fixtures of tests/integration/
exchange: node A serves 上海 and 安徽, node B 江苏 and 浙江), SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from integration.exchange.conftest import fed, fed_dbs, hosts, tools  # noqa: F401 - fixtures
from tongban.cases import service as cases
from tongban.cases.models import Case
from tongban.notifications.models import Message

from builders import make_officer

AUTHORITY = "320500-housing_fund"


def _topics(node: Any, account_id: Any) -> list[str]:
    with node.session() as s:
        return list(
            s.scalars(
                select(Message.topic)
                .where(Message.account_id == account_id)
                .order_by(Message.created_at)
            )
        )


def test_the_competent_nodes_decisions_reach_the_applicant_on_their_node(
    tools: Any,  # noqa: F811
    fed: dict[str, Any],  # noqa: F811
) -> None:
    a, b = fed["node-a"], fed["node-b"]
    with b.session() as s:
        officer = make_officer(s, AUTHORITY)
        officer_id = officer.id
        s.commit()
    case, resident = tools.submit(a)  # a 合肥 resident applies on A to 苏州 (B)
    tools.drain(a, b)
    # The copy arrived on B with its submission: B's officer has new work.
    assert _topics(b, officer_id) == ["case.new"]
    with b.session() as s:
        copy = s.scalar(select(Case).where(Case.number == case.number))
        assert copy is not None and copy.applicant_id is None  # the account lives on A
        for action in ("accept", "start_review", "approve", "issue_result", "deliver"):
            cases.act(s, s.merge(officer), copy.id, action, "符合条件")
            s.commit()
    tools.drain(a, b)
    assert _topics(a, resident.id) == [
        "case.accepted",
        "case.approved",
        "case.result",
        "case.delivered",
    ]
    with a.session() as s:
        msg = s.scalar(
            select(Message).where(
                Message.account_id == resident.id, Message.topic == "case.approved"
            )
        )
        assert msg is not None and case.number in msg.body
        assert msg.link == f"/my/cases/{case.id}"
    # B holds no message for an account it does not have; a redelivery adds nothing.
    with b.session() as s:
        assert s.scalars(select(Message).where(Message.account_id == resident.id)).all() == []
    tools.drain(a, b)
    assert len(_topics(a, resident.id)) == 4
