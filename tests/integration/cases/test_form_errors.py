"""Application forms report every error at once: consent, fields (an ID number checked
by GB 11643) and materials in one answer, with a summary at the top that takes focus
and links to each input, each input marked invalid with its message; the files of a
refused form are kept for the resubmission (SQLite and PostgreSQL)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from builders import csrf_of, id_number, make_clerk, make_resident, sign_in

MATTER = "YRD-GA-0002"  # 户籍类证明开具: a form with an ID number, the ID card required
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
GOOD_ID = "340102199003071232"
WRONG_CHECK_DIGIT = "340102199003071234"


def form(csrf: str, **overrides: str) -> dict[str, str]:
    data = {
        "csrf_token": csrf,
        "competent_jurisdiction": "320000",
        "competent_city": "320500",
        "mode": "online",
        "delivery_method": "electronic",
        "consent": "1",
        "proof_type": "亲属关系证明",
        "subject_name": "王小明",
        "subject_id_number": GOOD_ID,
        "purpose": "办理入学",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v != ""}


def summary_links(html: str) -> list[str]:
    box = re.search(r'<div class="alert error error-summary" role="alert">(.*?)</div>', html, re.S)
    assert box, "no error summary"
    assert re.search(r'<h2 id="error-summary-title" tabindex="-1" autofocus>', box.group(1))
    return re.findall(r'<a href="#([^"]+)">', box.group(1))


def test_the_online_form_reports_consent_id_number_and_material_at_once(
    client: TestClient, session: Session
) -> None:
    sign_in(client, make_resident(session))
    page = client.get(f"/apply/{MATTER}")
    r = client.post(
        f"/apply/{MATTER}",
        data=form(csrf_of(page.text), consent="", subject_id_number=WRONG_CHECK_DIGIT),
    )
    assert r.status_code == 422
    links = summary_links(r.text)
    assert {"consent", "f_subject_id_number", "material_id_card"} <= set(links)
    for target in links:  # every link lands on an input of the page, marked invalid
        assert re.search(rf'id="{target}"[^>]*aria-invalid="true"', r.text), target
    assert "校验位不正确" in r.text  # GB 11643 says which part is wrong


def in_page_order(html: str, links: list[str]) -> bool:
    """Whether the summary's links follow the inputs they lead to down the page."""
    form = html.index("<form")
    where = [html.index(f'id="{target}"', form) for target in links]
    return where == sorted(where)


def test_the_summary_lists_the_problems_in_the_order_of_the_form(
    client: TestClient, session: Session
) -> None:
    """Consent is the form's last input: its error comes after the fields' and the
    materials', not first (the summary reads top to bottom like the form)."""
    sign_in(client, make_resident(session))
    page = client.get(f"/apply/{MATTER}")
    data = form(
        csrf_of(page.text), consent="", subject_name="", subject_id_number=WRONG_CHECK_DIGIT
    )
    r = client.post(f"/apply/{MATTER}", data=data)
    assert r.status_code == 422
    links = summary_links(r.text)
    assert links == ["f_subject_name", "f_subject_id_number", "material_id_card", "consent"]
    assert in_page_order(r.text, links)


def test_a_refused_online_form_keeps_the_files_chosen(client: TestClient, session: Session) -> None:
    from sqlalchemy import select

    from tongban.cases.models import Case

    resident = make_resident(session)
    sign_in(client, resident)
    page = client.get(f"/apply/{MATTER}")
    r = client.post(
        f"/apply/{MATTER}",
        data=form(csrf_of(page.text), consent=""),
        files={"material_id_card": ("我的身份证.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 422
    assert "已保留：" in r.text and "我的身份证.pdf" in r.text and "请重新选择" not in r.text
    assert "material_id_card" not in summary_links(r.text)  # it was sent: not missing
    token = re.search(r'name="staged_token" value="([^"]+)"', r.text)
    assert token
    # Consent given, no file chosen again: the kept one is the case's material.
    r = client.post(
        f"/apply/{MATTER}",
        data={**form(csrf_of(r.text)), "staged_token": token.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    case = session.scalar(select(Case).where(Case.applicant_id == resident.id))
    assert case is not None
    assert [(a.material_code, a.filename) for a in case.attachments] == [
        ("id_card", "我的身份证.pdf")
    ]


def test_the_window_form_reports_every_problem_at_once(
    client: TestClient, session: Session
) -> None:
    sign_in(client, make_clerk(session, "310000"))
    page = client.get(f"/window/new/{MATTER}")
    good = id_number("320500")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")  # one valid number, its check digit changed
    data = {
        **form(csrf_of(page.text), mode="proxy", delivery_method="window", subject_name=""),
        "applicant_type": "resident",
        "applicant_name": "赵六",
        "applicant_identifier": bad,
    }
    r = client.post(f"/window/new/{MATTER}", data=data)
    assert r.status_code == 422
    links = set(summary_links(r.text))
    assert {
        "applicant_identifier",
        "identity_verified",
        "materials_checked",
        "f_subject_name",
        "material_id_card",
    } <= links
    assert 'id="applicant_identifier"' in r.text and "身份证号码无效" in r.text
    # Top to bottom as the window form shows them: applicant, fields, materials, checks.
    without_consent = {k: v for k, v in data.items() if k != "consent"}
    r = client.post(f"/window/new/{MATTER}", data=without_consent)
    ordered = summary_links(r.text)
    assert ordered[0] == "applicant_identifier" and ordered[-2:] == ["consent", "materials_checked"]
    assert in_page_order(r.text, ordered), ordered


def test_at_the_window_a_presented_licence_stands_in_for_the_material(
    client: TestClient, session: Session
) -> None:
    """免提交 at the window: the clerk pastes the licence the applicant shows; it is
    verified and recorded as the material, as online; another person's is refused."""
    from sqlalchemy import select

    from tongban.cases.models import Case
    from tongban.licences.models import LicenceUse

    from builders import make_licence

    holder = make_resident(session, "340100")
    stranger = make_resident(session, "340100")
    lic = make_licence(session, holder)
    other = make_licence(session, stranger)
    clerk = make_clerk(session, "310000")
    sign_in(client, clerk)
    page = client.get(f"/window/new/{MATTER}")
    assert 'name="presented_id_card"' in page.text
    data = {
        **form(csrf_of(page.text), mode="proxy", delivery_method="window"),
        "applicant_type": "resident",
        "applicant_name": holder.display_name,
        "applicant_identifier": holder.id_number,
        "identity_verified": "1",
        "materials_checked": "1",
    }
    r = client.post(f"/window/new/{MATTER}", data={**data, "presented_id_card": other.compact})
    assert r.status_code == 422 and "不属于申请人" in r.text
    assert 'id="material_id_card"' in r.text and "material_id_card" in summary_links(r.text)
    r = client.post(
        f"/window/new/{MATTER}",
        data={**data, "presented_id_card": lic.compact},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    case = session.scalar(select(Case).where(Case.clerk_id == clerk.id))
    assert case is not None and not case.attachments  # no file: the licence stands in
    use = session.scalar(select(LicenceUse).where(LicenceUse.case_id == case.id))
    assert use is not None and use.licence_id == lic.id and use.result == "valid"
