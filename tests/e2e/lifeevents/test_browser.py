"""The newborn bundle in a real browser against a real server process (one node, its
embedded worker delivering the messages): 王芳 fills in the merged form once and submits
once; the 出生医学证明 case reaches 上海's health commission; when its officer delivers it,
the follow page shows the step done with its e-licence, and 出生登记 started at 南京's
public security bureau (the father's 户籍地) and 预防接种 at 上海, by themselves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e._steps import deliver_when_forwarded, submit_newborn, until

pytestmark = pytest.mark.browser


def test_one_submission_and_the_next_steps_start_by_themselves(
    live_server: str,
    signed_in: Callable[[str], Any],
    login: Callable[[str], dict[str, str]],
    no_error: Callable[[Any], None],
    pdf_bytes: bytes,
    tmp_path: Path,
) -> None:
    page = signed_in("wangfang")
    bundle_id = submit_newborn(page, pdf_bytes, tmp_path)
    no_error(page)
    first = page.locator("#step-birth_certificate")
    assert "上海市卫生健康委员会" in first.inner_text()
    assert "等待" in page.locator("#step-hukou").inner_text()

    # 上海's officer takes the 出生医学证明 case to delivery (once the worker forwarded it).
    with httpx.Client(base_url=live_server, timeout=30) as http:
        bundle = http.get(f"/api/v1/lifeevents/{bundle_id}", headers=login("wangfang")).json()
        case_id = bundle["steps"][0]["case"]["id"]
        officer = login("310000-health-approver")
        deliver_when_forwarded(http, case_id, officer, "上海's health commission")

    def next_steps_started() -> bool:
        page.reload()
        return "南京市公安局" in page.locator("#step-hukou").inner_text()

    until(next_steps_started, "出生登记 to start in 南京")
    assert "已办结" in first.inner_text()
    assert first.locator("a[href^='/my/licences/']").count() == 1  # the 出生医学证明
    assert "上海市卫生健康委员会" in page.locator("#step-vaccination").inner_text()
    assert "等待" in page.locator("#step-medical_insurance").inner_text()
    no_error(page)
