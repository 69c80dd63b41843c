"""The cross-jurisdiction walk in a real browser: 王芳, a resident of 合肥 (安徽), hands in
an application for a 苏州 (江苏) matter at a window in 上海; the competent officer in 苏州
handles it on the workbench; 王芳 follows it under 我的办件 and rates it. And the short
way: 王芳 applies online herself."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e import _steps
from tongban import demo

pytestmark = pytest.mark.browser

#: A city-level 江苏 matter that a window elsewhere may receive (异地代收代办).
WINDOW_MATTER = "YRD-RS-0002"  # 社会保障卡申领
#: A city-level 江苏 matter a resident applies for online (全程网办).
ONLINE_MATTER = "YRD-YB-0001"  # 异地就医登记备案
JURISDICTION, CITY = "320000", "320500"
FORWARD_TIMEOUT = 60.0

SignedIn = Callable[[str], Any]
NoError = Callable[[Any], None]
Matters = dict[str, dict[str, Any]]


def wangfang_id_number() -> str:
    """王芳's ID number, built as the demo federation builds it."""
    username, _name, city, birth, seq = next(r for r in demo.RESIDENTS if r[0] == "wangfang")
    return demo._id_number(city[:4] + "02", birth, seq)


@pytest.fixture(scope="module")
def matters(live_server: str, login: Callable[[str], dict[str, str]]) -> Matters:
    headers = login("wangfang")
    out = {}
    for code in (WINDOW_MATTER, ONLINE_MATTER):
        r = httpx.get(f"{live_server}/api/v1/matters/{code}", headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        out[code] = r.json()
    return out


Fill = Callable[[Any, dict[str, Any]], None]


@pytest.fixture
def fill_application(
    form_for: Callable[[dict[str, Any]], dict[str, Any]], pdf_bytes: bytes, tmp_path: Path
) -> Fill:
    """`fill_application(page, matter)`: the parts shared by /apply and /window/new:
    where, the form, the materials."""

    def fill(page: Any, matter: dict[str, Any]) -> None:
        values = form_for(matter["form_schema"])
        _steps.fill_application(page, matter, values, pdf_bytes, tmp_path, (JURISDICTION, CITY))

    return fill


def test_window_in_shanghai_officer_in_suzhou_resident_rates(
    signed_in: SignedIn, no_error: NoError, matters: Matters, fill_application: Fill, tmp_path: Path
) -> None:
    matter = matters[WINDOW_MATTER]
    assert "proxy" in matter["modes"] and matter["authority_level"] == "city"

    # 上海 window: the clerk receives 王芳's application for a 苏州 matter.
    clerk = signed_in("clerk-310000")
    clerk.goto(f"/window/new/{WINDOW_MATTER}")
    clerk.get_by_label("个人", exact=True).check()
    clerk.get_by_label("申请人姓名（名称）").fill("王芳")
    clerk.get_by_label("身份证号码 / 统一社会信用代码").fill(wangfang_id_number())
    clerk.get_by_label("已当面核验申请人身份证件").check()
    fill_application(clerk, matter)
    clerk.get_by_label("异地代收代办").check()
    clerk.get_by_label("申请人已同意为办理本事项跨地区共享和使用本人信息").check()
    clerk.get_by_label("已核对申请材料原件，扫描件与原件一致").check()
    clerk.get_by_role("button", name="代收并推送").click()
    clerk.wait_for_url(re.compile(r"/window/cases/[0-9a-f-]{36}\?done=received$"))
    assert "已收件" in clerk.get_by_role("status").inner_text()
    no_error(clerk)
    number = clerk.locator("dl.facts dt:text-is('办件编号') + dd").inner_text().strip()
    assert number, "the window page shows no case number"
    assert "异地代收代办" in clerk.locator("dl.facts").inner_text()
    clerk.screenshot(path=str(tmp_path / "1-window.png"), full_page=True)

    # 苏州: the competent officer finds it on the workbench once the worker forwarded it.
    officer = signed_in(f"{CITY}-{matter['authority_type']}-approver")
    deadline = time.monotonic() + FORWARD_TIMEOUT
    while True:
        officer.goto("/workbench")
        link = officer.get_by_role("link", name=number, exact=True)
        if link.count():
            break
        assert time.monotonic() < deadline, f"{number} not on the workbench in {FORWARD_TIMEOUT} s"
        time.sleep(0.3)
    link.click()
    officer.wait_for_url(re.compile(r"/workbench/cases/"))
    assert "王芳" in officer.locator("dl.facts").inner_text()
    steps = [
        ("受理", None),
        ("开始审查", None),
        ("准予办理", None),
        ("出具结果", "准予办理，社会保障卡已制卡"),
        ("送达", None),
    ]
    for label, result in steps:
        form = officer.locator("form.action-form").filter(
            has=officer.get_by_role("heading", name=label, exact=True)
        )
        if result:
            form.get_by_label("结果内容").fill(result)
        if label == "准予办理":  # an irreversible decision is confirmed first
            form.get_by_label(re.compile("确认作出")).check()
        form.get_by_role("button", name=label, exact=True).click()
        officer.wait_for_load_state()
        no_error(officer)
        assert officer.get_by_role("status").inner_text().strip() == f"已{label}。"
    assert "已送达" in officer.locator("dl.facts").inner_text()
    officer.screenshot(path=str(tmp_path / "2-workbench.png"), full_page=True)

    # 合肥: 王芳 sees the case under 我的办件, follows its timeline and rates it.
    resident = signed_in("wangfang")
    resident.goto("/my/cases")
    resident.get_by_role("link", name=number, exact=True).click()
    resident.wait_for_url(re.compile(r"/my/cases/[0-9a-f-]{36}$"))
    timeline = resident.locator("ol.timeline").inner_text()
    for entry in ("提交申请", "推送至主管部门", "受理", "开始审查", "准予办理", "出具结果", "送达"):
        assert entry in timeline, (entry, timeline)
    assert "准予办理，社会保障卡已制卡" in resident.locator("p.result").inner_text()
    resident.get_by_label("非常满意").check()
    resident.get_by_label("评价内容").fill("在上海窗口就办成了苏州的事，非常方便")
    resident.get_by_role("button", name="提交评价").click()
    resident.wait_for_url(re.compile(r"done=rate"))
    no_error(resident)
    assert "已评价" in resident.locator("dl.facts").inner_text()
    assert "感谢您的评价" in resident.get_by_role("status").inner_text()
    assert "非常满意" in resident.locator("main").inner_text()
    resident.screenshot(path=str(tmp_path / "3-rated.png"), full_page=True)
    assert (tmp_path / "3-rated.png").stat().st_size > 0


def test_resident_applies_online_for_a_jiangsu_matter(
    signed_in: SignedIn, no_error: NoError, matters: Matters, fill_application: Fill, tmp_path: Path
) -> None:
    matter = matters[ONLINE_MATTER]
    page = signed_in("wangfang")
    page.goto(f"/apply/{ONLINE_MATTER}")
    assert matter["name"] in page.get_by_role("heading", level=1).inner_text()
    fill_application(page, matter)
    page.get_by_label("全程网办").check()
    page.get_by_label("我同意为办理本事项跨地区共享和使用本人信息").check()
    page.get_by_role("button", name="提交申请").click()
    page.wait_for_url(re.compile(r"/my/cases/[0-9a-f-]{36}$"))
    no_error(page)
    facts = page.locator("dl.facts").inner_text()
    assert "全程网办" in facts and "网上申请" in facts
    assert "苏州" in facts  # the competent authority is 苏州's
    assert "提交申请" in page.locator("ol.timeline").inner_text()
    page.screenshot(path=str(tmp_path / "applied.png"), full_page=True)
    assert (tmp_path / "applied.png").stat().st_size > 0
