"""A border problem in a real browser: 李娜, a resident of 苏州, reports river pollution
on the 吴江–嘉善 border (江苏 / 浙江) with a photo and coordinates. The platform makes a
joint work order: 苏州 leads, 嘉兴 co-handles, and both sides' authorities see it. The
lead fixes it, 苏州's 12345 dispatcher verifies, 李娜 is not satisfied and reopens it,
the fix is redone, verified again, and 李娜 confirms."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builders import BORDER_WUJIANG_JIASHAN, TINY_PNG

pytestmark = pytest.mark.browser

RESIDENT = "lina"  # 李娜, 苏州
LEAD = "320500-ecology_environment-reviewer"
PARTNER = "330400-ecology_environment-reviewer"
DISPATCHER = "dispatcher-320500"
PLACE = "太浦河汾湖段（吴江—嘉善交界）"


def press(page: Any, label: str, no_error: Callable[[Any], None], photo: Path | None = None,
          comment: str | None = None, action: str | None = None) -> None:  # fmt: skip
    """Take one step on the work-order page: fill the step's form and press its button."""
    if photo is not None:
        page.locator(f"#photos-{action}").set_input_files(str(photo))
    if comment is not None:
        page.locator(f"#comment-{action}").fill(comment)
    page.get_by_role("button", name=label, exact=True).click()
    page.wait_for_load_state()
    no_error(page)


def state_of(page: Any) -> str:
    return str(page.locator("dl.facts dt:text-is('当前状态') + dd").inner_text())


def test_border_problem_joint_fix_reopen_and_confirm(
    signed_in: Callable[[str], Any], no_error: Callable[[Any], None], tmp_path: Path
) -> None:
    photo = tmp_path / "river.png"
    photo.write_bytes(TINY_PNG)
    lat, lon = BORDER_WUJIANG_JIASHAN

    # 李娜 reports it with a photo and the coordinates her phone gave.
    resident = signed_in(RESIDENT)
    resident.get_by_role("link", name="我的工单").click()
    resident.get_by_role("link", name="反映问题").click()
    resident.get_by_label("问题类别").select_option("water_pollution")
    resident.get_by_label("紧急程度").select_option("complaint")
    resident.get_by_label("问题描述").fill("河面漂浮大量垃圾，有异味")
    resident.get_by_label("纬度", exact=True).fill(str(lat))
    resident.get_by_label("经度", exact=True).fill(str(lon))
    resident.get_by_label("详细地址或位置描述").fill(PLACE)
    resident.locator("#photos").set_input_files(str(photo))
    resident.get_by_role("button", name="提交", exact=True).click()
    resident.wait_for_url(re.compile(r"/tickets/[0-9a-f-]{36}\?done=report$"))
    no_error(resident)
    ticket_url = resident.url.split("?")[0]
    facts = resident.locator("dl.facts").inner_text()
    assert "跨界联办" in facts and "苏州市生态环境局" in facts and "嘉兴市生态环境局" in facts
    assert resident.locator("img[alt='现场照片']").count() == 1
    resident.screenshot(path=str(tmp_path / "1-reported.png"), full_page=True)

    # 嘉兴 (浙江) sees it as co-handler and records its side's findings.
    partner = signed_in(PARTNER)
    partner.goto("/tickets")
    # The pressing section by its heading (the list's filter below also offers 跨界协办).
    section = partner.locator(
        "section", has=partner.get_by_role("heading", name=re.compile("^跨界协办"))
    )
    assert PLACE in section.inner_text()
    section.get_by_role("link", name=re.compile(r"^GD320500")).first.click()
    partner.get_by_label("本方排查、处置情况").fill("嘉善一侧已同步打捞，排查无排污口")
    partner.get_by_role("button", name="提交", exact=True).click()
    no_error(partner)
    assert partner.get_by_role("button", name="签收").count() == 0  # the lead drives

    # 苏州 (江苏) leads: accepts, handles, fixes with an evidence photo.
    lead = signed_in(LEAD)
    lead.goto("/tickets")
    lead.locator(
        "section", has=lead.get_by_role("heading", name=re.compile("^本部门主办"))
    ).get_by_role("link", name=re.compile(r"^GD320500")).first.click()
    assert "嘉善一侧已同步打捞" in lead.locator("ol.timeline").inner_text()
    press(lead, "签收", no_error)
    press(lead, "开始处置", no_error)
    press(lead, "办结", no_error, photo=photo, comment="已组织打捞清理", action="fix")
    assert "已办结，待核查" in state_of(lead)

    dispatcher = signed_in(DISPATCHER)
    dispatcher.goto(ticket_url)
    press(dispatcher, "核查通过", no_error)

    # 李娜 is not satisfied: it goes back to 苏州.
    resident.goto(ticket_url)
    assert "核查通过，待回访" in state_of(resident)
    press(resident, "不满意", no_error, comment="两天后又有垃圾漂来", action="unsatisfied")
    assert "不满意，重新办理" in state_of(resident)

    lead.goto(ticket_url)
    press(lead, "开始处置", no_error)
    press(lead, "办结", no_error, photo=photo, comment="加装拦污浮筒并每日巡河", action="fix")
    dispatcher.goto(ticket_url)
    press(dispatcher, "核查通过", no_error)

    resident.goto(ticket_url)
    press(resident, "满意", no_error)
    assert "已结案" in state_of(resident)
    timeline = resident.locator("ol.timeline").inner_text()
    assert timeline.count("办结") >= 2 and "不满意" in timeline and "协办意见" in timeline
    assert resident.locator("img[alt='处置后照片']").count() == 2
    resident.screenshot(path=str(tmp_path / "2-closed.png"), full_page=True)

    # The partner still sees the closed joint work order and its outcome.
    partner.goto(ticket_url)
    assert "已结案" in state_of(partner)
