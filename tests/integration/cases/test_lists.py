"""Case lists a page at a time (workbench, my cases, window, API): paging by cursor,
filters (number, name, ID number full or masked, matter, state, deadline, dates, city),
access unchanged by any filter, a constant number of statements per page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from listing import api_pages, counted

from builders import (
    SIMPLE_MATTER,
    make_case,
    make_clerk,
    make_resident,
    make_supervisor,
    sign_in,
    token_for,
)


@pytest.fixture
def cases(session) -> tuple[Any, Any, list[Any]]:  # type: ignore[no-untyped-def]
    """Five cases of one resident and one of another, all to 江苏 (苏州)."""
    owner = make_resident(session, city="340100")
    other = make_resident(session, city="340100")
    mine = [make_case(session, owner) for _ in range(5)]
    mine.append(make_case(session, other))
    mine[0].state = "accepted"
    mine[1].deadline_flag = "overdue"
    mine[2].applicant_name = "张三丰"
    mine[3].submitted_at = datetime(2026, 1, 1, 4, 0, tzinfo=UTC)  # 12:00 in Beijing
    session.commit()
    return owner, other, mine


def _masked(identifier: str) -> str:
    return identifier[:6] + "*" * 8 + identifier[-4:]


def test_pages_cover_the_list_once_in_order(client, session, cases):  # type: ignore[no-untyped-def]
    h = token_for(client, make_supervisor(session, "320000"))
    pages = api_pages(client, h, "/api/v1/cases?page_size=4")
    assert [len(p) for p in pages] == [4, 2]
    pages = api_pages(client, h, "/api/v1/cases?page_size=2")
    assert [len(p) for p in pages] == [2, 2, 2]
    flat = [n for p in pages for n in p]
    assert sorted(flat) == sorted(c.number for c in cases[2])
    assert flat == [c["number"] for c in client.get("/api/v1/cases", headers=h).json()]


def test_filters(client, session, cases):  # type: ignore[no-untyped-def]
    owner, other, c = cases
    h = token_for(client, make_supervisor(session, "320000"))

    def got(query: str) -> set[str]:
        r = client.get(f"/api/v1/cases?{query}", headers=h)
        assert r.status_code == 200, r.text
        return {x["number"] for x in r.json()}

    everyone = {x.number for x in c}
    assert got("state=accepted") == {c[0].number}
    assert got("deadline_flag=overdue") == {c[1].number}
    assert got("q=张三丰") == {c[2].number}
    assert got(f"q={c[4].number}") == {c[4].number}
    assert got(f"q={_masked(other.id_number)}") == {c[5].number}
    assert got(f"q={_masked(owner.id_number)}") == everyone - {c[5].number}
    assert got(f"q={owner.id_number}") == everyone - {c[5].number}
    assert got("since=2026-01-01&until=2026-01-01") == {c[3].number}
    assert got(f"matter={SIMPLE_MATTER}") == everyone
    assert got("matter=NO-SUCH") == set()
    assert got("city=320500") == everyone
    assert got("city=310000") == set()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("cursor=xyz.123", "cursor"),
        ("page_size=0", "page_size"),
        ("page_size=1000", "page_size"),
        ("state=lost", "state"),
        ("deadline_flag=soon", "deadline_flag"),
        ("since=2026-13-01", "since"),
        ("since=2026-02-01&until=2026-01-01", "until"),
        ("city=abc", "city"),
    ],
)
def test_bad_paging_or_filter_is_a_422_naming_the_field(client, session, query, field):  # type: ignore[no-untyped-def]
    h = token_for(client, make_supervisor(session, "320000"))
    r = client.get(f"/api/v1/cases?{query}", headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field


def test_no_filter_widens_what_a_role_sees(client, session, cases):  # type: ignore[no-untyped-def]
    owner, other, c = cases
    # The other resident sees their one case, whatever they search for.
    h = token_for(client, other)
    for query in ("", f"q={_masked(owner.id_number)}", f"q={owner.id_number}", "city=320500"):
        got = {x["number"] for x in client.get(f"/api/v1/cases?{query}", headers=h).json()}
        assert got <= {c[5].number}, query
    # Another province's supervisor and a window clerk see none of them.
    for who in (make_supervisor(session, "340000"), make_clerk(session, "340100")):
        h = token_for(client, who)
        for query in ("", "city=320500", f"q={c[0].number}", "page_size=200"):
            assert client.get(f"/api/v1/cases?{query}", headers=h).json() == [], (who.role, query)


def test_a_page_costs_the_same_statements_whatever_its_rows(client, session, engine, cases):  # type: ignore[no-untyped-def]
    h = token_for(client, make_supervisor(session, "320000"))
    client.get("/api/v1/cases?page_size=1", headers=h)
    counts = []
    for size in (1, 6):
        with counted(engine) as seen:
            assert len(client.get(f"/api/v1/cases?page_size={size}", headers=h).json()) == size
        counts.append(len(seen))
    assert counts[0] == counts[1], counts


def test_pages_keep_filters_and_say_when_nothing_matches(client, session, cases):  # type: ignore[no-untyped-def]
    owner, _, c = cases
    sign_in(client, make_supervisor(session, "320000"))
    page = client.get("/workbench?page_size=2&deadline_flag=&city=320500")
    assert page.status_code == 200 and "下一页" in page.text
    assert "city=320500" in page.text and "cursor=" in page.text
    assert "没有符合筛选条件的办件" in client.get("/workbench?city=310000").text
    assert client.get("/workbench?cursor=forged").status_code == 422
    mine = client.__class__(client.app)
    sign_in(mine, owner)
    listing = mine.get("/my/cases?page_size=3")
    assert listing.status_code == 200 and listing.text.count("/my/cases/") >= 3
    assert "下一页" in listing.text
    window = client.__class__(client.app)
    sign_in(window, make_clerk(session, "340100"))
    assert "本窗口尚未代收办件" in window.get("/window").text
