"""The emergency pages and the card-use figures in a real browser against a real server
process (one node serving every jurisdiction, the demo data), at a phone's 360 px: no
page scrolls sideways; the reserve table and the batches (over a thousand rows and five
hundred batches for the whole federation) show a page of rows with a pager that keeps
the filters, their rows in Chinese (city, item, state: no catalogue codes), a row's
short fields two to a line; the card-use figures' filters stack above their fields and
page the same way."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PHONE = 360
ROWS = 50  # views.PAGE_ROWS, card views.FIGURE_ROWS
#: A page a loaded node may take long to build (the reserve table sums every lot).
SLOW = 60_000

EMERGENCY_PAGES = (
    "/emergency",
    "/emergency/reserves",
    "/emergency/reserves/lots",
    "/emergency/reserves/upload",
    "/emergency/aid",
    "/emergency/aid/new",
    "/emergency/incidents",
    "/emergency/handovers",
    "/emergency/capacity",
    "/emergency/drills",
)
#: A catalogue or enum code where a Chinese name belongs (MASK-N95, low_stock, 340100).
CODE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$|^\d{6}$")


def _phone(page: Any) -> None:
    page.set_default_navigation_timeout(SLOW)
    page.set_viewport_size({"width": PHONE, "height": 800})


def _fits(page: Any) -> None:
    page.wait_for_load_state("load")  # not a document still being replaced
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE, (page.url, width)


def _cells(page: Any, table: str, label: str) -> list[str]:
    texts: list[str] = page.locator(f"{table} tbody td[data-label='{label}']").all_inner_texts()
    return [t.strip() for t in texts]


def test_emergency_pages_fit_a_phone_and_page_long_tables(
    signed_in: Callable[[str], Any], no_error: Callable[[Any], None]
) -> None:
    hf = signed_in("emergency-340100")
    _phone(hf)
    for path in EMERGENCY_PAGES:
        hf.goto(path)
        no_error(hf)
        expect(hf.locator("h1")).to_be_visible(timeout=15_000)
        _fits(hf)

    # The reserve table: one page of rows, in Chinese, two short fields to a line.
    hf.goto("/emergency/reserves?low=1")
    rows = hf.locator("#reserve-table tbody tr")
    assert 0 < rows.count() <= ROWS
    pager = hf.locator("#reserve-table-pager")
    expect(pager).to_contain_text("第 1 /", timeout=15_000)
    for label in ("城市", "物资"):
        shown = _cells(hf, "#reserve-table", label)
        assert shown and not [t for t in shown if CODE.match(t)], (label, shown[:5])
    assert set(_cells(hf, "#reserve-table", "状态")) <= {"低于定额", "正常"}
    assert rows.first.evaluate("r => getComputedStyle(r).display") == "grid"
    first_page = _cells(hf, "#reserve-table", "物资")
    pager.get_by_role("link", name="下一页").click()
    hf.wait_for_load_state()
    assert "page=2" in hf.url and "low=1" in hf.url  # the filter is kept
    expect(hf.locator("input[name=low]")).to_be_checked()
    expect(hf.locator("#reserve-table-pager")).to_contain_text("第 2 /")
    assert _cells(hf, "#reserve-table", "物资") != first_page
    _fits(hf)

    # The batches: capped at 500 and saying so, paged, the keeper's form reachable.
    hf.goto("/emergency/reserves/lots")
    expect(hf.locator("#lots-capped")).to_contain_text("只列出前 500 个批次")
    assert 0 < hf.locator("#lots tbody tr").count() <= ROWS
    expect(hf.locator("#lots-pager")).to_contain_text("共 500 项")
    shown = _cells(hf, "#lots", "物资")
    assert shown and not [t for t in shown if CODE.match(t)], shown[:5]
    expect(hf.locator("#movement h2")).to_have_text("登记库存变动")
    _fits(hf)


def test_card_figures_fit_a_phone(
    signed_in: Callable[[str], Any], no_error: Callable[[Any], None], tmp_path: Path
) -> None:
    admin = signed_in("admin")
    _phone(admin)
    admin.goto("/card/figures")
    no_error(admin)
    _fits(admin)
    # Each filter's label above its field (the form wrapped them side by side).
    for field in ("#start", "#end", "#period", "#operator"):
        label = admin.locator(f"label[for='{field[1:]}']").bounding_box()
        box = admin.locator(field).bounding_box()
        assert label and box and label["y"] + label["height"] <= box["y"] + 1, field
    rows = admin.locator("#card-figures tbody tr")
    assert 0 < rows.count() <= ROWS
    pager = admin.locator("#figures-pager")
    expect(pager).to_contain_text("第 1 /", timeout=15_000)
    pager.get_by_role("link", name="下一页").click()
    admin.wait_for_load_state()
    assert "page=2" in admin.url and "period=day" in admin.url
    expect(admin.locator("#figures-pager")).to_contain_text("第 2 /")
    _fits(admin)
    # A backwards period: the form comes back as filled in, the message beside 结束日期,
    # and still fits a phone.
    admin.fill("#start", "2026-02-01")
    admin.fill("#end", "2026-01-01")
    admin.get_by_role("button", name="统计").click()
    admin.wait_for_load_state()
    expect(admin.locator("#end-error")).to_have_text("不能早于开始日期")
    assert admin.locator("#end").get_attribute("aria-invalid") == "true"
    assert admin.input_value("#start") == "2026-02-01"
    assert admin.locator("#figures-totals").count() == 0
    _fits(admin)
    admin.screenshot(path=str(tmp_path / "card-figures-refused-390.png"), full_page=True)
    admin.set_viewport_size({"width": 1280, "height": 900})
    expect(admin.locator("#end-error")).to_be_visible()
    admin.screenshot(path=str(tmp_path / "card-figures-refused-1280.png"), full_page=True)
