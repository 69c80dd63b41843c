"""Result documents (决定书): generated once, stored by hash, downloadable from the case
page, verified online by the token in their QR code; the window's 受理回执. Against a
real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import io
import re

import pypdf
import segno
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tongban.cases import documents, results, service
from tongban.cases.attachments import blob_path
from tongban.kernel.node import settings_of

from builders import (
    id_number,
    make_case,
    make_clerk,
    make_officer,
    make_resident,
    sign_in,
    window_application,
)

OFFICER_AUTH = "320500-housing_fund"
AUTHORITY = "苏州市住房公积金管理中心"


def text_of(pdf: bytes) -> str:
    return "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def stored(session: Session, sha256: str) -> bytes:
    return blob_path(settings_of(session).upload_dir, sha256).read_bytes()


def walk(session, officer, case, *steps):
    for action, comment, *result in steps:
        case = service.act(session, officer, case.id, action, comment, *result)
    return case


def test_approval_issues_a_decision_with_a_qr_that_verifies_it(
    client: TestClient, session: Session
) -> None:
    resident = make_resident(session)
    officer = make_officer(session, OFFICER_AUTH)
    case = make_case(session, resident)
    walk(
        session,
        officer,
        case,
        ("accept", ""),
        ("start_review", ""),
        ("approve", ""),
        ("issue_result", "", "准予出具住房公积金缴存证明，证明编号 GJJ-0001"),
    )
    (doc,) = case.documents
    assert (doc.kind, doc.title) == ("approval", "准予行政许可决定书")
    data = stored(session, doc.sha256)
    assert hashlib.sha256(data).hexdigest() == doc.sha256 and len(data) == doc.size
    text = text_of(data)
    for expected in (case.number, AUTHORITY, "准予", "GJJ-0001", case.applicant_name):
        assert expected in text, expected
    url = results.verify_url(session, doc.token)
    assert url.endswith(f"/verify/documents/{doc.token}") and url in text.replace("\n", "")
    # The QR drawn on the page carries exactly that URL (render-free: the same modules).
    assert documents.qr_matrix(url) == [
        [bool(v) for v in row] for row in segno.make(url, error="m").matrix_iter(border=4)
    ]
    # Delivering later changes nothing in the stored document.
    walk(session, officer, case, ("deliver", ""))
    assert [d.sha256 for d in case.documents] == [doc.sha256]

    # The resident downloads exactly those bytes from the case page.
    sign_in(client, resident)
    page = client.get(f"/my/cases/{case.id}")
    assert f"/my/cases/{case.id}/documents/{doc.id}" in page.text
    r = client.get(f"/my/cases/{case.id}/documents/{doc.id}")
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["x-content-type-options"] == "nosniff"

    # Anyone may verify, signed in or not.
    client.cookies.clear()
    r = client.get(f"/verify/documents/{doc.token}")
    assert r.status_code == 200 and "核验通过" in r.text
    assert case.number in r.text and AUTHORITY in r.text
    assert doc.sha256 in r.text.replace("<wbr>", "")  # broken for narrow screens only
    assert case.applicant_name not in r.text  # a public page shows the name masked


def test_a_forged_or_unknown_document_does_not_verify(client: TestClient) -> None:
    for token in ("A" * 32, "not-a-token", "x" * 70, "a.b.c-%20-d" * 3):
        r = client.get(f"/verify/documents/{token}")
        assert r.status_code == 404 and "核验未通过" in r.text and "伪造" in r.text


def test_denial_and_refusal_state_reasons_and_the_rights_of_review_and_appeal(
    session: Session,
) -> None:
    officer = make_officer(session, OFFICER_AUTH)
    denied = walk(
        session,
        officer,
        make_case(session),
        ("accept", ""),
        ("start_review", ""),
        ("deny", "缴存未满六个月，不符合出具条件"),
        ("issue_result", ""),
    )
    refused = walk(session, officer, make_case(session), ("refuse", "申请事项不属于本机关职权范围"))
    for case, kind, title, reason in (
        (denied, "denial", "不予行政许可决定书", "缴存未满六个月，不符合出具条件"),
        (refused, "refusal", "不予受理决定书", "申请事项不属于本机关职权范围"),
    ):
        (doc,) = case.documents
        assert (doc.kind, doc.title) == (kind, title)
        text = text_of(stored(session, doc.sha256)).replace("\n", "")
        for expected in (title, case.number, AUTHORITY, reason, "六十日内", "行政复议"):
            assert expected in text, (kind, expected)
        assert "六个月内" in text and "行政诉讼" in text


def test_the_window_prints_a_receipt_with_a_qr_to_follow_the_case(
    client: TestClient, session: Session
) -> None:
    clerk = make_clerk(session, "310000")
    applicant, app = window_application(session, clerk, id_number("310100"))
    case = service.submit_at_window(session, clerk, applicant, app)
    sign_in(client, clerk)
    page = client.get(f"/window/cases/{case.id}")
    assert f"/window/cases/{case.id}/receipt.pdf" in page.text and "受理回执" in page.text
    r = client.get(f"/window/cases/{case.id}/receipt.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = text_of(r.content).replace("\n", "")
    for expected in (
        "受理回执",
        case.number,
        case.matter_name,
        "苏州市公安局",
        "身份证",
        f"{case.time_limit_days} 个工作日",
        results.follow_url(session, case),
    ):
        assert expected in text, expected
    # Only the window clerk prints it.
    sign_in(client, make_resident(session))
    assert client.get(f"/window/cases/{case.id}/receipt.pdf").status_code == 403


def test_downloads_are_for_who_may_see_the_case(client: TestClient, session: Session) -> None:
    officer = make_officer(session, OFFICER_AUTH)
    case = walk(session, officer, make_case(session), ("refuse", "非本机关职责"))
    (doc,) = case.documents
    sign_in(client, make_resident(session, username="someone-else"))
    assert client.get(f"/my/cases/{case.id}/documents/{doc.id}").status_code == 404
    sign_in(client, officer)
    r = client.get(f"/cases/{case.id}/documents/{doc.id}")
    assert r.status_code == 200 and re.search(
        r"filename\*=UTF-8''.+\.pdf", r.headers["content-disposition"]
    )


def test_a_case_whose_result_is_a_licence_points_to_the_wallet(
    client: TestClient, session: Session
) -> None:
    resident = make_resident(session)
    officer = make_officer(session, "320500-human_resources")
    case = make_case(
        session, resident, matter="YRD-RS-0003", form={"reason": "损坏", "pickup": "网点领取"}
    )
    walk(session, officer, case, ("accept", ""), ("start_review", ""), ("approve", ""))
    sign_in(client, resident)
    assert "送达后将发放" not in client.get(f"/my/cases/{case.id}").text  # not decided yet
    walk(session, officer, case, ("issue_result", ""), ("deliver", ""))
    page = client.get(f"/my/cases/{case.id}").text
    assert "已发放至" in page and 'href="/my/licences"' in page
