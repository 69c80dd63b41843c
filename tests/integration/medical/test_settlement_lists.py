"""Settlement lists: the hospital's own, the agency's jurisdiction's; paging, filters
(transaction number, hospital, dates, state incl. reversed), access unchanged by any
filter, constant statements per page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from listing import api_pages, counted
from tongban.calendar.service import local_date
from tongban.db import utcnow
from tongban.medical import service, settlement
from tongban.medical.service import ItemInput

from builders import (
    make_filing,
    make_hospital_staff,
    make_institution,
    make_insured,
    make_medical_officer,
    make_resident,
    sign_in,
    token_for,
)

ITEMS = [ItemInput("T0001", 1, 2_500)]


def _settle(session, staff, person, txn: str) -> Any:  # type: ignore[no-untyped-def]
    v = service.register_visit(session, staff, id_number=person.id_number, visit_no=f"V{txn}")
    service.upload_items(session, staff, v.id, list(ITEMS))
    s, _ = settlement.settle(session, staff, v.id, txn)
    return s


@pytest.fixture
def world(session) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Four settlements at a 上海 hospital (one reversed), one at another 上海 hospital,
    for insured people of 合肥 (安徽)."""
    a, b = make_institution(session, "310000"), make_institution(session, "310000")
    staff_a, staff_b = make_hospital_staff(session, a), make_hospital_staff(session, b)
    person = make_insured(session, "340100", balance=1_000_000)
    make_filing(session, person, "310000")
    mine = [_settle(session, staff_a, person, f"TA-{i}") for i in range(4)]
    theirs = _settle(session, staff_b, person, "TB-0")
    settlement.reverse(session, staff_a, "TA-1", reason="收费项目录入错误")
    session.commit()
    return {"a": a, "b": b, "staff_a": staff_a, "staff_b": staff_b, "mine": mine, "theirs": theirs}


def _txns(client, h, query: str = "") -> list[str]:  # type: ignore[no-untyped-def]
    r = client.get(f"/api/v1/medical/settlements?{query}", headers=h)
    assert r.status_code == 200, r.text
    return [s["txn_id"] for s in r.json()]


def test_a_hospital_pages_through_its_own(client, session, world):  # type: ignore[no-untyped-def]
    h = token_for(client, world["staff_a"])
    pages = api_pages(client, h, "/api/v1/medical/settlements?page_size=3", "txn_id")
    assert [len(p) for p in pages] == [3, 1]
    assert sorted(t for p in pages for t in p) == ["TA-0", "TA-1", "TA-2", "TA-3"]
    assert [t for p in pages for t in p] == ["TA-3", "TA-2", "TA-1", "TA-0"]  # newest first


def test_filters(client, session, world):  # type: ignore[no-untyped-def]
    h = token_for(client, world["staff_a"])
    today = local_date(utcnow())
    assert _txns(client, h, "state=reversed") == ["TA-1"]
    assert _txns(client, h, "state=settled") == ["TA-3", "TA-2", "TA-0"]
    assert _txns(client, h, "q=A-2") == ["TA-2"]
    assert len(_txns(client, h, f"since={today}&until={today}")) == 4
    assert _txns(client, h, f"until={today - timedelta(days=1)}") == []
    agency = token_for(client, make_medical_officer(session, "310000"))
    assert _txns(client, agency, f"hospital={world['b'].code}") == ["TB-0"]
    assert len(_txns(client, agency)) == 5
    insured_side = token_for(client, make_medical_officer(session, "340000"))
    assert len(_txns(client, insured_side)) == 5  # insured in 安徽


def test_no_filter_widens_what_a_role_sees(client, session, world):  # type: ignore[no-untyped-def]
    h = token_for(client, world["staff_b"])
    for query in ("", f"hospital={world['a'].code}", "q=TA", "state=reversed"):
        assert set(_txns(client, h, query)) <= {"TB-0"}, query
    far = token_for(client, make_medical_officer(session, "320000"))  # 江苏: neither side
    assert _txns(client, far, f"hospital={world['a'].code}") == []
    resident = token_for(client, make_resident(session))
    assert client.get("/api/v1/medical/settlements", headers=resident).status_code == 403


@pytest.mark.parametrize(
    ("query", "field"),
    [("state=cancelled", "state"), ("cursor=abc", "cursor"), ("page_size=0", "page_size"),
     ("since=yesterday", "since"), ("hospital=%25%25", "hospital")],
)  # fmt: skip
def test_bad_filter_is_a_422_naming_the_field(client, session, world, query, field):  # type: ignore[no-untyped-def]
    h = token_for(client, world["staff_a"])
    r = client.get(f"/api/v1/medical/settlements?{query}", headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == field


def test_a_page_costs_the_same_statements_whatever_its_rows(client, session, engine, world):  # type: ignore[no-untyped-def]
    h = token_for(client, world["staff_a"])
    _txns(client, h, "page_size=1")
    counts = []
    for size in (1, 4):
        with counted(engine) as seen:
            assert len(_txns(client, h, f"page_size={size}")) == size
        counts.append(len(seen))
    assert counts[0] == counts[1], counts


def test_the_page(client, session, world):  # type: ignore[no-untyped-def]
    sign_in(client, world["staff_a"])
    page = client.get("/medical/settlements?page_size=2&state=")
    assert page.status_code == 200 and "TA-3" in page.text and "下一页" in page.text
    assert "已冲正" in client.get("/medical/settlements?state=reversed").text
    assert "没有符合筛选条件的结算记录" in client.get("/medical/settlements?q=nothing").text
    assert "全部结算记录" in client.get("/medical/counter").text
