"""Corrections and results in a real browser, at desktop and phone width: the officer
names each missing material with its reason and a deadline; the resident sees the reason
first and uploads each item in its own slot; the officer decides (confirming the
irreversible step); the resident downloads the decision, whose QR opens the verify page.
Pages are screenshotted at 1280 and 390 px into the test's tmp dir."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser

MATTER = "YRD-GJJ-0002"  # 住房公积金 proof, 苏州: only the ID card is required
OFFICER = "320500-housing_fund-approver"
FORWARD_TIMEOUT = 15.0
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def no_overflow(page: Any) -> None:
    """Nothing on the page is wider than the viewport (no sideways scrolling)."""
    wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
    assert not wide, f"{page.url} overflows at {page.viewport_size}"


def shoot(page: Any, tmp_path: Path, name: str) -> None:
    for label, size in (("1280", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(size)
        no_overflow(page)
        page.screenshot(path=str(tmp_path / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def submitted_case(live_server: str, headers: dict[str, str], pdf: bytes) -> str:
    with httpx.Client(base_url=live_server, headers=headers, timeout=30) as http:
        att = http.post(
            "/api/v1/attachments",
            data={"material_code": "id_card"},
            files={"file": ("id.pdf", pdf, "application/pdf")},
        )
        assert att.status_code == 201, att.text
        r = http.post(
            "/api/v1/cases",
            json={
                "matter_code": MATTER,
                "competent_jurisdiction": "320000",
                "competent_city": "320500",
                "form_data": {"proof_purpose": "异地贷款"},
                "consent": True,
                "attachment_ids": [att.json()["id"]],
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def test_correction_then_decision_in_the_browser(
    live_server: str,
    login: Callable[[str], dict[str, str]],
    signed_in: Callable[[str], Any],
    no_error: Callable[[Any], None],
    pdf_bytes: bytes,
    tmp_path: Path,
) -> None:
    case_id = submitted_case(live_server, login("wangfang"), pdf_bytes)
    officer = signed_in(OFFICER)
    deadline = time.monotonic() + FORWARD_TIMEOUT
    while True:
        officer.goto(f"/workbench/cases/{case_id}")
        if officer.locator("form.correction-form").count():
            break
        assert time.monotonic() < deadline, "the case did not reach the workbench"
        time.sleep(0.3)
    form = officer.locator("form.correction-form")
    form.get_by_label("居民身份证", exact=True).check()
    form.get_by_label("“居民身份证”需补正的原因").fill("照片页模糊，请重新扫描")
    form.get_by_label("材料名称 1").fill("婚姻状况证明")
    form.get_by_label("原因 1").fill("配偶共同申请须提供")
    form.get_by_label("补正原因（总体说明，必填）").fill("申请材料不齐全")
    form.get_by_label(re.compile("补正期限")).fill("10")
    shoot(officer, tmp_path, "1-correction-form")
    form.get_by_role("button", name="发出补正通知").click()
    officer.wait_for_url(re.compile(r"done=request_correction"))
    no_error(officer)
    assert "待补正" in officer.locator("dl.facts").inner_text()
    assert "照片页模糊" in officer.locator("main").inner_text()

    resident = signed_in("wangfang")
    resident.goto(f"/my/cases/{case_id}")
    no_error(resident)
    main = resident.locator("main").inner_text()
    assert main.index("需要补正：申请材料不齐全") < main.index("办件编号")
    shoot(resident, tmp_path, "2-resident-correction")
    for slot in ("1. 居民身份证", "2. 婚姻状况证明"):
        path = tmp_path / f"{slot[0]}.pdf"
        path.write_bytes(pdf_bytes)
        resident.get_by_label(re.compile(re.escape(slot))).set_input_files(str(path))
    resident.get_by_role("button", name="提交补正").click()
    resident.wait_for_url(re.compile(r"done=resubmit"))
    no_error(resident)
    assert "补正材料已提交" in resident.get_by_role("status").inner_text()
    assert "补正记录" in resident.locator("main").inner_text()

    steps = [("受理", None), ("开始审查", None), ("准予办理", None), ("出具结果", "准予出具")]
    for label, result in steps:
        officer.goto(f"/workbench/cases/{case_id}")
        form = officer.locator("form.action-form").filter(
            has=officer.get_by_role("heading", name=label, exact=True)
        )
        if result:
            form.get_by_label("结果内容").fill(result)
        if label == "准予办理":
            # The browser will not send the decision unconfirmed.
            form.get_by_role("button", name=label, exact=True).click()
            assert "/act" not in officer.url and "done=" not in officer.url
            form.get_by_label(re.compile("确认作出")).check()
        form.get_by_role("button", name=label, exact=True).click()
        officer.wait_for_url(re.compile(r"done="))
        no_error(officer)
    assert "法定时限" in officer.locator("main").inner_text()
    shoot(officer, tmp_path, "3-workbench-decided")

    resident.goto(f"/my/cases/{case_id}")
    link = resident.get_by_role("link", name=re.compile("准予行政许可决定书"))
    href = link.get_attribute("href")
    assert href and href.startswith(f"/my/cases/{case_id}/documents/")
    shoot(resident, tmp_path, "4-resident-result")
    pdf = resident.request.get(href)
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    token = re.search(rb"/verify/documents/([A-Za-z0-9_-]+)", pdf.body())
    if token is None:  # the URL is in a compressed content stream: ask the server
        token = re.search(r"/verify/documents/([A-Za-z0-9_-]+)", _pdf_text(pdf.body()))
    assert token is not None
    value = token.group(1)
    visitor = signed_in("wangfang")
    visitor.context.clear_cookies()
    visitor.goto(f"/verify/documents/{value if isinstance(value, str) else value.decode()}")
    assert "核验通过" in visitor.locator("main").inner_text()
    shoot(visitor, tmp_path, "5-verify")


def _pdf_text(data: bytes) -> str:
    import io

    import pypdf

    return "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages).replace(
        "\n", ""
    )
