"""Steps the browser tests share: waiting for what the worker does, looking at a page at
desktop and phone width, a resident's application (over the API or filled in on
/apply), an officer's steps on the workbench (in the browser or over the API), and the
newborn "一件事" form. Signing in is the `signed_in` / `login` fixtures of conftest.py."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

#: A city-level 苏州 matter whose only required material is the ID card (住房公积金 proof).
CASE_MATTER = "YRD-GJJ-0002"
#: Seconds allowed for the worker to forward a case to the competent authority (generous:
#: CI runs two test workers on two cores beside the server and Chromium).
FORWARD_TIMEOUT = 60.0
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

#: The newborn bundle's text fields and choices, as 王芳 (the mother) fills them in.
NEWBORN_FIELDS = {
    "child_name": "张小宝",
    "birth_date": "2026-11-20",
    "birth_hospital": "上海市第一妇婴保健院",
    "mother_name": "王芳",
    "mother_id_number": "340102199003071283",
    "father_name": "张伟",
    "hukou_address": "江苏省南京市玄武区中山路1号",
    "residence_address": "上海市浦东新区世纪大道100号",
}
NEWBORN_CHOICES = {
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


def until(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """`check()`'s first truthy value, tried every 0.3 s; fails after `timeout` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def no_overflow(page: Any) -> None:
    """Nothing on the page is wider than the viewport (no sideways scrolling)."""
    page.wait_for_load_state("load")  # not a document still being replaced
    wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
    assert not wide, f"{page.url} overflows at {page.viewport_size}"


def shoot(page: Any, tmp_path: Path, name: str) -> None:
    """Screenshots at 1280 and 390 px into `tmp_path`, each without sideways scrolling;
    the page is left at desktop width."""
    for label, size in (("1280", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(size)
        no_overflow(page)
        page.screenshot(path=str(tmp_path / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def submitted_case(live_server: str, headers: dict[str, str], pdf: bytes) -> str:
    """A CASE_MATTER case submitted over the API with `headers` (a resident's), for 苏州;
    its id."""
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
                "matter_code": CASE_MATTER,
                "competent_jurisdiction": "320000",
                "competent_city": "320500",
                "form_data": {"proof_purpose": "异地贷款"},
                "consent": True,
                "attachment_ids": [att.json()["id"]],
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def fill_application(
    page: Any,
    matter: dict[str, Any],
    form_data: dict[str, Any],
    pdf_bytes: bytes,
    tmp_path: Path,
    where: tuple[str, str],
    file_name: str = "{code}.pdf",
) -> None:
    """On an application page (/apply or /window/new): where (jurisdiction, city), the
    form's fields from `form_data` (ids are the schema's keys; labels its titles), and a
    PDF for each required material (named `file_name` with the material's code)."""
    page.get_by_label("有管辖权的省（市）").select_option(where[0])
    page.get_by_label("办理城市").select_option(where[1])
    schema = matter["form_schema"]
    for name, value in form_data.items():
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
            path = tmp_path / file_name.format(code=m["code"])
            path.write_bytes(pdf_bytes)
            page.locator(f"#material_{m['code']}").set_input_files(str(path))


def open_when_forwarded(page: Any, case_id: str, arrived: Callable[[Any], Any]) -> None:
    """Opens the case on the officer's workbench until `arrived(page)` (the worker
    forwards it), within FORWARD_TIMEOUT."""
    deadline = time.monotonic() + FORWARD_TIMEOUT
    while True:
        page.goto(f"/workbench/cases/{case_id}")
        if arrived(page):
            return
        assert time.monotonic() < deadline, "the case did not reach the workbench"
        time.sleep(0.3)


def action_form(page: Any, label: str) -> Any:
    """The workbench's form for the action `label` (by its heading)."""
    return page.locator("form.action-form").filter(
        has=page.get_by_role("heading", name=label, exact=True)
    )


def step(page: Any, case_id: str, label: str, **fields: str) -> None:
    """The officer takes the action `label` on the case's workbench page: `proposal`
    checks that option, `confirm` ticks the 确认作出 box, any other name fills the field
    whose label matches it."""
    page.goto(f"/workbench/cases/{case_id}")
    form = action_form(page, label)
    for name, value in fields.items():
        if name == "proposal":
            form.get_by_label(value).check()
        elif name == "confirm":
            form.get_by_label(re.compile("确认作出")).check()
        else:
            form.get_by_label(re.compile(name)).fill(value)
    form.get_by_role("button", name=label, exact=True).click()
    page.wait_for_url(re.compile(r"done="))


def accept_when_forwarded(
    http: httpx.Client, case_id: str, officer: dict[str, str], where: str
) -> None:
    """The officer (bearer `officer`) accepts the case over the API once the worker has
    forwarded it to their authority (`where` names it for the failure)."""
    until(
        lambda: (
            http.post(
                f"/api/v1/cases/{case_id}/actions", json={"action": "accept"}, headers=officer
            ).status_code
            == 200
        ),
        f"the case to reach {where}",
    )


def deliver_when_forwarded(
    http: httpx.Client, case_id: str, officer: dict[str, str], where: str
) -> None:
    """`accept_when_forwarded`, then the officer takes the case through review, approval
    and the result to delivery."""
    accept_when_forwarded(http, case_id, officer, where)
    for action in ("start_review", "approve", "issue_result", "deliver"):
        r = http.post(
            f"/api/v1/cases/{case_id}/actions",
            json={"action": action, "comment": "符合条件"},
            headers=officer,
        )
        assert r.status_code == 200, r.text


def submit_newborn(
    page: Any,
    pdf_bytes: bytes,
    tmp_path: Path,
    fields: dict[str, str] = NEWBORN_FIELDS,
    choices: dict[str, str] = NEWBORN_CHOICES,
) -> str:
    """From /lifeevents, the newborn bundle's one form filled in (a PDF in every upload
    slot), consented to and submitted once; the bundle's id (its follow page is open)."""
    page.goto("/lifeevents")
    page.locator("#newborn").get_by_role("link", name="在线申请").click()
    assert page.get_by_role("heading", name="新生儿出生“一件事”").is_visible()
    for name, value in fields.items():
        page.fill(f"#f_{name}", value)
    for name, value in choices.items():
        page.select_option(f"#f_{name}", value)
    pdf = tmp_path / "material.pdf"
    pdf.write_bytes(pdf_bytes)
    for upload in page.locator("input[type=file]").all():
        upload.set_input_files(str(pdf))
    page.get_by_label("我同意为办理本“一件事”所含各事项").check()
    page.get_by_role("button", name="一次提交").click()
    page.wait_for_url("**/my/lifeevents/*")
    return str(page.url.rsplit("/", 1)[1])
