"""The counter page for hospital staff and the agencies' clearing page, driven through
the real app with a logged-in session and CSRF tokens."""

from __future__ import annotations

import re

from sqlalchemy import select

from tongban.medical import clearing_service as cs
from tongban.medical.models import Settlement

from builders import (
    csrf_of,
    make_filing,
    make_hospital_staff,
    make_institution,
    make_insured,
    make_medical_officer,
    sign_in,
)


def _look_up(client, person):  # type: ignore[no-untyped-def]
    """The counter page's answer for an insured person's ID number."""
    form = client.get("/medical/counter")
    return client.post(
        "/medical/counter",
        data={"csrf_token": csrf_of(form.text), "id_number": person.id_number},
    )


def test_counter_register_items_presettle_settle_receipt_reverse(client, session):
    inst = make_institution(session, "310000", level=3)
    staff = make_hospital_staff(session, inst)
    person = make_insured(session, "340100", balance=20_000)
    make_filing(session, person, "310000")
    sign_in(client, staff)
    page = _look_up(client, person)
    assert page.status_code == 200
    assert "可直接结算" in page.text and "个人账户余额" in page.text and "200.00" in page.text
    assert "/medical/counter" in client.get("/").text  # nav link for hospital staff
    r = client.post(
        "/medical/counter/visits",
        data={
            "csrf_token": csrf_of(page.text),
            "id_number": person.id_number,
            "visit_no": "MZ1",
            "department": "内科",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    visit_url = r.headers["location"]
    visit = client.get(visit_url)
    csrf = csrf_of(visit.text)
    # An unknown code re-renders the form with the reason, and saves nothing.
    bad = client.post(
        visit_url + "/items",
        data={"csrf_token": csrf, "code": ["NOPE"], "quantity": ["1"], "price": ["1.00"]},
    )
    assert bad.status_code == 422 and "不在就医地医保目录中" in bad.text
    r = client.post(
        visit_url + "/items",
        data={
            "csrf_token": csrf,
            "code": ["T0001", "D0011", ""],
            "quantity": ["1", "2", ""],
            "price": ["25", "15.50", ""],
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    detail = client.get(visit_url).text
    assert "普通门诊诊查费" in detail and "丙类" in detail and "31.00" in detail
    pre = client.post(visit_url + "/presettle", data={"csrf_token": csrf})
    assert pre.status_code == 200
    # 25.00 甲 + 31.00 丙 = 56.00, all under 合肥's deductible: the account pays everything.
    assert "基金支付" in pre.text and "个人账户" in pre.text and "现金" in pre.text
    assert session.scalar(select(Settlement)) is None  # pre-settlement wrote nothing
    txn = re.search(r'name="txn_id" value="([^"]+)"', pre.text).group(1)
    r = client.post(
        visit_url + "/settle", data={"csrf_token": csrf, "txn_id": txn}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    receipt_url = r.headers["location"]
    # Pressing 确认结算 twice settles once and shows the same receipt.
    r2 = client.post(
        visit_url + "/settle", data={"csrf_token": csrf, "txn_id": txn}, follow_redirects=False
    )
    assert r2.headers["location"] == receipt_url
    receipt = client.get(receipt_url)
    assert "异地就医门诊结算单" in receipt.text and "data-print" in receipt.text
    assert "56.00" in receipt.text
    s = session.scalar(select(Settlement))
    assert (s.total, s.fund, s.account, s.cash) == (5_600, 0, 5_600, 0)
    r = client.post(
        receipt_url + "/reverse",
        data={"csrf_token": csrf, "reason": "退费"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "本结算已冲正" in client.get(receipt_url).text
    session.refresh(person)
    assert person.account_balance == 20_000


def test_counter_refuses_registration_without_filing(client, session):
    staff = make_hospital_staff(session, make_institution(session, "310000"))
    person = make_insured(session, "340100")
    sign_in(client, staff)
    page = _look_up(client, person)
    assert "不可直接结算" in page.text and "登记就诊" not in page.text
    r = client.post(
        "/medical/counter/visits",
        data={"csrf_token": csrf_of(page.text), "id_number": person.id_number, "visit_no": "MZ1"},
    )
    assert r.status_code == 422 and "备案" in r.text


def test_agency_clearing_page_confirm_and_dispute(client, session):
    inst = make_institution(session, "320500")
    staff = make_hospital_staff(session, inst)
    person = make_insured(session, "340100")
    make_filing(session, person, "320500")
    from tongban.medical import service, settlement

    v = service.register_visit(session, staff, id_number=person.id_number, visit_no="V1")
    service.upload_items(session, staff, v.id, [service.ItemInput("T0006", 1, 300_000)])
    s, _ = settlement.settle(session, staff, v.id, "T1")
    cs.clear_period(session, s.period)
    officer = make_medical_officer(session, "340000")
    sign_in(client, officer)
    page = client.get(f"/medical/clearing/{s.period}")
    assert page.status_code == 200
    assert "安徽省" in page.text and "江苏省" in page.text and "下载 Excel" in page.text
    st = cs.statements(session, officer, s.period)[0]
    r = client.post(
        f"/medical/clearing/statements/{st.id}/dispute",
        data={"csrf_token": csrf_of(page.text), "reason": "金额待核"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    after = client.get(f"/medical/clearing/{s.period}").text
    assert "有异议" in after and "金额待核" in after
    assert client.get("/medical/clearing").status_code == 200
