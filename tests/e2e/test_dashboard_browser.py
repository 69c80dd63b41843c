"""The dashboard in a real browser against a real server process, at desktop (1280 px)
and phone (390 px) width: a supervisor opens it from the navigation, sees the headline
figures, the heat map (scrolling inside its own box, never the page), the trend and the
rankings with their tables, changes the period, exports, and drills down to an
authority; the public open-data page lists the catalogue. No CSP violation (checked by
the fixture), no horizontal scrolling of the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tongban.dashboard.domain import Indicator

pytestmark = pytest.mark.browser

WIDE = "document.documentElement.scrollWidth <= window.innerWidth + 1"


@pytest.mark.parametrize("width", [1280, 390])
def test_a_supervisor_reads_the_dashboard_at_desktop_and_phone_width(
    node: Any, signed_in: Callable[[str], Any], width: int, new_page: Callable[[], Any]
) -> None:
    out = node.cli("dashboard", "refresh", "--settle", "0")
    assert "已统计" in out.stdout
    page = signed_in("supervisor-320000")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/")
    if width > 600:
        page.get_by_role("link", name="一体化监测").first.click()
    else:
        page.goto("/dashboard")
    page.wait_for_selector("#headlines")
    assert page.locator(".headlines li").count() == 10
    assert page.locator("#matrix svg.heatmap").count() == 1
    assert page.locator("#trend svg.bars").count() == 1
    assert "已隐藏" in page.inner_text("main")
    assert page.evaluate(WIDE), "the page scrolls sideways"
    # A text alternative of the heat map.
    page.locator("#matrix summary").click()
    assert page.locator("#matrix-table").is_visible()
    # Another period: the form keeps it.
    page.fill("#f-start", "2026-01-01")
    page.select_option("#f-grain", "month")
    page.get_by_role("button", name="查询").click()
    page.wait_for_selector("#headlines")
    assert "start=2026-01-01" in page.url and "grain=month" in page.url
    assert page.input_value("#f-start") == "2026-01-01"
    with page.expect_download() as dl:
        page.locator("#trend .exports a", has_text="XLSX").click()
    assert dl.value.suggested_filename.endswith(".xlsx")
    links = page.locator("#authority-table a")
    if links.count():
        links.first.click()
        page.wait_for_selector("#matter-table")
        assert page.evaluate(WIDE)
    # The public open-data page, signed out.
    anon = new_page()
    anon.set_viewport_size({"width": width, "height": 900})
    anon.goto("/open-data")
    assert anon.locator("#datasets tbody tr").count() == len(Indicator)  # one dataset each
    assert anon.evaluate(WIDE)
    r = anon.request.get("/api/v1/open-data/catalog.jsonld")
    assert r.ok and r.json()["@type"] == "dcat:Catalog"
