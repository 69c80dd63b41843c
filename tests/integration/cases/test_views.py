"""The pages of applications, driven through the real app: the applicant's portal, the
window desk and the officer's workbench."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tongban.cases.models import Case, Rectification
from tongban.exchange.service import dispatch_pending
from tongban.identity.models import Account

from builders import (
    PASSWORD,
    id_number,
    make_clerk,
    make_officer,
    make_resident,
    make_supervisor,
)

MATTER = "YRD-GA-0002"  # 户籍类证明开具: city level, public security, online + proxy
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
FORM = {
    "proof_type": "亲属关系证明",
    "subject_name": "王小明",
    "subject_id_number": "340102199003071232",
    "purpose": "办理入学",
}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def login(client: TestClient, account: Account) -> None:
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"username": account.username, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def application(csrf: str, **overrides: str) -> dict[str, str]:
    data = {
        "csrf_token": csrf,
        "competent_jurisdiction": "320000",
        "competent_city": "320500",
        "mode": "online",
        "delivery_method": "electronic",
        "consent": "1",
        **FORM,
    }
    data.update(overrides)
    return data


def apply(client: TestClient, **overrides: str) -> str:
    """Apply through the page; returns the new case's id."""
    page = client.get(f"/apply/{MATTER}")
    assert page.status_code == 200
    r = client.post(
        f"/apply/{MATTER}",
        data=application(csrf_of(page.text), **overrides),
        files={"material_id_card": ("身份证.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    m = re.fullmatch(r"/my/cases/([0-9a-f-]{36})", r.headers["location"])
    assert m, r.headers["location"]
    return m.group(1)


def case_count(session: Session, account: Account) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(Case).where(Case.applicant_id == account.id)
        )
        or 0
    )


def act(client: TestClient, case_id: str, action: str, **fields: str) -> None:
    page = client.get(f"/workbench/cases/{case_id}")
    assert page.status_code == 200
    assert f'name="action" value="{action}"' in page.text, f"{action} not offered"
    r = client.post(
        f"/workbench/cases/{case_id}/act",
        data={
            "csrf_token": csrf_of(page.text),
            "action": action,
            **CONFIRM.get(action, {}),
            **fields,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


#: Irreversible decisions are confirmed on the page (the server insists).
CONFIRM = {a: {"confirm": "1"} for a in ("refuse", "approve", "deny")}


def test_apply_page_shows_matter_and_only_online_modes(
    client: TestClient, session: Session
) -> None:
    login(client, make_resident(session))
    page = client.get(f"/apply/{MATTER}")
    assert page.status_code == 200
    assert "户籍类证明开具" in page.text
    assert "5</strong> 个工作日" in page.text
    assert 'value="online"' in page.text and 'value="proxy"' not in page.text
    assert 'name="material_id_card"' in page.text
    assert "可用电子证照免提交" in page.text
    assert "我同意为办理本事项跨地区共享和使用本人信息" in page.text
    assert 'data-j="320000"' in page.text  # cities carry their jurisdiction for the filter


def test_resident_applies_with_upload_and_sees_detail(client: TestClient, session: Session) -> None:
    resident = make_resident(session)
    login(client, resident)
    case_id = apply(client)

    detail = client.get(f"/my/cases/{case_id}")
    assert detail.status_code == 200
    assert "已提交" in detail.text
    assert "苏州市公安局" in detail.text
    assert "证明对象姓名" in detail.text and "王小明" in detail.text  # schema titles
    assert "身份证.pdf" in detail.text
    assert "提交申请" in detail.text  # timeline
    listing = client.get("/my/cases")
    assert case_id in listing.text and "已提交，待受理" in listing.text

    download = client.get(
        f"/cases/{case_id}/attachments/"
        + re.search(r"/attachments/([0-9a-f-]{36})", detail.text).group(1)
    )
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith("attachment")


def test_missing_consent_rerenders_and_creates_nothing(
    client: TestClient, session: Session
) -> None:
    resident = make_resident(session)
    login(client, resident)
    page = client.get(f"/apply/{MATTER}")
    data = application(csrf_of(page.text), subject_name="李四")
    del data["consent"]
    r = client.post(
        f"/apply/{MATTER}",
        data=data,
        files={"material_id_card": ("id.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code in (400, 422)
    assert "须同意为办理本事项使用并跨地区共享申请信息" in r.text
    assert 'value="李四"' in r.text  # what the user entered comes back
    assert case_count(session, resident) == 0


def test_form_errors_show_under_their_fields(client: TestClient, session: Session) -> None:
    login(client, make_resident(session))
    page = client.get(f"/apply/{MATTER}")
    data = application(csrf_of(page.text), subject_id_number="12345")
    r = client.post(f"/apply/{MATTER}", data=data, follow_redirects=False)
    assert r.status_code == 422
    assert 'id="f_subject_id_number_error"' in r.text


def test_missing_material_shows_under_file_input(client: TestClient, session: Session) -> None:
    resident = make_resident(session)
    login(client, resident)
    page = client.get(f"/apply/{MATTER}")
    r = client.post(
        f"/apply/{MATTER}", data=application(csrf_of(page.text)), follow_redirects=False
    )
    assert r.status_code == 422
    assert 'id="material_id_card-error"' in r.text
    assert case_count(session, resident) == 0


def test_post_without_csrf_is_refused(client: TestClient, session: Session) -> None:
    resident = make_resident(session)
    login(client, resident)
    data = application("not-the-token")
    r = client.post(
        f"/apply/{MATTER}",
        data=data,
        files={"material_id_card": ("id.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 403
    assert case_count(session, resident) == 0


def test_wrong_role_gets_403_and_anonymous_is_sent_to_login(
    client: TestClient, session: Session
) -> None:
    r = client.get("/my/cases", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    login(client, make_officer(session, "320500-public_security"))
    assert client.get("/my/cases").status_code == 403
    assert client.get(f"/apply/{MATTER}").status_code == 403
    assert client.get("/window").status_code == 403


def test_full_handling_through_the_workbench_and_rating(
    client: TestClient, session: Session, factory: sessionmaker[Session]
) -> None:
    resident = make_resident(session)
    officer = make_officer(session, "320500-public_security", duty="approver")
    login(client, resident)
    case_id = apply(client)
    number = session.get(Case, uuid.UUID(case_id)).number

    login(client, officer)
    assert number not in client.get("/workbench").text  # not forwarded yet
    assert dispatch_pending(factory) >= 1
    queue = client.get("/workbench")
    assert number in queue.text and "已提交，待受理" in queue.text

    detail = client.get(f"/workbench/cases/{case_id}")
    assert resident.id_number in detail.text  # unmasked for the competent officer
    for action in ("accept", "start_review", "approve"):
        act(client, case_id, action)
    act(client, case_id, "issue_result", result_text="准予办理，证明编号 A001")
    act(client, case_id, "deliver")
    assert "已送达" in client.get(f"/workbench/cases/{case_id}").text

    login(client, resident)
    detail = client.get(f"/my/cases/{case_id}")
    assert "准予办理，证明编号 A001" in detail.text
    assert "非常不满意" in detail.text and 'action="/my/cases/' in detail.text
    r = client.post(
        f"/my/cases/{case_id}/rate",
        data={"csrf_token": csrf_of(detail.text), "score": "1", "comment": "等待时间太长"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert "已评价" in client.get(f"/my/cases/{case_id}").text

    login(client, officer)
    queue = client.get("/workbench")
    assert "差评整改待办 1 件" in queue.text
    items = client.get("/workbench/rectifications")
    assert "等待时间太长" in items.text and number in items.text
    item = session.scalar(select(Rectification).where(Rectification.case_id == uuid.UUID(case_id)))
    r = client.post(
        f"/workbench/rectifications/{item.id}/reply",
        data={"csrf_token": csrf_of(items.text), "response": "已增加窗口人员"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    session.refresh(item)
    assert item.status == "replied"


def test_refusal_without_reason_rerenders_with_message(
    client: TestClient, session: Session, factory: sessionmaker[Session]
) -> None:
    login(client, make_resident(session))
    case_id = apply(client)
    dispatch_pending(factory)
    login(client, make_officer(session, "320500-public_security", duty="reviewer"))
    page = client.get(f"/workbench/cases/{case_id}")
    r = client.post(
        f"/workbench/cases/{case_id}/act",
        data={"csrf_token": csrf_of(page.text), "action": "refuse", "comment": " "},
    )
    assert r.status_code == 422
    assert "须说明理由" in r.text and "请填写理由" in r.text
    assert session.get(Case, uuid.UUID(case_id)).state == "submitted"


def test_correction_and_resubmission(
    client: TestClient, session: Session, factory: sessionmaker[Session]
) -> None:
    resident = make_resident(session)
    officer = make_officer(session, "320500-public_security", duty="reviewer")
    login(client, resident)
    case_id = apply(client)
    dispatch_pending(factory)
    login(client, officer)
    page = client.get(f"/workbench/cases/{case_id}")
    assert 'action="/workbench/cases/' in page.text and "一次性告知" in page.text
    r = client.post(
        f"/workbench/cases/{case_id}/correction",
        data={
            "csrf_token": csrf_of(page.text),
            "item": "household_register",
            "reason_household_register": "",
            "new_name_1": "租房合同",
            "new_reason_1": "请提供现住址证明",
            "comment": "材料不全",
            "deadline_days": "10",
        },
    )
    # An item without its reason is refused, the error beside that item's input.
    assert r.status_code == 422
    assert 'id="item-reason-household_register"' in r.text and "请说明该项需补正的原因" in r.text
    assert 'value="租房合同"' in r.text  # what the officer typed is kept
    r = client.post(
        f"/workbench/cases/{case_id}/correction",
        data={
            "csrf_token": csrf_of(page.text),
            "item": "household_register",
            "reason_household_register": "户口簿缺少本人页",
            "new_name_1": "租房合同",
            "new_reason_1": "请提供现住址证明",
            "comment": "材料不全",
            "deadline_days": "10",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text

    login(client, resident)
    detail = client.get(f"/my/cases/{case_id}")
    top = detail.text.index("需要补正：材料不全")
    assert top < detail.text.index("<h1>")  # the reason comes first on the page
    assert "户口簿缺少本人页" in detail.text and "请提供现住址证明" in detail.text
    assert 'name="item_household_register"' in detail.text and 'name="item_extra1"' in detail.text
    assert 'value="王小明"' in detail.text  # the form comes pre-filled
    # Every item needs its upload: one missing is refused beside its slot.
    r = client.post(
        f"/my/cases/{case_id}/resubmit",
        data={"csrf_token": csrf_of(detail.text), **FORM, "comment": "已补充"},
        files={"item_household_register": ("hk.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 422 and "请上传“租房合同”的补正材料" in r.text
    r = client.post(
        f"/my/cases/{case_id}/resubmit",
        data={"csrf_token": csrf_of(detail.text), **FORM, "comment": "已补充"},
        files=[
            ("item_household_register", ("hk.pdf", PDF, "application/pdf")),
            ("item_extra1", ("lease.pdf", PDF, "application/pdf")),
        ],
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    case = session.get(Case, uuid.UUID(case_id))
    session.refresh(case)
    assert case.state == "submitted"
    assert {a.material_code for a in case.attachments} == {
        "id_card",
        "household_register",
        "extra1",
    }
    assert [c.status for c in case.corrections] == ["answered"]
    assert "租房合同（补正）" in client.get(f"/my/cases/{case_id}").text  # the file's label
    # 一次性告知: the intake stage had its notice; another one is refused.
    login(client, officer)
    page = client.get(f"/workbench/cases/{case_id}")
    r = client.post(
        f"/workbench/cases/{case_id}/correction",
        data={
            "csrf_token": csrf_of(page.text),
            "new_name_1": "其他",
            "new_reason_1": "再补一份",
            "comment": "还缺",
            "deadline_days": "5",
        },
    )
    assert r.status_code == 409 and "一次性告知" in r.text


def test_irreversible_decisions_need_confirmation(
    client: TestClient, session: Session, factory: sessionmaker[Session]
) -> None:
    login(client, make_resident(session))
    case_id = apply(client)
    dispatch_pending(factory)
    login(client, make_officer(session, "320500-public_security", duty="reviewer"))
    page = client.get(f"/workbench/cases/{case_id}")
    assert page.text.count('name="confirm"') == 1  # 不予受理 only; 受理 is not final
    r = client.post(
        f"/workbench/cases/{case_id}/act",
        data={"csrf_token": csrf_of(page.text), "action": "refuse", "comment": "非本部门职责"},
    )
    assert r.status_code == 422 and "请勾选确认" in r.text
    assert session.get(Case, uuid.UUID(case_id)).state == "submitted"
    act(client, case_id, "refuse", comment="非本部门职责")
    case = session.get(Case, uuid.UUID(case_id))
    session.refresh(case)
    assert case.state == "refused" and [d.kind for d in case.documents] == ["refusal"]


def test_clerk_receives_case_for_another_jurisdiction(client: TestClient, session: Session) -> None:
    clerk = make_clerk(session, "310000")
    login(client, clerk)
    choose = client.get("/window/new")
    assert choose.status_code == 200 and MATTER in choose.text
    assert "YRD-GA-0005" not in choose.text  # online only: not received at windows
    assert (
        client.get("/window/new", params={"matter_code": MATTER}, follow_redirects=False).headers[
            "location"
        ]
        == f"/window/new/{MATTER}"
    )
    page = client.get(f"/window/new/{MATTER}")
    assert "已当面核验申请人身份证件" in page.text
    ident = id_number("320500")
    data = {
        **application(csrf_of(page.text), mode="proxy", delivery_method="window"),
        "applicant_type": "resident",
        "applicant_name": "赵六",
        "applicant_identifier": ident,
        "materials_checked": "1",
    }
    # Without the two checks the clerk is told about both and nothing is created.
    unchecked = {k: v for k, v in data.items() if k != "materials_checked"}
    r = client.post(
        f"/window/new/{MATTER}",
        data=unchecked,
        files={"material_id_card": ("id.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 422
    assert "须当面核验申请人身份证件" in r.text and "须核对申请材料原件" in r.text
    assert not session.scalar(
        select(func.count()).select_from(Case).where(Case.clerk_id == clerk.id)
    )
    r = client.post(
        f"/window/new/{MATTER}",
        data={**data, "identity_verified": "1"},
        files={"material_id_card": ("id.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    path, _, query = r.headers["location"].partition("?")
    assert query == "done=received"  # the page says the case was received
    case_id = path.rsplit("/", 1)[1]
    case = session.get(Case, uuid.UUID(case_id))
    assert (case.channel, case.mode, case.receiving_city) == ("window", "proxy", "310000")
    assert case.competent_jurisdiction == "320000"
    detail = client.get(f"/window/cases/{case_id}")
    assert detail.status_code == 200 and "赵六" in detail.text and "苏州市公安局" in detail.text
    assert ident not in detail.text  # masked for the clerk
    assert case.number in client.get("/window").text


def test_other_people_get_404(
    client: TestClient, session: Session, factory: sessionmaker[Session]
) -> None:
    login(client, make_resident(session))
    case_id = apply(client)
    dispatch_pending(factory)
    attachment = session.get(Case, uuid.UUID(case_id)).attachments[0].id

    login(client, make_resident(session))
    assert client.get(f"/my/cases/{case_id}").status_code == 404
    assert client.get(f"/cases/{case_id}/attachments/{attachment}").status_code == 404

    login(client, make_officer(session, "320200-public_security"))  # 无锡, not 苏州
    assert client.get(f"/workbench/cases/{case_id}").status_code == 404
    assert client.get(f"/cases/{case_id}/attachments/{attachment}").status_code == 404


def test_upload_of_wrong_type_is_shown_under_its_input(
    client: TestClient, session: Session
) -> None:
    resident = make_resident(session)
    login(client, resident)
    page = client.get(f"/apply/{MATTER}")
    r = client.post(
        f"/apply/{MATTER}",
        data=application(csrf_of(page.text)),
        files={"material_id_card": ("id.txt", b"just text", "text/plain")},
    )
    assert r.status_code == 415
    assert 'id="material_id_card-error"' in r.text and "仅支持 PDF、PNG、JPEG" in r.text
    assert case_count(session, resident) == 0


def test_supervisor_reads_the_workbench_but_cannot_act(
    client: TestClient, session: Session, factory: sessionmaker[Session]
) -> None:
    login(client, make_resident(session))
    case_id = apply(client)
    dispatch_pending(factory)
    login(client, make_supervisor(session, "320000"))
    assert session.get(Case, uuid.UUID(case_id)).number in client.get("/workbench").text
    detail = client.get(f"/workbench/cases/{case_id}")
    assert detail.status_code == 200
    assert 'name="action"' not in detail.text and "只读" in detail.text
    r = client.post(
        f"/workbench/cases/{case_id}/act",
        data={"csrf_token": csrf_of(detail.text), "action": "accept"},
    )
    assert r.status_code == 403
    assert session.get(Case, uuid.UUID(case_id)).state == "submitted"
