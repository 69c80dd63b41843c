"""Work-order lists a page at a time: paging by cursor, filters, access unchanged by
any filter, a constant number of statements per page; Open311 pages."""

from __future__ import annotations

from typing import Any

import pytest

from listing import api_pages, counted

from builders import (
    make_city_staff,
    make_resident,
    make_work_order,
    sign_in,
    token_for,
)


@pytest.fixture
def five(session) -> list[Any]:  # type: ignore[no-untyped-def]
    """Five work orders in 苏州: one returned, one overdue, one food-safety, one in a
    district of its own."""
    resident = make_resident(session, city="320500")
    orders = [make_work_order(session, resident) for _ in range(4)]
    orders.append(make_work_order(session, resident, category="food_safety"))
    orders[0].state = "returned"
    orders[1].deadline_flag = "overdue"
    orders[2].district_code = "320506"
    session.commit()
    return orders


def test_first_middle_and_last_page_cover_the_list_once(client, session, five):  # type: ignore[no-untyped-def]
    h = token_for(client, make_city_staff(session, "dispatcher", "320500"))
    pages = api_pages(client, h, "/api/v1/tickets?page_size=2")
    assert [len(p) for p in pages] == [2, 2, 1]
    numbers = [n for p in pages for n in p]
    assert sorted(numbers) == sorted(w.number for w in five)
    whole = client.get("/api/v1/tickets", headers=h).json()
    assert [t["number"] for t in whole] == numbers  # the same order, page by page
    assert "link" not in client.get("/api/v1/tickets", headers=h).headers


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("cursor=not-a-cursor", "cursor"),
        ("page_size=0", "page_size"),
        ("page_size=201", "page_size"),
        ("state=nonsense", "state"),
        ("deadline_flag=late", "deadline_flag"),
        ("category=nonsense", "category"),
        ("district=12", "district"),
    ],
)
def test_bad_paging_or_filter_is_a_422_naming_the_field(client, session, query, field):  # type: ignore[no-untyped-def]
    h = token_for(client, make_city_staff(session, "dispatcher", "320500"))
    r = client.get(f"/api/v1/tickets?{query}", headers=h)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_a_tampered_cursor_is_refused(client, session, five):  # type: ignore[no-untyped-def]
    h = token_for(client, make_city_staff(session, "dispatcher", "320500"))
    link = client.get("/api/v1/tickets?page_size=2", headers=h).headers["link"]
    cursor = link[link.index("cursor=") + 7 : link.index(">")]
    body, check = cursor.split(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + check
    r = client.get(f"/api/v1/tickets?page_size=2&cursor={forged}", headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=returned", [0]),
        ("deadline_flag=overdue", [1]),
        ("district=320506", [2]),
        ("category=food_safety", [4]),
        ("city=320500&category=food_safety", [4]),
        ("city=310000", []),
    ],
)
def test_each_filter_narrows_the_list(client, session, five, query, expected):  # type: ignore[no-untyped-def]
    h = token_for(client, make_city_staff(session, "dispatcher", "320500"))
    got = {t["number"] for t in client.get(f"/api/v1/tickets?{query}", headers=h).json()}
    assert got == {five[i].number for i in expected}


def test_search_by_number(client, session, five):  # type: ignore[no-untyped-def]
    h = token_for(client, make_city_staff(session, "dispatcher", "320500"))
    got = client.get(f"/api/v1/tickets?q={five[3].number}", headers=h).json()
    assert [t["number"] for t in got] == [five[3].number]


def test_no_filter_widens_what_a_role_sees(client, session, five):  # type: ignore[no-untyped-def]
    others = [
        make_city_staff(session, "dispatcher", "310000"),  # another city's 12345 centre
        make_resident(session, city="320500"),  # another resident
    ]
    for who in others:
        h = token_for(client, who)
        for query in ("", "city=320500", f"q={five[0].number}", "state=returned", "page_size=200"):
            assert client.get(f"/api/v1/tickets?{query}", headers=h).json() == [], (who.role, query)


def test_a_page_costs_the_same_statements_whatever_its_rows(client, session, engine, five):  # type: ignore[no-untyped-def]
    h = token_for(client, make_city_staff(session, "dispatcher", "320500"))
    client.get("/api/v1/tickets?page_size=1", headers=h)  # warm: token, taxonomy
    counts = []
    for size in (1, 5):
        with counted(engine) as seen:
            assert len(client.get(f"/api/v1/tickets?page_size={size}", headers=h).json()) == size
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
    for path in ("/open311/v2/requests.json?page_size=1", "/open311/v2/requests.json?page_size=5"):
        client.get(path)
    with counted(engine) as one:
        assert len(client.get("/open311/v2/requests.json?page_size=1").json()) == 1
    with counted(engine) as all_five:
        assert len(client.get("/open311/v2/requests.json?page_size=5").json()) == 5
    assert len(one) == len(all_five), (one, all_five)


def test_the_page_keeps_filters_in_its_links(client, session, five):  # type: ignore[no-untyped-def]
    sign_in(client, make_city_staff(session, "dispatcher", "320500"))
    page = client.get("/tickets?page_size=2&category=road_damage")
    assert page.status_code == 200
    assert "下一页" in page.text and "category=road_damage" in page.text
    assert "退单待审核" not in page.text  # a filtered list shows no pressing sections
    first = client.get("/tickets")
    assert "退单待审核" in first.text and "全部工单" in first.text
    empty = client.get("/tickets?city=310000")
    assert "没有符合筛选条件的工单" in empty.text
    assert client.get("/tickets?cursor=bad").status_code == 422


def test_open311_pages(client, session, five):  # type: ignore[no-untyped-def]
    page1 = client.get("/open311/v2/requests.json?page_size=2&page=1").json()
    page3 = client.get("/open311/v2/requests.json?page_size=2&page=3").json()
    everything = client.get("/open311/v2/requests.json").json()
    assert len(page1) == 2 and len(page3) == 1
    assert [r["service_request_id"] for r in everything][:2] == [
        r["service_request_id"] for r in page1
    ]
    assert {r["service_request_id"] for r in everything} >= {w.number for w in five}
    for bad in ("page=0", "page_size=500", "page=x"):
        r = client.get(f"/open311/v2/requests.json?{bad}")
        assert r.status_code == 400 and bad.split("=")[0] in r.json()[0]["description"]


def test_a_joint_order_is_listed_for_the_partner_side_once(client, session):  # type: ignore[no-untyped-def]
    """The lists read "led here" and "co-handled here" as two branches: a joint border
    order appears once for the partner city's centre, supervisor and co-handler."""
    from builders import BORDER_WUJIANG_JIASHAN, make_officer, make_supervisor

    wo = make_work_order(
        session, where=BORDER_WUJIANG_JIASHAN, category="water_pollution", description="边界河"
    )
    session.commit()
    assert wo.joint and wo.city_code == "320500"
    for who in (
        make_city_staff(session, "dispatcher", "330400"),
        make_supervisor(session, "330000"),
        make_officer(session, "330400-ecology_environment", duty="reviewer"),
        make_city_staff(session, "dispatcher", "320500"),
    ):
        h = token_for(client, who)
        got = [t["number"] for t in client.get("/api/v1/tickets?page_size=1", headers=h).json()]
        assert got == [wo.number], who.role
    h = token_for(client, make_city_staff(session, "dispatcher", "310000"))
    assert client.get("/api/v1/tickets", headers=h).json() == []


def test_pages_cross_from_deadlines_into_none(client, session, five):  # type: ignore[no-untyped-def]
    """Staff read the nearest deadline first and those without one last: a cursor on a
    deadline continues into the rows without one, a cursor on none continues among them."""
    five[1].due_at = None
    five[3].due_at = None
    session.commit()
    h = token_for(client, make_city_staff(session, "dispatcher", "320500"))
    for size in (1, 2, 3):
        pages = api_pages(client, h, f"/api/v1/tickets?page_size={size}")
        flat = [n for p in pages for n in p]
        assert sorted(flat) == sorted(w.number for w in five), size
        assert set(flat[-2:]) == {five[1].number, five[3].number}, size  # none last
