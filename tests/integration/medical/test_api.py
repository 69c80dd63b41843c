"""The hospital transactions over HTTP with a bearer token, problem+json errors in
Chinese, and the agencies' clearing endpoints."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook
from sqlalchemy import func, select

from tongban.medical import clearing_service as cs
from tongban.medical.models import Settlement

from builders import (
    make_filing,
    make_hospital_staff,
    make_institution,
    make_insured,
    make_medical_officer,
    make_resident,
    token_for,
)

ITEMS = {"items": [{"code": "T0006", "quantity": 1, "unit_price": 200_000}]}


def _setup(session, client, filing=True, balance=30_000):
    inst = make_institution(session, "320500", level=3)
    h = token_for(client, make_hospital_staff(session, inst))
    person = make_insured(session, "340100", balance=balance)
    if filing:
        make_filing(session, person, "320500")
    return h, person


def _visit(client, h, person, no="V1"):
    r = client.post(
        "/api/v1/medical/visits", headers=h, json={"id_number": person.id_number, "visit_no": no}
    )
    assert r.status_code == 201, r.text
    vid = r.json()["id"]
    r = client.put(f"/api/v1/medical/visits/{vid}/items", headers=h, json=ITEMS)
    assert r.status_code == 200, r.text
    return vid


def test_transaction_set_over_http(client, session):
    h, person = _setup(session, client)
    e = client.post("/api/v1/medical/eligibility", headers=h, json={"id_number": person.id_number})
    assert e.status_code == 200, e.text
    body = e.json()
    assert body["filing_required"] and body["filing_present"] and body["may_settle"]
    assert body["scheme"] == "employee" and body["account_balance"] == 30_000
    assert (
        body["id_number_masked"].startswith(person.id_number[:4])
        and "*" in body["id_number_masked"]
    )
    vid = _visit(client, h, person)
    pre = client.post(f"/api/v1/medical/visits/{vid}/presettle", headers=h)
    assert pre.status_code == 200, pre.text
    split = pre.json()["split"]
    # CT 2000.00, 乙 10%: eligible 1800.00; 合肥 employee 三级: deductible 1000.00, 75%
    # → fund 0.75 × 800.00 = 600.00; account 300.00 (all of it); cash 1100.00.
    assert (split["eligible"], split["fund"], split["account"], split["cash"]) == (
        180_000,
        60_000,
        30_000,
        110_000,
    )
    assert pre.json()["before"]["account_balance"] == 30_000
    assert pre.json()["after"]["account_balance"] == 0
    r1 = client.post(
        "/api/v1/medical/settlements", headers=h, json={"visit_id": vid, "txn_id": "HIS-1"}
    )
    assert r1.status_code == 201, r1.text
    r2 = client.post(
        "/api/v1/medical/settlements", headers=h, json={"visit_id": vid, "txn_id": "HIS-1"}
    )
    # The confirmation goes to the insured node after the answer: the first answer says
    # it is still reserved there, the replay that it has been confirmed since.
    assert r1.json()["insured_ack"] == "reserved"
    assert r2.status_code == 200 and r2.json()["insured_ack"] == "confirmed"
    assert {**r2.json(), "insured_ack": "reserved"} == r1.json()
    other = _visit(client, h, person, "V2")
    r3 = client.post(
        "/api/v1/medical/settlements", headers=h, json={"visit_id": other, "txn_id": "HIS-1"}
    )
    assert r3.status_code == 409
    assert r3.headers["content-type"].startswith("application/problem+json")
    assert "交易流水号" in r3.json()["detail"]
    assert session.scalar(select(func.count()).select_from(Settlement)) == 1
    rev = client.post(
        "/api/v1/medical/settlements/HIS-1/reverse", headers=h, json={"reason": "患者退费"}
    )
    assert rev.status_code == 200 and rev.json()["status"] == "reversed"
    again = client.post(
        "/api/v1/medical/eligibility", headers=h, json={"id_number": person.id_number}
    )
    assert again.json()["account_balance"] == 30_000 and again.json()["deductible_used"] == 0
    rec = client.post(
        "/api/v1/medical/reconciliations",
        headers=h,
        json={
            "day": r1.json()["settled_day"],
            "count": 1,
            "total": 200_000,
            "fund": 60_000,
            "account": 30_000,
            "cash": 110_000,
            "details": [
                {
                    "txn_id": "HIS-1",
                    "total": 200_000,
                    "fund": 60_000,
                    "account": 30_000,
                    "cash": 110_000,
                }
            ],
        },
    )
    assert rec.status_code == 200, rec.text
    assert not rec.json()["balanced"]
    assert [(d["txn_id"], d["kind"], d["label"]) for d in rec.json()["differences"]] == [
        ("HIS-1", "missing_at_centre", "医保中心无此结算")
    ]


def test_refusals_are_problem_json_in_chinese(client, session):
    h, person = _setup(session, client, filing=False)
    r = client.post(
        "/api/v1/medical/visits", headers=h, json={"id_number": person.id_number, "visit_no": "V1"}
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("filing-required") and "备案" in r.json()["detail"]
    resident = make_resident(session)
    rh = token_for(client, resident)
    r = client.post("/api/v1/medical/eligibility", headers=rh, json={"id_number": person.id_number})
    assert r.status_code == 403 and "医疗机构" in r.json()["detail"]
    assert (
        client.post("/api/v1/medical/eligibility", json={"id_number": person.id_number}).status_code
        == 401
    )


def test_unknown_code_refused(client, session):
    h, person = _setup(session, client)
    r = client.post(
        "/api/v1/medical/visits", headers=h, json={"id_number": person.id_number, "visit_no": "V1"}
    )
    vid = r.json()["id"]
    bad = client.put(
        f"/api/v1/medical/visits/{vid}/items",
        headers=h,
        json={"items": [{"code": "ZZZ", "quantity": 1, "unit_price": 1}]},
    )
    assert bad.status_code == 422 and "目录" in bad.text


def test_agency_endpoints_and_downloads(client, session):
    h, person = _setup(session, client)
    vid = _visit(client, h, person)
    client.post("/api/v1/medical/settlements", headers=h, json={"visit_id": vid, "txn_id": "T1"})
    period = session.scalar(select(Settlement.period))
    cs.clear_period(session, period)
    js = token_for(client, make_medical_officer(session, "320000"))
    run = client.get(f"/api/v1/medical/clearing/{period}", headers=js)
    assert run.status_code == 200, run.text
    assert run.json()["jurisdictions"] == [
        {"debtor": "340000", "creditor": "320000", "claims": 1, "amount": 60_000}
    ]
    assert sum(n["net"] for n in run.json()["nets"]) == 0
    sts = client.get(f"/api/v1/medical/clearing/{period}/statements", headers=js).json()
    assert [(s["side_a"], s["side_b"], s["a_owes_b"], s["b_owes_a"]) for s in sts] == [
        ("320000", "340000", 0, 60_000)
    ]
    d = client.post(
        f"/api/v1/medical/clearing/statements/{sts[0]['id']}/dispute",
        headers=js,
        json={"reason": "核对中"},
    )
    assert d.status_code == 200 and d.json()["a_status"] == "disputed"
    zj = token_for(client, make_medical_officer(session, "330000"))
    assert (
        client.post(
            f"/api/v1/medical/clearing/statements/{sts[0]['id']}/confirm", headers=zj
        ).status_code
        == 404
    )
    assert client.get(f"/api/v1/medical/clearing/{period}", headers=h).status_code == 403
    c = client.get(f"/api/v1/medical/clearing/{period}/statements.csv", headers=js)
    assert c.status_code == 200 and c.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(c.content.decode("utf-8-sig"))))
    assert rows[1][1] == "320000" and rows[1][8] == "60000" and rows[1][11] == "有异议"
    x = client.get(f"/api/v1/medical/clearing/{period}/statements.xlsx", headers=js)
    wb = load_workbook(io.BytesIO(x.content))
    assert wb["对账单"]["I2"].value == 60_000
