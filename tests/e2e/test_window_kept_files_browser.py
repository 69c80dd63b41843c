"""The window keeps chosen files across a refused form, in a real browser at desktop
(1280 px) and phone (390 px) width: the 上海 clerk chooses the material, types a wrong
ID number, and the page that comes back says the file is kept (已保留) under its
material; with the number corrected the clerk submits without choosing the file
again, and the case lists it."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e._steps import fill_application
from tongban import demo

pytestmark = pytest.mark.browser

MATTER = "YRD-RS-0002"  # 社会保障卡申领: a city-level 江苏 matter a window elsewhere receives
JURISDICTION, CITY = "320000", "320500"
#: Where the screenshots go besides the test's tmp dir (to look at them).
SHOTS = Path(os.environ.get("TONGBAN_SHOTS", "/tmp/tongban-shots"))


def wangfang_id_number() -> str:
    username, _name, city, birth, seq = next(r for r in demo.RESIDENTS if r[0] == "wangfang")
    return demo._id_number(city[:4] + "02", birth, seq)


@pytest.fixture(scope="module")
def matter(live_server: str, login: Callable[[str], dict[str, str]]) -> dict[str, Any]:
    r = httpx.get(f"{live_server}/api/v1/matters/{MATTER}", headers=login("wangfang"), timeout=30)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


@pytest.mark.parametrize("width", [1280, 390])
def test_a_refused_window_form_keeps_the_chosen_file(
    width: int,
    signed_in: Callable[[str], Any],
    no_error: Callable[[Any], None],
    matter: dict[str, Any],
    form_for: Callable[[dict[str, Any]], dict[str, Any]],
    pdf_bytes: bytes,
    tmp_path: Path,
) -> None:
    clerk = signed_in("clerk-310000")
    clerk.set_viewport_size({"width": width, "height": 900})
    clerk.goto(f"/window/new/{MATTER}")
    good = wangfang_id_number()
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")  # its check digit changed
    clerk.get_by_label("个人", exact=True).check()
    clerk.get_by_label("申请人姓名（名称）").fill("王芳")
    clerk.get_by_label("身份证号码 / 统一社会信用代码").fill(wrong)
    clerk.get_by_label("已当面核验申请人身份证件").check()
    required = [m for m in matter["materials"] if m["required"]]
    assert required, "the matter has no required material"
    form = form_for(matter["form_schema"])
    where = (JURISDICTION, CITY)
    fill_application(clerk, matter, form, pdf_bytes, tmp_path, where, "扫描件-{code}.pdf")
    clerk.get_by_label("异地代收代办").check()
    clerk.get_by_label("申请人已同意为办理本事项跨地区共享和使用本人信息").check()
    clerk.get_by_label("已核对申请材料原件，扫描件与原件一致").check()
    clerk.get_by_role("button", name="代收并推送").click()
    clerk.wait_for_load_state()

    # Refused: the summary names the ID number, and each file is kept under its material.
    assert "/window/new/" in clerk.url
    assert clerk.locator("#applicant_identifier-error").is_visible()
    for m in required:
        kept = clerk.locator(".material", has=clerk.locator(f"#material_{m['code']}"))
        assert f"已保留：扫描件-{m['code']}.pdf" in kept.locator(".kept-file").inner_text()
    assert clerk.locator("#kept-note").is_visible()
    overflow = clerk.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not overflow, "the page overflows horizontally"
    SHOTS.mkdir(parents=True, exist_ok=True)
    for target in (tmp_path, SHOTS):
        clerk.screenshot(path=str(target / f"window-kept-{width}.png"), full_page=True)

    # Corrected, submitted without choosing the files again: the case has them.
    clerk.get_by_label("身份证号码 / 统一社会信用代码").fill(good)
    clerk.get_by_role("button", name="代收并推送").click()
    clerk.wait_for_url(re.compile(r"/window/cases/[0-9a-f-]{36}\?done=received$"))
    no_error(clerk)
    files = clerk.locator("ul.files").inner_text()
    for m in required:
        assert f"扫描件-{m['code']}.pdf" in files
    clerk.screenshot(path=str(SHOTS / f"window-kept-done-{width}.png"), full_page=True)
