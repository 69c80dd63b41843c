"""Incidents and hand-overs in a real browser against a real server process (one node
serving every jurisdiction, the demo data), at 1280 and 390 px wide: 合肥's coordinator
opens an incident spanning 苏州, gives 苏州 a task (it becomes a work order, shown with its
state), adds to the timeline, and hands a close contact over to 苏州; 苏州's coordinator
sees it 接收中 with no follow-up form, accepts, and once the transfer is committed may
act on it while 合肥 no longer may. No page scrolls sideways on a phone."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

WIDTHS = (1280, 390)


def _fits(page: Any, width: int) -> None:
    page.wait_for_load_state("load")  # not a document still being replaced
    page.set_viewport_size({"width": width, "height": 900})
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width, (page.url, width, overflow)


def _shots(page: Any, tmp_path: Path, name: str) -> None:
    for width in WIDTHS:
        _fits(page, width)
        page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)


def test_an_incident_and_a_hand_over_through_the_pages(
    signed_in: Callable[[str], Any], no_error: Callable[[Any], None], tmp_path: Path
) -> None:
    hf = signed_in("emergency-340100")
    hf.goto("/emergency/incidents")
    _shots(hf, tmp_path, "board-empty")
    hf.get_by_label("事件名称").fill("合肥苏州关联聚集性疫情")
    hf.get_by_label("事件类型").select_option("epidemic")
    hf.locator("input[name=cities][value='320500']").check()
    hf.get_by_label("事件概况").fill("合肥报告聚集性疫情，密接人员涉及苏州")
    hf.get_by_role("button", name="启动响应").click()
    no_error(hf)
    assert "事件已启动响应" in hf.locator("[role=status]").inner_text()
    assert hf.locator("#incident-state").inner_text() == "响应中"

    hf.get_by_label("任务城市").select_option("320500")
    hf.get_by_label("工单类别").select_option("sanitation")
    hf.get_by_label("任务内容").fill("姑苏区涉疫小区环境消杀")
    hf.get_by_role("button", name="下达任务").click()
    no_error(hf)
    tasks = hf.locator("#tasks table").inner_text()
    assert "苏州" in tasks and "已派单" in tasks  # the work order and its state
    hf.get_by_label("添加记录").fill("已排查密接 12 人，其中 1 人已前往苏州")
    hf.get_by_role("button", name="添加记录").click()
    no_error(hf)
    timeline = hf.locator("#timeline ol").inner_text()
    assert "启动响应" in timeline and "下达任务" in timeline and "已排查密接 12 人" in timeline
    _shots(hf, tmp_path, "incident")

    hf.goto("/emergency/handovers")
    hf.get_by_label("接收城市（属地）").select_option("320500")
    hf.get_by_label("移交目的").select_option("close_contact")
    hf.get_by_label("姓名").fill("王小明")
    hf.get_by_label("身份证号").fill("340104199001011234")
    hf.get_by_label("联系电话").fill("13900000000")
    hf.get_by_label("末次接触日期").fill("2026-11-27")
    hf.get_by_label("目的地住址").fill("苏州市姑苏区人民路 1 号")
    hf.get_by_label("收治医院").fill("不应发送")
    hf.get_by_label("移交事由").fill("密接人员已前往苏州，请属地落实管控")
    hf.get_by_role("button", name="发起移交").click()
    no_error(hf)
    url = hf.url
    assert "/emergency/handovers/" in url
    subject = hf.locator("#subject").inner_text()
    assert "王小明" in subject and "收治医院" not in subject  # only the purpose's fields
    _shots(hf, tmp_path, "handover-offered")

    sz = signed_in("emergency-320500")
    sz.goto(url)
    status = sz.locator("#status-here")
    assert status.inner_text().startswith("接收中") or "已接收" in status.inner_text()
    assert sz.locator("#follow-form").count() == 0  # not the owner yet
    sz.get_by_role("button", name="接收", exact=True).click()
    no_error(sz)
    # The worker commits the transfer on the sender's record and tells the receiver.
    deadline = time.monotonic() + 60  # generous: CI runs two workers on two cores
    while time.monotonic() < deadline:
        sz.goto(url)
        if sz.locator("#status-here").inner_text() == "已接收，由本辖区负责":
            break
        sz.wait_for_timeout(500)
    assert sz.locator("#status-here").inner_text() == "已接收，由本辖区负责"
    sz.get_by_label("随访、管控情况").fill("已落实居家隔离")
    sz.get_by_role("button", name="保存").click()
    no_error(sz)
    _shots(sz, tmp_path, "handover-received")

    hf.goto(url)
    assert hf.locator("#owner").inner_text().startswith("江苏省")
    assert hf.locator("#withdraw-form").count() == 0
    hf.goto("/emergency/incidents")
    _shots(hf, tmp_path, "board")
