"""A work-order list in a real browser at desktop and phone width: 苏州's 12345
dispatcher filters the list, pages forward with the filters kept, and finds the empty
message when nothing matches; no page overflows horizontally at 390 px."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from builders import INSIDE_SUZHOU

pytestmark = pytest.mark.browser

DISPATCHER = "dispatcher-320500"
RESIDENT = "lina"  # 李娜, 苏州


def _report(http: httpx.Client, password: str, n: int) -> None:
    r = http.post("/api/v1/auth/token", data={"username": RESIDENT, "password": password})
    h = {"Authorization": f"Bearer {r.json()['access_token']}"}
    lat, lon = INSIDE_SUZHOU
    for i in range(n):
        body = {
            "category_code": "road_damage", "urgency": "complaint", "lat": lat + i / 1000,
            "lon": lon, "description": f"路面坑洞 {i}", "address": f"人民路 {i} 号",
            "allow_duplicate": True,
        }  # fmt: skip
        assert http.post("/api/v1/tickets", json=body, headers=h).status_code == 201


@pytest.mark.parametrize("width", [1280, 390])
def test_dispatcher_filters_and_pages_the_work_orders(
    width: int,
    signed_in: Callable[[str], Any],
    no_error: Callable[[Any], None],
    http: httpx.Client,
    demo_password: str,
    tmp_path: Path,
) -> None:
    _report(http, demo_password, 3)
    page = signed_in(DISPATCHER)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/tickets?page_size=2")
    no_error(page)
    page.get_by_label("问题类别").select_option("road_damage")
    page.get_by_role("button", name="筛选", exact=True).click()
    page.wait_for_load_state()
    assert "category=road_damage" in page.url
    page.goto(page.url.replace("/tickets?", "/tickets?page_size=2&"))
    page.screenshot(path=str(tmp_path / f"tickets-{width}-first.png"), full_page=True)
    page.get_by_role("link", name="下一页").click()
    page.wait_for_load_state()
    assert "category=road_damage" in page.url and "cursor=" in page.url
    assert page.get_by_role("link", name="回到第一页").count() == 1
    page.screenshot(path=str(tmp_path / f"tickets-{width}-next.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow}px wider than the window at {width}px"
    page.goto("/tickets?q=不存在的地址")
    assert "没有符合筛选条件的工单" in page.locator("#list").inner_text()
