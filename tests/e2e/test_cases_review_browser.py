"""The 提交审批 hand-off, the 差评整改 loop and the error summary in a real browser, at
desktop and phone width: the reviewer proposes with an opinion, the approver sees it in
the 待审批 queue and decides; the resident rates badly, the authority replies, the
resident says 未解决 and the authority sees it back; a refused application form shows
one summary that has the focus and links to each field. Pages are screenshotted at 1280
and 390 px into the test's tmp dir (no page scrolls sideways)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from axe import assert_accessible, axe_available
from e2e._steps import open_when_forwarded, shoot, step, submitted_case

pytestmark = pytest.mark.browser

REVIEWER = "320500-housing_fund-reviewer"
APPROVER = "320500-housing_fund-approver"


def look(page: Any, tmp_path: Path, name: str) -> None:
    """Screenshots at 1280 and 390 px (no sideways scrolling), and axe where installed."""
    shoot(page, tmp_path, name)
    if axe_available():
        assert_accessible(page, name)


def test_hand_off_and_rating_loop_in_the_browser(
    live_server: str,
    login: Callable[[str], dict[str, str]],
    signed_in: Callable[[str], Any],
    no_error: Callable[[Any], None],
    pdf_bytes: bytes,
    tmp_path: Path,
) -> None:
    case_id = submitted_case(live_server, login("wangfang"), pdf_bytes)
    reviewer = signed_in(REVIEWER)
    open_when_forwarded(
        reviewer, case_id, lambda p: p.get_by_role("heading", name="受理", exact=True).count()
    )
    step(reviewer, case_id, "受理")
    step(reviewer, case_id, "开始审查")
    reviewer.goto(f"/workbench/cases/{case_id}")
    look(reviewer, tmp_path, "1-reviewer-proposes")
    step(reviewer, case_id, "提交审批", proposal="建议准予", 审查意见="材料齐全，符合条件")
    no_error(reviewer)
    assert "待审批" in reviewer.locator("dl.facts").inner_text()

    approver = signed_in(APPROVER)
    approver.goto("/workbench")
    assert "我的职责" in approver.locator("main").inner_text()
    approver.get_by_role("navigation", name="我的队列").get_by_role(
        "link", name=re.compile("待审批")
    ).click()
    look(approver, tmp_path, "2-approval-queue")
    approver.goto(f"/workbench/cases/{case_id}")
    assert "建议准予：材料齐全，符合条件" in approver.locator("#proposal").inner_text()
    look(approver, tmp_path, "3-approver-decides")
    step(approver, case_id, "准予办理", confirm="1")
    step(approver, case_id, "出具结果", 结果内容="准予出具")
    step(approver, case_id, "送达")
    no_error(approver)

    resident = signed_in("wangfang")
    resident.goto(f"/my/cases/{case_id}")
    resident.get_by_label("非常不满意").check()
    resident.get_by_label("评价内容").fill("来回跑了三次")
    resident.get_by_role("button", name="提交评价").click()
    resident.wait_for_url(re.compile(r"done=rate"))

    approver.goto("/workbench/rectifications")
    approver.get_by_label("整改答复（必填").fill("已改为一次告知，材料当场核对")
    look(approver, tmp_path, "4-rectification-reply")
    approver.get_by_role("button", name="发送答复").click()
    approver.wait_for_url(re.compile(r"done=1"))

    resident.goto(f"/my/cases/{case_id}")
    section = resident.locator("#rectification")
    assert "已改为一次告知" in section.inner_text()
    look(resident, tmp_path, "5-resident-answers")
    section.get_by_role("radio", name="未解决").check()
    section.get_by_label(re.compile("仍未解决的问题")).fill("窗口仍要求复印件")
    section.get_by_role("button", name="提交确认").click()
    resident.wait_for_url(re.compile(r"done=rectification"))
    no_error(resident)
    assert "转主管部门重新整改" in resident.get_by_role("status").inner_text()

    approver.goto("/workbench/rectifications")
    assert "窗口仍要求复印件" in approver.locator("main").inner_text()


def test_a_refused_application_shows_a_focused_summary(
    signed_in: Callable[[str], Any], tmp_path: Path
) -> None:
    resident = signed_in("wangfang")
    resident.goto("/apply/YRD-GA-0002")
    # What the browser itself requires is filled; the server finds the rest at once:
    # a wrong check digit, the missing ID card, the missing consent.
    resident.get_by_label("有管辖权的省（市）").select_option(label="江苏省")
    resident.get_by_label(re.compile("^办理城市")).select_option(label="苏州市")
    resident.get_by_label(re.compile("^证明类型")).select_option("亲属关系证明")
    resident.get_by_label(re.compile("^证明对象姓名")).fill("王小明")
    resident.get_by_label(re.compile("^证明对象身份证号码")).fill("340102199003071234")
    resident.get_by_label(re.compile("^证明用途")).fill("办理入学")
    resident.get_by_role("button", name="提交申请").click()
    resident.wait_for_load_state()
    summary = resident.locator(".error-summary")
    assert summary.count() == 1
    focused = resident.evaluate("document.activeElement && document.activeElement.id")
    assert focused == "error-summary-title"
    text = summary.inner_text()
    assert "校验位不正确" in text and "请上传" in text
    look(resident, tmp_path, "6-error-summary")
    summary.get_by_role("link", name=re.compile("校验位")).click()
    assert resident.evaluate("location.hash") == "#f_subject_id_number"
