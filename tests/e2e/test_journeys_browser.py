"""Every journey of the platform walked in a real browser, as the people who use it would:
a resident's online case with a correction, a refused form's error summary, a window
case, the licence wallet and the verify page, evidence (the officer requests, the
resident reads the data-use log), a work order (report, then the dispatcher), the
hospital counter (and a patient without 备案: filed on the spot with consent, then
settled) and a supervisor (dashboard, audit).

Each page visited is checked at 1280 and 390 px on the same page (set_viewport_size):
axe-core must find no serious or critical violation, and nothing may scroll sideways.
A screenshot of each step at each width is kept under
`$TONGBAN_ARTEFACTS/screenshots/<journey>/<width>/<nn>-<step>.png` (default
`var/artefacts/`), which CI keeps as artefacts. All findings of a journey are reported
together at its end, so one run shows every page that needs fixing."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from axe import artefacts_dir, format_violations, horizontal_overflow, violations
from e2e._steps import fill_application
from tongban import demo

from builders import BORDER_WUJIANG_JIASHAN, TINY_PNG

pytestmark = pytest.mark.browser

WIDTHS = (1280, 390)
FORWARD_TIMEOUT = 60.0
GJJ = "YRD-GJJ-0002"  # 住房公积金 proof, 苏州: only the ID card is required
GJJ_OFFICER = "320500-housing_fund-approver"
WINDOW_MATTER = "YRD-RS-0002"  # 社会保障卡申领 (江苏, received at a 上海 window)

SignedIn = Callable[[str], Any]
NoError = Callable[[Any], None]


class Journey:
    """One journey's walk: `step(page, name)` checks the page at both widths, keeps the
    screenshots, and remembers what axe and the overflow check found."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.problems: list[str] = []
        self.root = artefacts_dir() / "screenshots" / name

    def step(self, page: Any, name: str) -> None:
        page.wait_for_load_state()
        self.count += 1
        where = f"{self.name} {self.count:02d}-{name}"
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            folder = self.root / str(width)
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / f"{self.count:02d}-{name}.png"), full_page=True)
            found = violations(page)
            if found:
                self.problems.append(f"axe on {where} ({page.url}) at {width} px:\n"
                                     + format_violations(found))  # fmt: skip
            over = horizontal_overflow(page)
            if over > 0:
                self.problems.append(f"{where} ({page.url}) scrolls sideways by {over} px at {width} px")  # fmt: skip
        page.set_viewport_size({"width": WIDTHS[0], "height": 900})

    def done(self) -> None:
        assert self.count > 0
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture
def journey(request: pytest.FixtureRequest) -> Callable[[str], Journey]:
    def make(name: str) -> Journey:
        return Journey(name)

    return make


def wait_for(page: Any, url: str, ready: Callable[[Any], bool], what: str) -> None:
    """Reload `url` until `ready(page)` holds (the embedded worker forwards cases)."""
    deadline = time.monotonic() + FORWARD_TIMEOUT
    while True:
        page.goto(url)
        if ready(page):
            return
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def api_case(live_server: str, headers: dict[str, str], pdf: bytes, **extra: Any) -> dict[str, Any]:
    """A 公积金 case submitted over the API (for journeys that start with the officer)."""
    with httpx.Client(base_url=live_server, headers=headers, timeout=30) as http:
        att = http.post(
            "/api/v1/attachments",
            data={"material_code": "id_card"},
            files={"file": ("id.pdf", pdf, "application/pdf")},
        )
        assert att.status_code == 201, att.text
        body = {
            "matter_code": GJJ,
            "competent_jurisdiction": "320000",
            "competent_city": "320500",
            "form_data": {"proof_purpose": "异地贷款"},
            "consent": True,
            "attachment_ids": [att.json()["id"]],
            **extra,
        }
        r = http.post("/api/v1/cases", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())


def act(officer: Any, label: str, no_error: NoError, result: str | None = None) -> None:
    """Press one of the workbench's action buttons (confirming irreversible ones)."""
    form = officer.locator("form.action-form").filter(
        has=officer.get_by_role("heading", name=label, exact=True)
    )
    if result:
        form.get_by_label("结果内容").fill(result)
    confirm = form.get_by_label(re.compile("确认作出"))
    if confirm.count():
        confirm.check()
    form.get_by_role("button", name=label, exact=True).click()
    officer.wait_for_url(re.compile(r"done="))
    no_error(officer)


def wangfang_id_number() -> str:
    username, _name, city, birth, seq = next(r for r in demo.RESIDENTS if r[0] == "wangfang")
    return demo._id_number(city[:4] + "02", birth, seq)


def test_resident_online_case_with_a_correction(
    journey: Callable[[str], Journey],
    signed_in: SignedIn,
    no_error: NoError,
    pdf_bytes: bytes,
    tmp_path: Path,
) -> None:
    j = journey("online-correction")
    resident = signed_in("wangfang")
    j.step(resident, "landing")
    resident.goto("/matters?q=公积金")
    j.step(resident, "catalogue")
    resident.goto(f"/matters/{GJJ}?city=320500")
    j.step(resident, "guide")
    resident.goto(f"/apply/{GJJ}")
    j.step(resident, "apply")
    resident.get_by_label("有管辖权的省（市）").select_option("320000")
    resident.get_by_label("办理城市").select_option("320500")
    resident.locator("#f_proof_purpose").select_option("异地贷款")
    pdf = tmp_path / "id.pdf"
    pdf.write_bytes(pdf_bytes)
    resident.locator("#material_id_card").set_input_files(str(pdf))
    resident.get_by_label("全程网办").check()
    resident.get_by_label("我同意为办理本事项跨地区共享和使用本人信息").check()
    resident.get_by_role("button", name="提交申请").click()
    resident.wait_for_url(re.compile(r"/my/cases/[0-9a-f-]{36}"))
    no_error(resident)
    case_url = resident.url.split("?")[0]
    case_id = case_url.rsplit("/", 1)[1]
    j.step(resident, "submitted")

    officer = signed_in(GJJ_OFFICER)
    j.step(officer, "workbench")
    wait_for(officer, f"/workbench/cases/{case_id}",
             lambda p: p.locator("form.correction-form").count() > 0,
             "the case did not reach the workbench")  # fmt: skip
    j.step(officer, "workbench-case")
    form = officer.locator("form.correction-form")
    form.get_by_label("居民身份证", exact=True).check()
    form.get_by_label("“居民身份证”需补正的原因").fill("照片页模糊，请重新扫描")
    form.get_by_label("补正原因（总体说明，必填）").fill("申请材料不齐全")
    form.get_by_label(re.compile("补正期限")).fill("10")
    form.get_by_role("button", name="发出补正通知").click()
    officer.wait_for_url(re.compile(r"done=request_correction"))
    no_error(officer)
    j.step(officer, "correction-sent")

    resident.goto(case_url)
    assert "需要补正" in resident.locator("main").inner_text()
    j.step(resident, "correction-requested")
    resident.get_by_label(re.compile(re.escape("1. 居民身份证"))).set_input_files(str(pdf))
    resident.get_by_role("button", name="提交补正").click()
    resident.wait_for_url(re.compile(r"done=resubmit"))
    no_error(resident)
    j.step(resident, "resubmitted")

    officer.goto(f"/workbench/cases/{case_id}")
    for label, result in (("受理", None), ("开始审查", None), ("准予办理", None),
                          ("出具结果", "准予出具")):  # fmt: skip
        act(officer, label, no_error, result)
    j.step(officer, "decided")
    resident.goto(case_url)
    assert resident.get_by_role("link", name=re.compile("决定书")).count() > 0
    j.step(resident, "result")
    resident.goto("/messages")
    j.step(resident, "messages")
    j.done()


def test_window_case(
    journey: Callable[[str], Journey],
    signed_in: SignedIn,
    no_error: NoError,
    live_server: str,
    login: Callable[[str], dict[str, str]],
    form_for: Callable[[dict[str, Any]], dict[str, Any]],
    pdf_bytes: bytes,
    tmp_path: Path,
) -> None:
    r = httpx.get(f"{live_server}/api/v1/matters/{WINDOW_MATTER}",
                  headers=login("wangfang"), timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    matter = r.json()
    j = journey("window")
    clerk = signed_in("clerk-310000")
    j.step(clerk, "window-list")
    clerk.goto("/window/new")
    j.step(clerk, "choose-matter")
    clerk.goto(f"/window/new/{WINDOW_MATTER}")
    j.step(clerk, "form")
    clerk.get_by_label("个人", exact=True).check()
    clerk.get_by_label("申请人姓名（名称）").fill("王芳")
    clerk.get_by_label("身份证号码 / 统一社会信用代码").fill(wangfang_id_number())
    clerk.get_by_label("已当面核验申请人身份证件").check()
    form = form_for(matter["form_schema"])
    fill_application(clerk, matter, form, pdf_bytes, tmp_path, ("320000", "320500"))
    clerk.get_by_label("异地代收代办").check()
    clerk.get_by_label("申请人已同意为办理本事项跨地区共享和使用本人信息").check()
    clerk.get_by_label("已核对申请材料原件，扫描件与原件一致").check()
    clerk.get_by_role("button", name="代收并推送").click()
    clerk.wait_for_url(re.compile(r"/window/cases/[0-9a-f-]{36}\?done=received$"))
    no_error(clerk)
    assert "已收件" in clerk.get_by_role("status").inner_text()
    j.step(clerk, "received")
    j.done()


def test_wallet_and_scan(
    journey: Callable[[str], Journey], signed_in: SignedIn, new_page: Callable[[], Any]
) -> None:
    j = journey("wallet-scan")
    holder = signed_in("wangfang")
    holder.goto("/my/licences")
    j.step(holder, "wallet")
    holder.get_by_role("link", name="机动车驾驶证").click()
    holder.wait_for_load_state()
    j.step(holder, "licence")
    holder.get_by_role("link", name="出示证照").click()
    holder.wait_for_load_state()
    j.step(holder, "present")
    holder.get_by_label("姓名").check()
    holder.get_by_label("准驾车型").check()
    holder.get_by_role("button", name="生成出示码").click()
    holder.locator(".qr svg").wait_for()
    text = holder.locator("#presentation-text").input_value()
    j.step(holder, "presentation-code")

    verifier = new_page()  # anyone, not signed in
    verifier.goto("/licences/verify")
    j.step(verifier, "verify")
    verifier.get_by_label("证照文本").fill(text)
    verifier.get_by_role("button", name="核验").click()
    verifier.locator("#result [data-valid]").first.wait_for()
    assert verifier.locator("#result [data-valid=true]").count() == 1
    j.step(verifier, "verified")
    j.done()


def test_evidence_officer_requests_resident_sees_data_use(
    journey: Callable[[str], Journey],
    signed_in: SignedIn,
    no_error: NoError,
    live_server: str,
    login: Callable[[str], dict[str, str]],
    pdf_bytes: bytes,
) -> None:
    case = api_case(live_server, login("wangfang"), pdf_bytes,
                    evidence_consent=["household", "social_insurance"])  # fmt: skip
    j = journey("evidence")
    officer = signed_in(GJJ_OFFICER)
    url = f"/workbench/cases/{case['id']}"
    wait_for(officer, url, lambda p: p.locator("form.action-form").count() > 0,
             "the case did not reach the workbench")  # fmt: skip
    act(officer, "受理", no_error)
    officer.goto(url + "#evidence")
    j.step(officer, "case-evidence-panel")
    panel = officer.locator("#evidence")
    button = panel.get_by_role("button", name=re.compile("^调取")).first
    assert button.count() == 1, panel.inner_text()
    button.click()
    officer.wait_for_url(re.compile(r"done=evidence-"))
    no_error(officer)
    assert "调取记录" in officer.locator("#evidence").inner_text()
    j.step(officer, "evidence-requested")

    resident = signed_in("wangfang")
    resident.goto("/my/data-use")
    assert case["number"] in resident.locator("main").inner_text()
    j.step(resident, "data-use")
    j.done()


def test_work_order_report_then_dispatcher(
    journey: Callable[[str], Journey], signed_in: SignedIn, no_error: NoError, tmp_path: Path
) -> None:
    photo = tmp_path / "river.png"
    photo.write_bytes(TINY_PNG)
    lat, lon = BORDER_WUJIANG_JIASHAN
    j = journey("work-order")
    resident = signed_in("lina")
    resident.goto("/tickets/report")
    j.step(resident, "report-form")
    resident.get_by_label("问题类别").select_option("water_pollution")
    resident.get_by_label("紧急程度").select_option("complaint")
    resident.get_by_label("问题描述").fill("河面漂浮大量垃圾，有异味")
    resident.get_by_label("纬度", exact=True).fill(str(lat))
    resident.get_by_label("经度", exact=True).fill(str(lon))
    resident.get_by_label("详细地址或位置描述").fill("太浦河汾湖段（吴江—嘉善交界）")
    resident.locator("#photos").set_input_files(str(photo))
    resident.get_by_role("button", name="提交", exact=True).click()
    resident.wait_for_url(re.compile(r"/tickets/[0-9a-f-]{36}\?done=report$"))
    no_error(resident)
    ticket_url = resident.url.split("?")[0]
    j.step(resident, "reported")
    resident.goto("/tickets")
    j.step(resident, "my-tickets")

    dispatcher = signed_in("dispatcher-320500")
    j.step(dispatcher, "dispatcher-list")
    dispatcher.get_by_label("问题类别").select_option("water_pollution")
    dispatcher.get_by_role("button", name="筛选").click()
    dispatcher.wait_for_url(re.compile(r"water_pollution"))
    j.step(dispatcher, "dispatcher-filtered")
    dispatcher.get_by_role("link", name=re.compile(r"^GD320500")).first.click()
    dispatcher.wait_for_url(ticket_url)
    no_error(dispatcher)
    j.step(dispatcher, "dispatcher-ticket")
    j.done()


def test_hospital_counter(journey: Callable[[str], Journey], signed_in: SignedIn) -> None:
    j = journey("hospital-counter")
    counter = signed_in("hospital-H310000001")
    assert "/medical/counter" in counter.url
    j.step(counter, "counter")
    counter.get_by_label("参保人身份证号码").fill(wangfang_id_number())
    counter.get_by_role("button", name="查询参保信息").click()
    counter.wait_for_load_state()
    j.step(counter, "eligibility")
    j.done()


def _id_number_of(username: str) -> str:
    """A demo resident's ID number (as the demo makes it: district "<city>02")."""
    _u, _name, city, birth, seq = next(r for r in demo.RESIDENTS if r[0] == username)
    return demo._id_number(city[:4] + "02", birth, seq)


def _focused_id(page: Any) -> str:
    return str(page.evaluate("document.activeElement ? document.activeElement.id : ''"))


def test_error_summary_takes_focus_and_leads_to_the_field(
    journey: Callable[[str], Journey], signed_in: SignedIn
) -> None:
    """A submission the browser lets through but the server refuses — a wrong GB 11643
    check digit and a missing material — comes back with one summary that takes focus;
    its link moves focus to the field it names."""
    j = journey("error-summary")
    resident = signed_in("wangfang")
    resident.goto("/apply/YRD-GA-0002")
    j.step(resident, "apply")
    resident.get_by_label("有管辖权的省（市）").select_option(label="江苏省")
    resident.get_by_label(re.compile("^办理城市")).select_option(label="苏州市")
    resident.get_by_label(re.compile("^证明类型")).select_option("亲属关系证明")
    resident.get_by_label(re.compile("^证明对象姓名")).fill("王小明")
    good = _id_number_of("wangfang")
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")  # the same number, check digit off
    resident.get_by_label(re.compile("^证明对象身份证号码")).fill(wrong)
    resident.get_by_label(re.compile("^证明用途")).fill("办理入学")
    resident.get_by_role("button", name="提交申请").click()
    resident.wait_for_load_state()
    summary = resident.locator(".error-summary")
    assert summary.count() == 1, resident.locator("main").inner_text()
    assert _focused_id(resident) == "error-summary-title"
    text = summary.inner_text()
    assert "校验位不正确" in text and "请上传" in text, text
    # What the user typed is kept, and the field says what is wrong with it.
    field = resident.locator("#f_subject_id_number")
    assert field.input_value() == wrong and field.get_attribute("aria-invalid") == "true"
    j.step(resident, "refused-summary")
    summary.get_by_role("link", name=re.compile("校验位")).click()
    resident.wait_for_function("document.activeElement && document.activeElement.id")
    assert _focused_id(resident) == "f_subject_id_number"
    assert resident.evaluate("location.hash") == "#f_subject_id_number"
    # The link of the missing material leads to its upload input.
    summary.get_by_role("link", name=re.compile("请上传")).first.click()
    assert _focused_id(resident).startswith("material_")
    j.step(resident, "field-focused")
    j.done()


def test_hospital_counter_files_on_the_spot_then_settles(
    journey: Callable[[str], Journey], signed_in: SignedIn, no_error: NoError
) -> None:
    """陈杰 (insured in 杭州, filed for 苏州 only) at a 上海 hospital: not settleable
    directly; the counter offers filing on his behalf, files it with his consent, and
    the visit is then registered, priced from the catalogue and settled."""
    j = journey("hospital-filing")
    counter = signed_in("hospital-H310000001")
    counter.on("dialog", lambda d: d.accept())  # irreversible steps ask first
    counter.get_by_label("参保人身份证号码").fill(_id_number_of("chenjie"))
    counter.get_by_role("button", name="查询参保信息").click()
    counter.wait_for_load_state()
    elig = counter.locator("section[aria-labelledby=elig-title]")
    assert "不可直接结算" in elig.inner_text(), elig.inner_text()
    assert counter.get_by_role("button", name="代办备案").count() == 1
    assert counter.get_by_role("button", name="登记就诊").count() == 0
    j.step(counter, "no-filing-offer")
    consent = counter.get_by_label(re.compile("参保人已知悉并同意"))
    counter.get_by_role("button", name="代办备案").click()  # without consent: the browser stops it
    assert not consent.is_checked() and counter.get_by_role("button", name="代办备案").count() == 1
    consent.check()
    counter.get_by_role("button", name="代办备案").click()
    counter.wait_for_load_state()
    no_error(counter)
    elig = counter.locator("section[aria-labelledby=elig-title]")
    assert "可直接结算" in elig.inner_text() and "代办" in elig.inner_text(), elig.inner_text()
    j.step(counter, "filed")
    counter.get_by_label("科室").fill("内科")
    counter.get_by_label("诊断").fill("急性上呼吸道感染")
    counter.get_by_role("button", name="登记就诊").click()
    counter.wait_for_url(re.compile(r"/medical/counter/visits/[0-9a-f-]{36}"))
    no_error(counter)
    assert "急性上呼吸道感染" in counter.locator("main").inner_text()
    counter.get_by_label("第 1 行项目编码").fill("D0001")
    counter.get_by_label("第 1 行数量").fill("2")
    counter.get_by_role("button", name="保存费用明细").click()
    counter.wait_for_load_state()
    no_error(counter)
    assert "阿莫西林胶囊" in counter.locator("main").inner_text()
    j.step(counter, "visit-items")
    counter.get_by_role("button", name="预结算").click()
    counter.wait_for_load_state()
    no_error(counter)
    j.step(counter, "presettled")
    counter.get_by_role("button", name="确认结算").click()
    counter.wait_for_url(re.compile(r"/medical/counter/settlements/"))
    no_error(counter)
    receipt = counter.locator("main").inner_text()
    assert "异地就医门诊结算单" in receipt and "阿莫西林胶囊" in receipt, receipt
    j.step(counter, "settled")
    j.done()


def test_supervisor_dashboard_and_audit(
    journey: Callable[[str], Journey], signed_in: SignedIn
) -> None:
    j = journey("supervisor")
    sup = signed_in("supervisor-320000")
    j.step(sup, "landing")
    sup.goto("/dashboard")
    j.step(sup, "dashboard")
    sup.goto("/audit")
    j.step(sup, "audit")
    sup.goto("/audit?kind=message.sent")
    j.step(sup, "audit-filtered")
    j.done()
