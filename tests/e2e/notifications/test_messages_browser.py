"""The message centre in a real browser against a real server process: 王芳 applies
online for a 苏州 matter; when 苏州's officer accepts it, the header shows her an unread
message; the inbox reads well at 1280 and 390 px (no horizontal overflow), opening the
message leads to the case and clears the count, and the settings form checks a phone."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser

MATTER = "YRD-YB-0001"  # 异地就医登记备案, 苏州 (全程网办)
JURISDICTION, CITY = "320000", "320500"


def _until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _no_overflow(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    client = page.evaluate("document.documentElement.clientWidth")
    assert width <= client, f"the page overflows horizontally: {width} > {client}"


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
    page.get_by_label("有管辖权的省（市）").select_option(JURISDICTION)
    page.get_by_label("办理城市").select_option(CITY)
    schema = matter["form_schema"]
    for name, value in form_for(schema).items():
        field = page.locator(f"#f_{name}")
        prop = schema["properties"][name]
        if prop.get("enum"):
            field.select_option(str(value))
        elif prop.get("type") == "boolean":
            field.set_checked(bool(value))
        else:
            field.fill(str(value))
    for m in matter["materials"]:
        if m["required"]:
            path = tmp_path / f"{m['code']}.pdf"
            path.write_bytes(pdf_bytes)
            page.locator(f"#material_{m['code']}").set_input_files(str(path))
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
    _until(
        lambda: (
            http.post(
                f"/api/v1/cases/{case_id}/actions", json={"action": "accept"}, headers=officer
            ).status_code
            == 200
        ),
        "the case to reach 苏州's authority",
    )

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
    _no_overflow(page)
    page.screenshot(path=str(tmp_path / "inbox-1280.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    _no_overflow(page)
    page.screenshot(path=str(tmp_path / "inbox-390.png"), full_page=True)

    row.get_by_role("link", name="您的办件已受理").click()
    page.wait_for_url(f"**/my/cases/{case_id}")
    no_error(page)
    page.goto("/messages?unread=true")
    assert "您的办件已受理" not in page.inner_text("main")

    page.goto("/messages/preferences")
    _no_overflow(page)
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
