"""Corrections and results in a real browser, at desktop and phone width: the officer
names each missing material with its reason and a deadline; the resident sees the reason
first and uploads each item in its own slot; the officer decides (confirming the
irreversible step); the resident downloads the decision, whose QR opens the verify page.
Pages are screenshotted at 1280 and 390 px into the test's tmp dir."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from e2e._steps import action_form, open_when_forwarded, shoot, step, submitted_case

pytestmark = pytest.mark.browser

OFFICER = "320500-housing_fund-approver"


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
    open_when_forwarded(officer, case_id, lambda p: p.locator("form.correction-form").count())
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

    step(officer, case_id, "受理")
    no_error(officer)
    step(officer, case_id, "开始审查")
    no_error(officer)
    # The browser will not send the decision unconfirmed.
    officer.goto(f"/workbench/cases/{case_id}")
    action_form(officer, "准予办理").get_by_role("button", name="准予办理", exact=True).click()
    assert "/act" not in officer.url and "done=" not in officer.url
    step(officer, case_id, "准予办理", confirm="1")
    no_error(officer)
    step(officer, case_id, "出具结果", 结果内容="准予出具")
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
