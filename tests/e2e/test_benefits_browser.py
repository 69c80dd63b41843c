"""免申即享 in a real browser against a real server process (one node, its embedded
worker): 王芳 submits the newborn bundle once; when 上海's health commission delivers the
出生医学证明, the 生育津贴 offer appears on her benefits page without any application,
with its trace (rule and version, each condition, the data and their sources), without
sideways scrolling at 1280 or 390 px; she accepts with one button; her data-use log shows
the read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e._steps import (
    NEWBORN_CHOICES,
    NEWBORN_FIELDS,
    deliver_when_forwarded,
    submit_newborn,
    until,
)

pytestmark = pytest.mark.browser

BORN = (date.today() - timedelta(days=5)).isoformat()
#: The child was born five days ago (the offer is for a birth less than 365 days ago).
FIELDS = {**NEWBORN_FIELDS, "birth_date": BORN}
CHOICES = {**NEWBORN_CHOICES, "child_sex": "女"}


def test_the_birth_brings_the_maternity_offer_with_its_trace_and_one_click_accepts(
    live_server: str,
    signed_in: Callable[[str], Any],
    login: Callable[[str], dict[str, str]],
    no_error: Callable[[Any], None],
    pdf_bytes: bytes,
    tmp_path: Path,
) -> None:
    page = signed_in("wangfang")
    page.goto("/my/benefits")
    assert "目前没有待遇" in page.inner_text("main")

    bundle_id = submit_newborn(page, pdf_bytes, tmp_path, FIELDS, CHOICES)
    no_error(page)

    with httpx.Client(base_url=live_server, timeout=30) as http:
        bundle = http.get(f"/api/v1/lifeevents/{bundle_id}", headers=login("wangfang")).json()
        case_id = bundle["steps"][0]["case"]["id"]
        officer = login("310000-health-approver")
        deliver_when_forwarded(http, case_id, officer, "上海's health commission")

    def offered() -> bool:
        page.goto("/my/benefits")
        return "生育津贴" in page.inner_text("main")

    until(offered, "the 生育津贴 offer")
    page.get_by_role("link", name="免申即享").first.wait_for()
    card = page.locator("section[id^='offer-MS']").filter(has_text="生育津贴")
    text = card.inner_text()
    assert "待确认" in text
    assert "规则 maternity_allowance 第1版" in text
    assert "连续缴费满12个月：连续缴费月数为48个月" in text
    assert "子女出生未满365天" in text and "→ 满足" in text
    card.get_by_text("使用的数据").click()
    assert "出生医学证明（上海市卫生健康委员会签发）" in card.inner_text()
    assert "社会保险缴费记录（合肥市社会保险事业管理中心，演示数据）" in card.inner_text()
    no_error(page)
    # On a phone the trace wraps: nothing scrolls sideways.
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), width

    card.get_by_role("button", name="确认领取").click()
    page.wait_for_url("**/my/benefits?done=accepted*")
    assert "已确认领取" in page.locator("[role=status]").inner_text()
    assert page.get_by_role("button", name="确认领取").count() == 0

    page.goto("/my/data-use")
    assert "免申即享：生育津贴（第1版）" in page.inner_text("main")
    no_error(page)
