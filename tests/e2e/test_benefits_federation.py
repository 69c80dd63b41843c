"""免申即享 across two `tongban serve --node …` processes (init-local with the demo data:
node-310000 serves 上海 and 浙江, node-320000 江苏 and 安徽), in a real browser: 王芳 (安徽
合肥, her insurance data on node-320000) submits the newborn bundle once on her node — the
baby born in a 上海 hospital, registered with the father in 南京 (江苏). The 出生医学证明
case reaches 上海's health commission on node-310000, whose officer delivers it; the result
comes back, 出生登记 starts in 南京, and the 生育津贴 offer appears on 王芳's node without an
application, with its trace, and she accepts it. node-310000 made no offer and logged no
use of her data."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e._steps import NEWBORN_CHOICES, NEWBORN_FIELDS, submit_newborn
from nodes import FAST_RETRIES, PeerNode, federation, wait_until
from tongban.demo import DEMO_PASSWORD

pytestmark = pytest.mark.browser

TIMEOUT = 90.0
WANGFANG = "340102199003071283"
#: The child was born three days ago (the offer is for a birth less than 365 days ago).
FIELDS = {**NEWBORN_FIELDS, "birth_date": (date.today() - timedelta(days=3)).isoformat()}
CHOICES = {**NEWBORN_CHOICES, "child_sex": "女"}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PeerNode]]:
    root = tmp_path_factory.mktemp("benefits-fed")
    with federation(root, 2, port_start=24600, port_step=43, env=FAST_RETRIES) as procs:
        assert sorted(procs) == ["310000", "320000"]
        yield procs


def test_one_submission_across_nodes_brings_the_offer_to_the_mother_s_node(
    nodes: dict[str, PeerNode], browser: Any, tmp_path: Path
) -> None:
    shanghai, home = nodes["310000"], nodes["320000"]
    ctx = browser.new_context(base_url=home.url, locale="zh-CN")
    ctx.set_default_timeout(20_000)
    csp: list[str] = []
    page = ctx.new_page()
    page.on(
        "console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None
    )
    try:
        page.goto("/login")
        page.get_by_label("用户名").fill("wangfang")
        page.get_by_label("密码").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        page.wait_for_load_state()
        pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
        bundle_id = submit_newborn(page, pdf, tmp_path, FIELDS, CHOICES)

        with httpx.Client(timeout=30) as http:
            bundle = http.get(
                f"{home.url}/api/v1/lifeevents/{bundle_id}", headers=home.token(http, "wangfang")
            ).json()
            case_id = bundle["steps"][0]["case"]["id"]
            officer = shanghai.token(http, "310000-health-approver")

            def accepted() -> bool:
                r = http.post(
                    f"{shanghai.url}/api/v1/cases/{case_id}/actions",
                    json={"action": "accept"},
                    headers=officer,
                )
                return r.status_code == 200

            wait_until(
                "the 出生医学证明 case on 上海's node",
                accepted,
                TIMEOUT,
                lambda: home.server.log_tail() + shanghai.server.log_tail(),
            )
            for action in ("start_review", "approve", "issue_result", "deliver"):
                r = http.post(
                    f"{shanghai.url}/api/v1/cases/{case_id}/actions",
                    json={"action": action, "comment": "符合条件"},
                    headers=officer,
                )
                assert r.status_code == 200, r.text

        def offered() -> bool:
            page.goto("/my/benefits")
            return "生育津贴" in page.inner_text("main")

        wait_until("the 生育津贴 offer on 王芳's node", offered, TIMEOUT, home.server.log_tail)
        card = page.locator("section[id^='offer-MS']").filter(has_text="生育津贴")
        text = card.inner_text()
        assert "待确认" in text and "规则 maternity_allowance 第1版" in text
        assert "连续缴费满12个月：连续缴费月数为48个月" in text
        card.get_by_text("使用的数据").click()
        assert "出生医学证明（上海市卫生健康委员会签发）" in card.inner_text()
        card.get_by_role("button", name="确认领取").click()
        page.wait_for_url("**/my/benefits?done=accepted*")
        assert "已确认领取" in page.locator("[role=status]").inner_text()

        # The results arrived on her node: 出生登记 started in 南京 by itself.
        page.goto(f"/my/lifeevents/{bundle_id}")
        wait_until(
            "出生登记 to start in 南京",
            lambda: (
                "南京市公安局" in page.locator("#step-hukou").inner_text()
                or page.reload() is not None
                and False
            ),
            TIMEOUT,
        )
    finally:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(tmp_path / "benefits-federation.png"), full_page=True)
        ctx.close()
    assert not csp, csp
    query = "SELECT count(*) FROM benefit_offer WHERE subject_identifier = :who"
    assert home.sql(query, who=WANGFANG)[0][0] == 1
    assert shanghai.sql(query, who=WANGFANG)[0][0] == 0
    logged = (
        "SELECT count(*) FROM evidence_data_access"
        " WHERE subject_identifier = :who AND kind = 'benefit_eligibility'"
    )
    assert shanghai.sql(logged, who=WANGFANG)[0][0] == 0
    assert home.sql(logged, who=WANGFANG)[0][0] >= 1
