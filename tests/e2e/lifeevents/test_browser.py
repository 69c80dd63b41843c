"""The newborn bundle in a real browser against a real server process (one node, its
embedded worker delivering the messages): 王芳 fills in the merged form once and submits
once; the 出生医学证明 case reaches 上海's health commission; when its officer delivers it,
the follow page shows the step done with its e-licence, and 出生登记 started at 南京's
public security bureau (the father's 户籍地) and 预防接种 at 上海, by themselves."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser

FIELDS = {
    "child_name": "张小宝",
    "birth_date": "2026-11-20",
    "birth_hospital": "上海市第一妇婴保健院",
    "mother_name": "王芳",
    "mother_id_number": "340102199003071283",
    "father_name": "张伟",
    "hukou_address": "江苏省南京市玄武区中山路1号",
    "residence_address": "上海市浦东新区世纪大道100号",
}
CHOICES = {
    "child_sex": "男",
    "birth_city": "310000",
    "mother_hukou_city": "340100",
    "father_hukou_city": "320100",
    "hukou_follows": "随父亲落户",
    "declarant_relation": "母亲",
    "residence_city": "310000",
    "ssc_bank": "中国银行",
    "ssc_pickup": "网点领取",
}


def _until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_one_submission_and_the_next_steps_start_by_themselves(
    live_server: str,
    signed_in: Callable[[str], Any],
    login: Callable[[str], dict[str, str]],
    no_error: Callable[[Any], None],
    pdf_bytes: bytes,
    tmp_path: Path,
) -> None:
    page = signed_in("wangfang")
    page.goto("/lifeevents")
    page.locator("#newborn").get_by_role("link", name="在线申请").click()
    assert page.get_by_role("heading", name="新生儿出生“一件事”").is_visible()
    for name, value in FIELDS.items():
        page.fill(f"#f_{name}", value)
    for name, value in CHOICES.items():
        page.select_option(f"#f_{name}", value)
    pdf = tmp_path / "material.pdf"
    pdf.write_bytes(pdf_bytes)
    for upload in page.locator("input[type=file]").all():
        upload.set_input_files(str(pdf))
    page.get_by_label("我同意为办理本“一件事”所含各事项").check()
    page.get_by_role("button", name="一次提交").click()
    page.wait_for_url("**/my/lifeevents/*")
    no_error(page)
    first = page.locator("#step-birth_certificate")
    assert "上海市卫生健康委员会" in first.inner_text()
    assert "等待" in page.locator("#step-hukou").inner_text()
    bundle_id = page.url.rsplit("/", 1)[1]

    # 上海's officer takes the 出生医学证明 case to delivery (once the worker forwarded it).
    with httpx.Client(base_url=live_server, timeout=30) as http:
        bundle = http.get(f"/api/v1/lifeevents/{bundle_id}", headers=login("wangfang")).json()
        case_id = bundle["steps"][0]["case"]["id"]
        officer = login("310000-health-approver")
        _until(
            lambda: (
                http.post(
                    f"/api/v1/cases/{case_id}/actions", json={"action": "accept"}, headers=officer
                ).status_code
                == 200
            ),
            "the case to reach 上海's health commission",
        )
        for action in ("start_review", "approve", "issue_result", "deliver"):
            r = http.post(
                f"/api/v1/cases/{case_id}/actions",
                json={"action": action, "comment": "符合条件"},
                headers=officer,
            )
            assert r.status_code == 200, r.text

    def next_steps_started() -> bool:
        page.reload()
        return "南京市公安局" in page.locator("#step-hukou").inner_text()

    _until(next_steps_started, "出生登记 to start in 南京")
    assert "已办结" in first.inner_text()
    assert first.locator("a[href^='/my/licences/']").count() == 1  # the 出生医学证明
    assert "上海市卫生健康委员会" in page.locator("#step-vaccination").inner_text()
    assert "等待" in page.locator("#step-medical_insurance").inner_text()
    no_error(page)
