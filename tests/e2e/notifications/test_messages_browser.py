"""The message centre in a real browser against a real server process: 王芳 applies
online for a 苏州 matter; when 苏州's officer accepts it, the header shows her an unread
message; the inbox reads well at 1280 and 390 px (no horizontal overflow), opening the
message leads to the case and clears the count, and the settings form checks a phone."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e._steps import accept_when_forwarded, fill_application, no_overflow

pytestmark = pytest.mark.browser

MATTER = "YRD-YB-0001"  # 异地就医登记备案, 苏州 (全程网办)
JURISDICTION, CITY = "320000", "320500"


def test_an_acceptance_reaches_the_header_and_the_inbox(
    live_server: str,
    signed_in: Callable[[str], Any],
    login: Callable[[str], dict[str, str]],
    no_error: Callable[[Any], None],
    form_for: Callable[[dict[str, Any]], dict[str, Any]],
    pdf_bytes: bytes,
    tmp_path: Path,
) -> None:
    http = httpx.Client(base_url=live_server, timeout=30)
    matter = http.get(f"/api/v1/matters/{MATTER}", headers=login("wangfang")).json()
    page = signed_in("wangfang")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/apply/{MATTER}")
    fill_application(
        page, matter, form_for(matter["form_schema"]), pdf_bytes, tmp_path, (JURISDICTION, CITY)
    )
    page.get_by_label("全程网办").check()
    page.get_by_label("我同意为办理本事项跨地区共享和使用本人信息").check()
    page.get_by_role("button", name="提交申请").click()
    page.wait_for_url(re.compile(r"/my/cases/[0-9a-f-]{36}$"))
    no_error(page)
    case_id = page.url.rsplit("/", 1)[1]
    before = page.locator("header.site").get_by_role("link", name=re.compile("^消息")).inner_text()

    case = http.get(f"/api/v1/cases/{case_id}", headers=login("wangfang")).json()
    authorities = http.get("/api/v1/authorities", params={"jurisdiction": JURISDICTION}).json()
    code = next(a["code"] for a in authorities if a["id"] == case["authority_id"])
    officer = login(f"{code}-approver")
    accept_when_forwarded(http, case_id, officer, "苏州's authority")

    page.goto("/my/cases")
    link = page.locator("header.site").get_by_role("link", name=re.compile("^消息"))
    after = link.inner_text()
    assert re.search(r"\d+", after) and after != before, (before, after)
    link.click()
    page.wait_for_url("**/messages")
    no_error(page)
    assert page.get_by_role("heading", name="消息中心").is_visible()
    row = page.locator("table.messages tbody tr").filter(has_text="您的办件已受理").first
    assert case["number"] in row.inner_text() and "未读" in row.inner_text()
    no_overflow(page)
    page.screenshot(path=str(tmp_path / "inbox-1280.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    no_overflow(page)
    page.screenshot(path=str(tmp_path / "inbox-390.png"), full_page=True)

    row.get_by_role("link", name="您的办件已受理").click()
    page.wait_for_url(f"**/my/cases/{case_id}")
    no_error(page)
    page.goto("/messages?unread=true")
    assert "您的办件已受理" not in page.inner_text("main")

    page.goto("/messages/preferences")
    no_overflow(page)
    page.get_by_label("手机号码").fill("12345")
    page.get_by_label("短信").check()
    page.get_by_role("button", name="保存").click()
    assert "请输入 11 位手机号码" in page.locator(".field-error").inner_text()
    page.screenshot(path=str(tmp_path / "preferences-error-390.png"), full_page=True)
    page.get_by_label("手机号码").fill("13800138000")
    page.get_by_role("button", name="保存").click()
    page.wait_for_url("**/messages/preferences?saved=1")
    no_error(page)
    assert page.get_by_label("短信").is_checked()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(tmp_path / "preferences-1280.png"), full_page=True)
    http.close()
