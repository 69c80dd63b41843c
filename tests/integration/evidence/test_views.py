"""The evidence pages through the real app: the consent checkboxes on the application
forms, the officer's 调取证明 panel, 我的数据使用记录 and the supervisor's view."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.cases.models import Case
from tongban.evidence import service as evidence
from tongban.identity.models import Account

from builders import (
    GJJ,
    GJJ_FORM,
    apply_form,
    csrf_of,
    drain,
    make_case,
    make_clerk,
    make_officer,
    make_register_record,
    make_resident,
    make_supervisor,
    sign_in,
)

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
GJJ_AUTH = "320500-housing_fund"


def login(client: TestClient, account: Account) -> None:
    """Sign in as `account` alone: the previous user's cookies go first."""
    client.cookies.clear()
    sign_in(client, account)


def test_apply_page_offers_consent_for_the_matters_evidence_and_records_it(
    client: TestClient, session: Session
) -> None:
    resident = make_resident(session, city="340100")
    login(client, resident)
    page = client.get(f"/apply/{GJJ}")
    assert page.status_code == 200
    assert "数据调取授权" in page.text
    assert "我同意调取本人的户籍证明" in page.text
    assert "我同意调取本人的社会保险缴费记录" in page.text
    assert 'value="licence_status"' not in page.text  # not needed for this matter
    r = client.post(
        f"/apply/{GJJ}",
        data=apply_form(csrf_of(page.text), GJJ_FORM, evidence_consent="social_insurance"),
        files={"material_id_card": ("身份证.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    case = session.scalar(select(Case).where(Case.applicant_id == resident.id))
    c = evidence.consent_for(session, case.number)
    assert c is not None and c.scopes == ["social_insurance"] and c.channel == "online"


def test_a_matter_without_evidence_shows_no_consent_fieldset(
    client: TestClient, session: Session
) -> None:
    login(client, make_resident(session, city="340100"))
    page = client.get("/apply/YRD-SW-0002")
    assert page.status_code == 200 and "数据调取授权" not in page.text


def test_an_enterprise_is_offered_only_kinds_that_exist_for_it(
    client: TestClient, session: Session
) -> None:
    from builders import make_enterprise

    login(client, make_enterprise(session))
    page = client.get("/apply/YRD-SJ-0001")  # 企业设立登记: market regulation
    assert page.status_code == 200
    assert "我同意调取本人的电子证照状态" in page.text
    assert 'value="household"' not in page.text  # an enterprise has no 户籍


def test_window_page_lets_the_clerk_record_the_applicants_consent(
    client: TestClient, session: Session
) -> None:
    clerk = make_clerk(session, "310000")
    resident = make_resident(session, city="340100")
    login(client, clerk)
    page = client.get("/window/new/YRD-GJJ-0003")
    assert page.status_code == 200
    assert "申请人同意调取社会保险缴费记录" in page.text
    r = client.post(
        "/window/new/YRD-GJJ-0003",
        data={
            "csrf_token": csrf_of(page.text),
            "applicant_type": "resident",
            "applicant_name": resident.display_name,
            "applicant_identifier": resident.id_number,
            "identity_verified": "1",
            "materials_checked": "1",
            "competent_jurisdiction": "320000",
            "competent_city": "320500",
            "mode": "proxy",
            "delivery_method": "window",
            "consent": "1",
            "evidence_consent": ["household", "social_insurance"],
            "house_address": "江苏省苏州市示范路88号",
            "purchase_date": "2026-10-01",
            "total_price": "2000000",
            "amount": "100000",
            "bank_account": "6222020200112233445",
        },
        files={
            "material_id_card": ("身份证.pdf", PDF, "application/pdf"),
            "material_purchase_proof": ("购房合同.pdf", PDF + b"1", "application/pdf"),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    case = session.scalar(select(Case).where(Case.applicant_identifier == resident.id_number))
    c = evidence.consent_for(session, case.number)
    assert c is not None and c.channel == "window"
    assert c.scopes == ["household", "social_insurance"] and c.recorded_by == clerk.display_name


def accept(session: Session, case: Any) -> None:
    """受理: evidence may be asked for only once the case is accepted."""
    from tongban.cases import service as cases

    cases.act(session, make_officer(session, GJJ_AUTH), case.id, "accept")
    session.commit()


def test_the_panel_says_why_evidence_cannot_be_asked_before_acceptance(
    client: TestClient, session: Session
) -> None:
    resident = make_resident(session, city="340100")
    case = make_case(
        session, resident, matter=GJJ, form=GJJ_FORM, evidence_consent=["social_insurance"]
    )
    session.commit()
    login(client, make_officer(session, GJJ_AUTH))
    page = client.get(f"/workbench/cases/{case.id}")
    assert 'id="evidence-closed"' in page.text and "受理后方可调取证明" in page.text
    assert 'action="/workbench/cases/' + str(case.id) + '/evidence"' not in page.text
    r = client.post(
        f"/workbench/cases/{case.id}/evidence",
        data={"csrf_token": csrf_of(page.text), "kind": "social_insurance",
              "purpose": "housing_fund_transfer"},
    )  # fmt: skip
    assert r.status_code == 409 and "受理后方可调取证明" in r.text


def test_officer_panel_requests_and_shows_the_answer_and_the_resident_sees_the_log(
    client: TestClient, session: Session, factory
) -> None:
    resident = make_resident(session, city="340100")
    officer = make_officer(session, GJJ_AUTH)
    case = make_case(
        session, resident, matter=GJJ, form=GJJ_FORM, evidence_consent=["social_insurance"]
    )
    make_register_record(session, resident, "social_insurance")
    accept(session, case)

    login(client, officer)
    page = client.get(f"/workbench/cases/{case.id}")
    assert page.status_code == 200
    assert 'id="evidence"' in page.text and "调取证明" in page.text
    assert "申请人授权调取：<strong>社会保险缴费记录</strong>" in page.text
    assert 'action="/workbench/cases/' + str(case.id) + '/evidence"' in page.text
    assert "住房公积金异地转移接续" in page.text  # the purposes offered
    r = client.post(
        f"/workbench/cases/{case.id}/evidence",
        data={
            "csrf_token": csrf_of(page.text),
            "kind": "social_insurance",
            "purpose": "housing_fund_transfer",
            "provider_jurisdiction": "340000",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"].endswith("?done=evidence-requested#evidence")
    pending = client.get(f"/workbench/cases/{case.id}")
    assert "等待答复" in pending.text
    drain(factory)
    done = client.get(f"/workbench/cases/{case.id}")
    assert "已调取" in done.text and "累计缴费月数" in done.text and "120" in done.text
    assert "12000" not in done.text  # the contribution base never left the provider
    # Asking again is once-only: the panel no longer offers the form for that kind.
    again = client.post(
        f"/workbench/cases/{case.id}/evidence",
        data={
            "csrf_token": csrf_of(done.text),
            "kind": "social_insurance",
            "purpose": "housing_fund_transfer",
        },
        follow_redirects=False,
    )
    assert again.headers["location"].endswith("?done=evidence-reused#evidence")

    login(client, resident)
    mine = client.get("/my/data-use")
    assert mine.status_code == 200
    assert "我的数据使用记录" in mine.text
    assert 'href="/my/data-use"' in mine.text  # in the navigation
    for text in ("苏州市住房公积金管理中心", "社会保险缴费记录", "住房公积金异地转移接续",
                 case.number, "已提供"):  # fmt: skip
        assert text in mine.text, text
    # The entry links to the resident's own case page.
    assert f'<a href="/my/cases/{case.id}">{case.number}</a>' in mine.text

    login(client, make_resident(session, city="340100"))
    other = client.get("/my/data-use")
    assert "暂无您的数据被调取的记录" in other.text and case.number not in other.text

    login(client, make_supervisor(session, "340000"))
    sup = client.get("/workbench/data-use")
    assert sup.status_code == 200 and case.number in sup.text
    assert resident.id_number not in sup.text and resident.id_number[-4:] in sup.text


def test_a_refused_request_shows_its_reason_on_the_panel(
    client: TestClient, session: Session, factory
) -> None:
    resident = make_resident(session, city="340100")
    officer = make_officer(session, GJJ_AUTH)
    case = make_case(session, resident, matter=GJJ, form=GJJ_FORM)  # no evidence consent
    accept(session, case)
    login(client, officer)
    page = client.get(f"/workbench/cases/{case.id}")
    assert "申请人未授权调取数据" in page.text
    client.post(
        f"/workbench/cases/{case.id}/evidence",
        data={"csrf_token": csrf_of(page.text), "kind": "household", "purpose": "housing_fund_transfer"},
        follow_redirects=False,
    )  # fmt: skip
    drain(factory)
    shown = client.get(f"/workbench/cases/{case.id}")
    assert "已拒绝" in shown.text and "申请人未就本办件授权调取其数据" in shown.text


def test_pages_refuse_the_wrong_people(client: TestClient, session: Session) -> None:
    resident = make_resident(session, city="340100")
    case = make_case(session, resident, matter=GJJ, form=GJJ_FORM)
    accept(session, case)
    login(client, resident)
    assert client.get(f"/workbench/cases/{case.id}/evidence").status_code == 403
    assert client.get("/workbench/data-use").status_code == 403
    login(client, make_officer(session, GJJ_AUTH))
    assert client.get("/my/data-use").status_code == 403
    assert client.get(f"/workbench/cases/{case.id}/evidence").status_code == 200
    # A bad form re-renders the evidence page with the message, writing nothing.
    page = client.get(f"/workbench/cases/{case.id}/evidence")
    r = client.post(
        f"/workbench/cases/{case.id}/evidence",
        data={"csrf_token": csrf_of(page.text), "kind": "", "purpose": ""},
    )
    assert r.status_code == 422 and "调取请求不完整" in r.text


def test_where_lookups_are_synchronous_the_officer_sees_the_answer_at_once(
    client: TestClient, session: Session
) -> None:
    """TONGBAN_EVIDENCE_SYNC=on: the request is answered by the evidence.lookup query in
    the officer's own request (here the provider is served by this node), no waiting."""
    resident = make_resident(session, city="340100")
    officer = make_officer(session, GJJ_AUTH)
    case = make_case(
        session, resident, matter=GJJ, form=GJJ_FORM, evidence_consent=["social_insurance"]
    )
    make_register_record(session, resident, "social_insurance")
    accept(session, case)
    settings = client.app.state.node.settings  # type: ignore[attr-defined]
    before = settings.evidence_sync
    settings.evidence_sync = "on"
    try:
        login(client, officer)
        page = client.get(f"/workbench/cases/{case.id}")
        r = client.post(
            f"/workbench/cases/{case.id}/evidence",
            data={
                "csrf_token": csrf_of(page.text),
                "kind": "social_insurance",
                "purpose": "housing_fund_transfer",
                "provider_jurisdiction": "340000",
            },
            follow_redirects=False,
        )
    finally:
        settings.evidence_sync = before
    assert r.status_code == 303
    assert r.headers["location"].endswith("?done=evidence-answered#evidence")
    done = client.get(r.headers["location"])
    assert "数据所在地已即时答复" in done.text
    assert "已调取" in done.text and "累计缴费月数" in done.text and "等待答复" not in done.text


def test_the_resident_withdraws_consent_on_the_data_use_page_and_the_officer_sees_why(
    client: TestClient, session: Session
) -> None:
    resident = make_resident(session, city="340100")
    case = make_case(
        session, resident, matter=GJJ, form=GJJ_FORM, evidence_consent=["social_insurance"]
    )
    accept(session, case)
    login(client, resident)
    page = client.get("/my/data-use")
    assert "我的调取授权" in page.text and "撤回不溯及既往" in page.text
    assert 'action="/my/data-use/consents/withdraw"' in page.text
    r = client.post(
        "/my/data-use/consents/withdraw",
        data={"csrf_token": csrf_of(page.text), "case_number": case.number,
              "kind": "social_insurance"},
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303 and r.headers["location"].endswith("done=consent-withdrawn")
    after = client.get("/my/data-use?done=consent-withdrawn")
    assert "已撤回授权" in after.text and "撤回</span>" in after.text
    assert 'action="/my/data-use/consents/withdraw"' not in after.text  # nothing left to withdraw
    again = client.post(
        "/my/data-use/consents/withdraw",
        data={"csrf_token": csrf_of(after.text), "case_number": case.number,
              "kind": "social_insurance"},
    )  # fmt: skip
    assert again.status_code == 422

    login(client, make_officer(session, GJJ_AUTH))
    panel = client.get(f"/workbench/cases/{case.id}")
    assert (
        "已撤回授权" in panel.text and "撤回对调取社会保险缴费记录的授权，不能再调取" in panel.text
    )
    r = client.post(
        f"/workbench/cases/{case.id}/evidence",
        data={"csrf_token": csrf_of(panel.text), "kind": "social_insurance",
              "purpose": "housing_fund_transfer"},
    )  # fmt: skip
    assert r.status_code == 409 and "撤回" in r.text
