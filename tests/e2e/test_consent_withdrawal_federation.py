"""Withdrawing consent (撤回授权) across two `tongban serve --node …` processes
(init-local with the demo data: node-310000 serves 上海 and 浙江, node-320000 江苏 and
安徽). 王芳 (安徽, home node node-320000) applies online for 住房公积金异地转移接续 in 上海,
handled on node-310000, consenting to 户籍证明 and 社保缴费记录. She withdraws 社保 on her
home node: the withdrawal reaches 上海 over signed HTTP, whose officer can no longer fetch
it, and her page says it arrived. She then withdraws 户籍 on 上海's node (she has an
account there too): her home node follows. Nobody else's withdrawal counts."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from nodes import FAST_RETRIES, PeerNode, federation, wait_until

from builders import TINY_PDF

TIMEOUT = 60.0
GJJ = "YRD-GJJ-0001"  # 住房公积金异地转移接续: may ask for 户籍证明 and 社保缴费记录
REVIEWER = "310000-housing_fund-reviewer"
FORM = {
    "out_center": "合肥住房公积金管理中心",
    "out_account": "12345678",
    "in_center": "上海市住房公积金管理中心",
    "new_employer": "上海示范有限公司",
}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PeerNode]]:
    root = tmp_path_factory.mktemp("consent-fed")
    with federation(root, 2, port_start=25300, port_step=41, env=FAST_RETRIES) as procs:
        assert sorted(procs) == ["310000", "320000"]
        yield procs


def _withdrawn(node: PeerNode, number: str) -> list[str]:
    rows = node.sql("SELECT withdrawals FROM evidence_consent WHERE case_number = :n", n=number)
    if not rows:
        return []
    raw = rows[0][0]
    value = json.loads(raw) if isinstance(raw, str) else raw
    return sorted(w["kind"] for w in value or [])


def _withdraw(
    http: httpx.Client, node: PeerNode, who: dict[str, str], number: str, kind: str
) -> int:
    r = http.post(
        f"{node.url}/api/v1/my/evidence-consents/{number}/withdraw",
        headers=who,
        json={"kind": kind},
    )
    return r.status_code


def _fetch_refused(
    http: httpx.Client, node: PeerNode, officer: dict[str, str], case_id: str, kind: str
) -> None:
    """The competent officer's request for `kind` is refused: consent withdrawn."""
    r = http.post(
        f"{node.url}/api/v1/cases/{case_id}/evidence",
        headers=officer,
        json={"kind": kind, "purpose": "housing_fund_transfer"},
    )
    assert r.status_code == 409 and r.json()["type"].endswith("consent-withdrawn"), r.text


def test_withdrawn_on_either_node_the_other_follows(nodes: dict[str, PeerNode]) -> None:
    shanghai, home = nodes["310000"], nodes["320000"]
    with httpx.Client(timeout=30) as http:
        me = home.token(http, "wangfang")
        att = http.post(
            f"{home.url}/api/v1/attachments",
            headers=me,
            data={"material_code": "id_card"},
            files={"file": ("id.pdf", TINY_PDF, "application/pdf")},
        )
        assert att.status_code == 201, att.text
        r = http.post(
            f"{home.url}/api/v1/cases",
            headers=me,
            json={
                "matter_code": GJJ,
                "competent_jurisdiction": "310000",
                "competent_city": "310000",
                "mode": "online",
                "form_data": FORM,
                "consent": True,
                "attachment_ids": [att.json()["id"]],
                "evidence_consent": ["household", "social_insurance"],
            },
        )
        assert r.status_code == 201, r.text
        case = r.json()
        number, case_id = case["number"], case["id"]

        officer = shanghai.token(http, REVIEWER)
        wait_until("the case did not reach 上海's node", lambda: http.get(
            f"{shanghai.url}/api/v1/cases/{number}", headers=officer).status_code == 200,
            TIMEOUT)  # fmt: skip
        wait_until("the consent's copy did not reach 上海's node", lambda: shanghai.sql(
            "SELECT 1 FROM evidence_consent WHERE case_number = :n", n=number), TIMEOUT)  # fmt: skip
        r = http.post(
            f"{shanghai.url}/api/v1/cases/{case_id}/actions",
            headers=officer,
            json={"action": "accept"},
        )
        assert r.status_code == 200, r.text

        # 1. On her home node: 社保 withdrawn; 上海's copy follows, its officer is refused.
        assert _withdraw(http, home, me, number, "social_insurance") == 200
        wait_until("the withdrawal did not reach 上海's node",
                   lambda: _withdrawn(shanghai, number) == ["social_insurance"], TIMEOUT)  # fmt: skip
        _fetch_refused(http, shanghai, officer, case_id, "social_insurance")

        def page() -> str:  # her data-use page on her home node (bearer works for pages;
            # no cookie jar: a page's cookie would be sent to the other node, same host)
            return httpx.get(f"{home.url}/my/data-use", headers=me, timeout=30).text

        wait_until("the home page never said the withdrawal arrived",
                   lambda: 'data-reached="delivered"' in page(), TIMEOUT)  # fmt: skip
        assert "撤回已送达上海市的办件节点" in page()

        # 2. On 上海's node (her account there sees the copy): 户籍 withdrawn; home follows.
        there = shanghai.token(http, "wangfang")
        mine = http.get(f"{shanghai.url}/api/v1/my/evidence-consents", headers=there).json()
        assert [c["case_number"] for c in mine] == [number]
        assert _withdraw(http, shanghai, there, number, "household") == 200
        _fetch_refused(http, shanghai, officer, case_id, "household")  # at once, there
        wait_until(
            "the withdrawal on 上海's node did not reach her home node",
            lambda: _withdrawn(home, number) == ["household", "social_insurance"],
            TIMEOUT,
        )
        mine = http.get(f"{home.url}/api/v1/my/evidence-consents", headers=me).json()
        (c,) = [c for c in mine if c["case_number"] == number]
        assert sorted(w["kind"] for w in c["withdrawals"]) == ["household", "social_insurance"]

        # 3. Someone else on the home node cannot withdraw her consent (404, not 403).
        assert _withdraw(http, home, home.token(http, "lina"), number, "household") == 404
